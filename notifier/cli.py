"""`notifier` command line: turns arguments into settings and calls library functions; nothing else lives here."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from notifier import commands


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="notifier", description="Targeted public-welfare disclosures.")
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML configuration file")
        return p

    command("serve", "run the API and the delivery workers")
    command("worker", "run delivery workers only (scale-out: any number beside one serve)")
    demo = command("demo", "run the whole pipeline with fake gateways and sample data")
    demo.add_argument("--once", action="store_true", help="exit after printing the coverage")
    demo.add_argument("--subscribers", type=int, default=3000)
    publish = command("publish", "publish an alert from a JSON file (or - for stdin)")
    publish.add_argument("file")
    publish.add_argument("--wait", action="store_true", help="deliver it now and print its coverage")
    coverage = command("coverage", "print an alert's coverage")
    coverage.add_argument("alert_id")
    coverage.add_argument("--json", action="store_true")
    templates = command("templates", "template tools")
    templates.add_argument("action", choices=["check"])
    keys = command("keys", "API keys")
    keys.add_argument("action", choices=["create", "revoke", "list"])
    keys.add_argument("target", nargs="?", help="for revoke: the key or its id")
    keys.add_argument("--role", choices=["admin", "publisher", "viewer"])
    keys.add_argument("--topics", nargs="*", default=[], help="topic patterns a publisher may use, e.g. 'env.*'")
    keys.add_argument("--label")
    db = command("db", "database tools")
    db.add_argument("action", choices=["upgrade"])
    bulk = command("import", "import subscribers from a CSV or NDJSON file (UTF-8 or GBK); all or nothing")
    bulk.add_argument("file", type=Path)
    bulk.add_argument("--format", choices=["csv", "ndjson"], help="default: from the file name, else sniffed")
    bulk.add_argument("--accept-valid", action="store_true", help="store the valid rows even if others are rejected")
    bulk.add_argument("--report", type=Path, help="write the whole report as JSON to this file")
    bulk.add_argument("--label", help="bureau or registry name, recorded as consent source import:LABEL "
                                      "(default: the file name)")
    bulk.add_argument("--pending", action="store_true",
                      help="store subscribers as pending (contacts to be verified) instead of active")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = commands.settings_from(args.config)
    except (OSError, ValueError) as exc:
        print(f"notifier: configuration error: {exc}", file=sys.stderr)
        return 2
    handler = getattr(commands, f"cmd_{args.command}")
    try:
        return int(asyncio.run(handler(settings, args)))
    except KeyboardInterrupt:
        return 130
    except commands.CommandError as exc:
        print(f"notifier: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
