"""`notifier` command line: turns arguments into settings and calls library functions; nothing else lives here.

Every failure is one line on stderr and a non-zero exit, never a traceback: 2 when the command cannot run as asked
(bad configuration, input, file or database), 1 when it ran but the work was not done (import rows rejected,
nothing of a published alert could be attempted), 70 for a bug (the one line names it; `NOTIFIER_TRACEBACK=1`
shows the traceback), 130 on Ctrl+C.

Its words come from the one gettext catalogue (`notifier.i18n`), in the language `i18n.cli_lang` picks: `--lang`,
then NOTIFIER_LANG, then the POSIX locale (LC_ALL, LC_MESSAGES, LANG), then Chinese. The language is known before
the parser is built, so `--help` is in it too (argparse's own parse errors are quoted in English inside a line
in that language).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import re
import sys
import traceback
from collections.abc import Callable, Coroutine, Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn

from notifier import commands
from notifier.audit import AuditHead
from notifier.config import Settings
from notifier.config_errors import ConfigError
from notifier.database import DatabaseUnavailable
from notifier.errors import NotifierError
from notifier.i18n import DEFAULT_LANG, LANGS, N_, UnsupportedLanguage, Words, cli_lang
from notifier.import_rows import ASSISTED_COLUMNS as ASSISTED
from notifier.import_rows import COLUMNS

EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 2, 70, 130
LANG_OPTION = "--lang"

# What the command line says: msgids of the one catalogue, said in the language of the command line.
DESCRIPTION = N_("notifier — targeted public-welfare disclosures.")
EPILOG = N_("exit status: 0 done; 1 ran, but the work was not done (rows rejected, nothing could be attempted); "
            "2 cannot run as asked (configuration, input, file, database); 70 a bug; 130 interrupted. "
            "Language: --lang, else NOTIFIER_LANG, else LC_ALL / LC_MESSAGES / LANG, else zh-CN.")
CONFIG_HELP = N_("TOML configuration file (default: none; NOTIFIER_<SECTION>__<KEY> variables still apply)")
LANG_HELP = N_("the language of what the command says: zh-CN or en (default: NOTIFIER_LANG, then the locale, "
               "then zh-CN)")
HELP_HELP = N_("show this help and exit")
VERSION_HELP = N_("print the version and exit")
COMMAND_HELP = N_("what to do (COMMAND --help: its options)")
USAGE_PREFIX = N_("usage: ")
POSITIONALS, OPTIONALS = N_("positional arguments"), N_("options")
CONFIG_ERROR = N_("notifier: configuration error: %(problem)s")
FAILURE = N_("notifier: %(problem)s")
BUG = N_("notifier: internal error (%(kind)s: %(text)s); please report it (set NOTIFIER_TRACEBACK=1 to see where "
         "it happened)")
BAD_WITNESS = N_("%(value)r is not SEQ:HASH (GET /audit/head's seq, a colon, its 64 hex digit hash)")
WITNESS_HASH = re.compile(r"[0-9a-f]{64}")
USAGE_ERROR = N_("%(prog)s: %(message)s (see %(prog)s --help)")
UNSUPPORTED_LANG = N_("notifier: unsupported language %(lang)s; use %(langs)s")
NOT_INSTALLED = N_("notifier (not installed)")
COMMANDS = {
    "serve": N_("run the API and the delivery workers in one process"),
    "worker": N_("run delivery workers only (scale-out: any number beside one serve, on one database)"),
    "demo": N_("run the whole pipeline with fake gateways and sample data, then keep serving it"),
    "publish": N_("publish an alert from a JSON file (UTF-8 or GBK, BOM or not) or a CAP 1.2 document"),
    "coverage": N_("print an alert's coverage and why its deliveries failed"),
    "templates": N_("template tools"),
    "keys": N_("API keys: create, list, revoke"),
    "audit": N_("the audit log: verify its hash chain"),
    "approvals": N_("alerts waiting for approval: list them, approve or reject one (as an admin, actor cli)"),
    "db": N_("database tools"),
    "import": N_("import subscribers from a CSV or NDJSON file (UTF-8 or GBK); all or nothing unless "
                 "--accept-valid"),
}
IMPORT_EPILOG = N_("CSV columns (header on the first line, any order; English or Chinese names; a bilingual header "
                   "cell such as 'mobile 手机号' is read by its first word): %(columns)s. region and topics are "
                   "required, and at least one contact column. List cells are separated by ; | ； or 、. "
                   "NDJSON: one POST /v1/subscribers body per line. See README.md, 'Bulk import'.")

Handler = Callable[[Settings, argparse.Namespace, Words], Coroutine[Any, Any, int]]
# Each command's module, imported when that command runs (its handler is that module's `cmd_<command>`): a command
# that only reads the database does not import the service's channels, templates and HTTP client (start-up ~1.0 ->
# ~0.6 s on a 2-core VM).
HANDLERS: dict[str, str] = {
    **dict.fromkeys(("serve", "worker", "demo", "db", "keys", "templates", "import", "audit"), "notifier.commands"),
    "approvals": "notifier.cli_approvals", "publish": "notifier.cli_publish", "coverage": "notifier.cli_publish",
}


def handler(command: str) -> Handler:
    found: Handler = getattr(importlib.import_module(HANDLERS[command]), f"cmd_{command}")
    return found


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line that points at --help, like every other failure, and every word
    it prints is said in the command line's language."""

    words = Words(DEFAULT_LANG)  # set per parser by _parser()

    def error(self, message: str) -> NoReturn:
        print(self.words(USAGE_ERROR, prog=self.prog, message=message), file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _formatter(words: Words) -> type[argparse.HelpFormatter]:
    class Formatter(argparse.HelpFormatter):
        def add_usage(self, usage: str | None, actions: Iterable[argparse.Action],
                      groups: Iterable[argparse._MutuallyExclusiveGroup], prefix: str | None = None) -> None:
            super().add_usage(usage, actions, groups, words(USAGE_PREFIX) if prefix is None else prefix)

    return Formatter


def _said(parser: argparse.ArgumentParser, words: Words) -> argparse.ArgumentParser:
    """A parser whose own words (section titles, -h) are the catalogue's."""
    if isinstance(parser, _Parser):
        parser.words = words
    parser._positionals.title = words(POSITIONALS)
    parser._optionals.title = words(OPTIONALS)
    parser.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS, help=words(HELP_HELP))
    return parser


def _version(words: Words) -> str:
    try:
        return f"notifier {version('notifier-gov')}"
    except PackageNotFoundError:  # run from a checkout that was never installed
        return words(NOT_INSTALLED)


def _parser(words: Words | None = None) -> argparse.ArgumentParser:
    words = words or Words(DEFAULT_LANG)
    formatter = _formatter(words)
    parser = _said(_Parser(prog="notifier", description=words(DESCRIPTION), epilog=words(EPILOG), add_help=False,
                           allow_abbrev=False, formatter_class=formatter), words)
    parser.add_argument("--version", action="version", version=_version(words), help=words(VERSION_HELP))
    parser.add_argument("--config", type=Path, help=words(CONFIG_HELP))
    parser.add_argument(LANG_OPTION, metavar="{zh-CN,en}", help=words(LANG_HELP))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help=words(COMMAND_HELP))

    def command(name: str, epilog: str | None = None) -> argparse.ArgumentParser:
        help_text = words(COMMANDS[name])
        p = _said(sub.add_parser(name, help=help_text, description=help_text, epilog=epilog, add_help=False,
                                 allow_abbrev=False, formatter_class=formatter), words)
        p.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=words(CONFIG_HELP))
        p.add_argument(LANG_OPTION, metavar="{zh-CN,en}", default=argparse.SUPPRESS, help=words(LANG_HELP))
        return p

    command("serve")
    command("worker")
    _demo_arguments(command("demo"), words)
    _publish_arguments(command("publish"), words)
    _coverage_arguments(command("coverage"), words)
    command("templates").add_argument(
        "action", choices=["check"],
        help=words(N_("check: render every template with sample data, report errors and SMS lengths")))
    _keys_arguments(command("keys"), words)
    _audit_arguments(command("audit"), words)
    _approvals_arguments(command("approvals"), words)
    command("db").add_argument("action", choices=["upgrade"],
                               help=words(N_("upgrade: create the database or apply new migrations")))
    columns = "; ".join(f"{name} ({', '.join(aliases)})" if aliases else name for name, aliases in COLUMNS.items())
    _import_arguments(command("import", words(IMPORT_EPILOG, columns=columns)), words)
    return parser


def _demo_arguments(demo: argparse.ArgumentParser, words: Words) -> None:
    demo.add_argument("--once", action="store_true",
                      help=words(N_("exit after printing the coverage (scripts, CI)")))
    demo.add_argument("--subscribers", type=int, default=3000, metavar="N",
                      help=words(N_("synthetic residents and organisations to create (default: 3000)")))


def _publish_arguments(publish: argparse.ArgumentParser, words: Words) -> None:
    publish.add_argument("file", help=words(N_("the alert as POST /v1/alerts takes it (JSON, or CAP 1.2 XML in "
                                               "UTF-8); - reads stdin")))
    publish.add_argument("--wait", action="store_true",
                         help=words(N_("deliver it now, give receipts up to 30 s, then print its coverage and why "
                                       "deliveries failed; exit 1 when nothing could be attempted")))


def _coverage_arguments(coverage: argparse.ArgumentParser, words: Words) -> None:
    coverage.add_argument("alert_id", help=words(N_("the alert's id, as publish printed it")))
    coverage.add_argument("--json", action="store_true",
                          help=words(N_("print the coverage object as JSON (as GET /v1/alerts/{id}/coverage "
                                        "answers)")))


def _audit_arguments(audit: argparse.ArgumentParser, words: Words) -> None:
    audit.add_argument(
        "action", choices=["verify"],
        help=words(N_("verify: check every entry's hash and link; exit 0 'audit: OK <n> entries head <hash>', or "
                      "exit 1 'audit: BROKEN at <seq>: <why>' naming the first broken entry")))

    def witnessed(text: str) -> AuditHead:
        seq, _, digest = text.partition(":")
        if not (seq.isdigit() and WITNESS_HASH.fullmatch(digest)):
            raise argparse.ArgumentTypeError(words(BAD_WITNESS, value=text))
        return AuditHead(int(seq), digest, None)

    audit.add_argument("--witness", type=witnessed, metavar="SEQ:HASH",
                       help=words(N_("a head witnessed before (GET /audit/head's seq and hash): the chain must still "
                                     "hold that entry with that hash, which a rewritten or truncated chain cannot")))


def _approvals_arguments(approvals: argparse.ArgumentParser, words: Words) -> None:
    approvals.add_argument("action", choices=["list", "approve", "reject"],
                           help=words(N_("list: what waits, oldest first; approve or reject: decide on one (not on "
                                         "an alert the command line published: someone else must decide)")))
    approvals.add_argument("alert_id", nargs="?", help=words(N_("for approve and reject: the alert's id")))
    approvals.add_argument("--reason", help=words(N_("for reject (required): why, kept in the alert and the audit "
                                                     "log; no contact details")))


def _keys_arguments(keys: argparse.ArgumentParser, words: Words) -> None:
    keys.add_argument("action", choices=["create", "revoke", "list"], help=words(N_("what to do")))
    keys.add_argument("target", nargs="?", help=words(N_("for revoke: the key itself or its id")))
    keys.add_argument("--role", choices=["admin", "publisher", "viewer"],
                      help=words(N_("for create: the key's role")))
    keys.add_argument("--topics", nargs="+", metavar="PATTERN",
                      help=words(N_("for create --role publisher (required): the topics it may publish to, as "
                                    "patterns over the catalogue's topic keys, e.g. 'env.*' or "
                                    "'env.heavy-pollution'; '*' for all")))
    keys.add_argument("--department",
                      help=words(N_("for create --role publisher (required): the department it speaks for, as the "
                                    "catalogue's topics name it, e.g. 市环保局")))
    keys.add_argument("--label", help=words(N_("for create: a note shown by keys list (who holds the key)")))


def _import_arguments(bulk: argparse.ArgumentParser, words: Words) -> None:
    bulk.add_argument("file", type=Path, help=words(N_("the CSV or NDJSON file")))
    bulk.add_argument("--format", choices=["csv", "ndjson"],
                      help=words(N_("default: from the file name, else sniffed")))
    bulk.add_argument("--accept-valid", action="store_true",
                      help=words(N_("store the valid rows even if others are rejected")))
    bulk.add_argument("--report", type=Path, help=words(N_("write the whole report as JSON to this file")))
    bulk.add_argument("--label", help=words(N_("bureau or registry name, recorded as consent source import:LABEL "
                                               "(default: the file name)")))
    bulk.add_argument("--pending", action="store_true",
                      help=words(N_("store subscribers as pending (contacts to be verified) instead of active")))
    people = "; ".join(f"{name} ({', '.join(aliases)})" for name, aliases in ASSISTED.items())
    bulk.add_argument("--assisted", action="store_true",
                      help=words(N_("the file is a sub-district office's CSV list of assisted people, each told by a "
                                    "proxy: columns %(columns)s"), columns=people))


def _lang_option(argv: Sequence[str]) -> str | None:
    """The value of --lang, read before the parser is built (the parser speaks the language it names)."""
    for i, arg in enumerate(argv):
        if arg == LANG_OPTION and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(LANG_OPTION + "="):
            return arg.partition("=")[2]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        words = Words(cli_lang(_lang_option(arguments), os.environ))
    except UnsupportedLanguage as exc:
        print(Words(DEFAULT_LANG)(UNSUPPORTED_LANG, lang=repr(str(exc)), langs=", ".join(LANGS)), file=sys.stderr)
        return EXIT_USAGE
    args = _parser(words).parse_args(arguments)
    try:
        settings = commands.settings_from(args.config)
        return int(asyncio.run(handler(args.command)(settings, args, words)))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except ConfigError as exc:
        print(words(CONFIG_ERROR, problem=exc.in_lang(words.lang)), file=sys.stderr)
    except (commands.CommandError, DatabaseUnavailable) as exc:
        print(words(FAILURE, problem=exc.said), file=sys.stderr)
    except NotifierError as exc:
        print(words(FAILURE, problem=commands.describe_error(exc, words)), file=sys.stderr)
    except Exception as exc:
        if os.environ.get("NOTIFIER_TRACEBACK"):
            traceback.print_exc()
        print(words(BUG, kind=type(exc).__name__, text=" ".join(str(exc).split())[:300]), file=sys.stderr)
        return EXIT_BUG
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
