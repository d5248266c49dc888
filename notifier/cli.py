"""`notifier` command line: turns arguments into settings and calls library functions; nothing else lives here.

Every failure is one line on stderr and a non-zero exit, never a traceback: 2 when the command cannot run as asked
(bad configuration, input, file or database), 1 when it ran but the work was not done (import rows rejected,
nothing of a published alert could be attempted), 70 for a bug (the one line names it; `NOTIFIER_TRACEBACK=1`
shows the traceback), 130 on Ctrl+C.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Callable, Coroutine, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn

from notifier import cli_publish, commands
from notifier.assisted_import import COLUMNS as ASSISTED
from notifier.config import Settings
from notifier.config_errors import ConfigError
from notifier.errors import NotifierError
from notifier.import_rows import COLUMNS
from notifier.service import DatabaseUnavailable

EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 2, 70, 130
DESCRIPTION = "notifier — 公益事业信息定向推送 / targeted public-welfare disclosures."
EPILOG = ("exit status: 0 done; 1 ran, but the work was not done (rows rejected, nothing could be attempted); "
          "2 cannot run as asked (configuration, input, file, database); 70 a bug; 130 interrupted.")
CONFIG_HELP = "TOML configuration file (default: none; NOTIFIER_<SECTION>__<KEY> variables still apply)"
CONFIG_ERROR = "notifier: configuration error: {0}"
FAILURE = "notifier: {0}"
BUG = ("notifier: internal error ({kind}: {text}); please report it "
       "(set NOTIFIER_TRACEBACK=1 to see where it happened)")
USAGE_ERROR = "{prog}: {message} (see {prog} --help)"
IMPORT_EPILOG = ("CSV columns (header on the first line, any order; English or Chinese names; a bilingual header "
                 "cell such as 'mobile 手机号' is read by its first word): {columns}. region and topics are "
                 "required, and at least one contact column. List cells are separated by ; | ； or 、. "
                 "NDJSON: one POST /v1/subscribers body per line. See README.md, 'Bulk import'.")

ASSISTED_COLUMNS = "; ".join(f"{name} ({', '.join(aliases)})" for name, aliases in ASSISTED.items())

Handler = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]
HANDLERS: dict[str, Handler] = {
    "serve": commands.cmd_serve, "worker": commands.cmd_worker, "demo": commands.cmd_demo, "db": commands.cmd_db,
    "keys": commands.cmd_keys, "templates": commands.cmd_templates, "import": commands.cmd_import,
    "publish": cli_publish.cmd_publish, "coverage": cli_publish.cmd_coverage,
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line that points at --help, like every other failure."""

    def error(self, message: str) -> NoReturn:
        print(USAGE_ERROR.format(prog=self.prog, message=message), file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _version() -> str:
    try:
        return f"notifier {version('notifier-gov')}"
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "notifier (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="notifier", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=_version(), help="print the version and exit")
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="what to do (COMMAND --help: its options)")

    def command(name: str, help_text: str, epilog: str | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog)
        p.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=CONFIG_HELP)
        return p

    command("serve", "run the API and the delivery workers in one process")
    command("worker", "run delivery workers only (scale-out: any number beside one serve, on one database)")
    demo = command("demo", "run the whole pipeline with fake gateways and sample data, then keep serving it")
    demo.add_argument("--once", action="store_true", help="exit after printing the coverage (scripts, CI)")
    demo.add_argument("--subscribers", type=int, default=3000, metavar="N",
                      help="synthetic residents and organisations to create (default: 3000)")
    publish = command("publish", "publish an alert from a JSON file (UTF-8 or GBK, BOM or not)")
    publish.add_argument("file", help="the alert as POST /v1/alerts takes it (JSON); - reads stdin")
    publish.add_argument("--wait", action="store_true",
                         help="deliver it now, give receipts up to 30 s, then print its coverage and why deliveries "
                              "failed; exit 1 when nothing could be attempted")
    coverage = command("coverage", "print an alert's coverage and why its deliveries failed")
    coverage.add_argument("alert_id", help="the alert's id, as publish printed it")
    coverage.add_argument("--json", action="store_true",
                          help="print the coverage object as JSON (as GET /v1/alerts/{id}/coverage answers)")
    templates = command("templates", "template tools")
    templates.add_argument("action", choices=["check"],
                           help="check: render every template with sample data, report errors and SMS lengths")
    _keys_arguments(command("keys", "API keys: create, list, revoke"))
    db = command("db", "database tools")
    db.add_argument("action", choices=["upgrade"], help="upgrade: create the database or apply new migrations")
    _import_arguments(command("import", "import subscribers from a CSV or NDJSON file (UTF-8 or GBK); all or "
                                        "nothing unless --accept-valid",
                              IMPORT_EPILOG.format(columns="; ".join(
                                  f"{name} ({', '.join(aliases)})" if aliases else name
                                  for name, aliases in COLUMNS.items()))))
    return parser


def _keys_arguments(keys: argparse.ArgumentParser) -> None:
    keys.add_argument("action", choices=["create", "revoke", "list"], help="what to do")
    keys.add_argument("target", nargs="?", help="for revoke: the key itself or its id")
    keys.add_argument("--role", choices=["admin", "publisher", "viewer"], help="for create: the key's role")
    keys.add_argument("--topics", nargs="+", metavar="PATTERN",
                      help="for create --role publisher (required): the topics it may publish to, as patterns "
                           "over the catalogue's topic keys, e.g. 'env.*' or 'env.heavy-pollution'; '*' for all")
    keys.add_argument("--label", help="for create: a note shown by keys list (who holds the key)")


def _import_arguments(bulk: argparse.ArgumentParser) -> None:
    bulk.add_argument("file", type=Path, help="the CSV or NDJSON file")
    bulk.add_argument("--format", choices=["csv", "ndjson"], help="default: from the file name, else sniffed")
    bulk.add_argument("--accept-valid", action="store_true", help="store the valid rows even if others are rejected")
    bulk.add_argument("--report", type=Path, help="write the whole report as JSON to this file")
    bulk.add_argument("--label", help="bureau or registry name, recorded as consent source import:LABEL "
                                      "(default: the file name)")
    bulk.add_argument("--pending", action="store_true",
                      help="store subscribers as pending (contacts to be verified) instead of active")
    bulk.add_argument("--assisted", action="store_true",
                      help="the file is a sub-district office's CSV list of assisted people, each told by a proxy: "
                           f"columns {ASSISTED_COLUMNS}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = commands.settings_from(args.config)
        return int(asyncio.run(HANDLERS[args.command](settings, args)))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except ConfigError as exc:
        print(CONFIG_ERROR.format(exc), file=sys.stderr)
    except (commands.CommandError, DatabaseUnavailable) as exc:
        print(FAILURE.format(exc), file=sys.stderr)
    except NotifierError as exc:
        print(FAILURE.format(commands.describe_error(exc)), file=sys.stderr)
    except Exception as exc:
        if os.environ.get("NOTIFIER_TRACEBACK"):
            traceback.print_exc()
        print(BUG.format(kind=type(exc).__name__, text=" ".join(str(exc).split())[:300]), file=sys.stderr)
        return EXIT_BUG
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
