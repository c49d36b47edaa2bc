"""Command line: ``python -m xqglib {run,book,build-model,profiles}``."""

from __future__ import annotations

import argparse
import json
import sys

from .errors import UserError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xqglib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute the notebooks of a profile in order (papermill)")
    run.add_argument("--profile", default="cpu")
    run.add_argument("--overrides", default="{}", help="JSON object of profile fields to replace")
    run.add_argument("--run-dir", default=None, help="default: runs/<profile>")
    run.add_argument("--from", dest="start", type=int, default=1, help="first notebook (1-6)")
    run.add_argument("--to", dest="stop", type=int, default=None, help="last notebook (1-6)")

    book = sub.add_parser("book", help="build the book from a profile's executed notebooks")
    book.add_argument("--profile", default="cpu")
    book.add_argument("--rerun", action="store_true", help="rerun the pipeline even if its run is complete")

    build = sub.add_parser("build-model", help="build a local model folder (idempotent)")
    build.add_argument("name")
    build.add_argument("--force", action="store_true")

    sub.add_parser("profiles", help="print the profiles")

    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            from .runner import run_pipeline

            rd = run_pipeline(args.profile, json.loads(args.overrides), args.run_dir, args.start, args.stop)
            print(f"run directory: {rd.root}")
        elif args.command == "book":
            from .runner import build_book

            build_book(args.profile, rerun=args.rerun)
        elif args.command == "build-model":
            from .models import build_model

            print(build_model(args.name, force=args.force))
        elif args.command == "profiles":
            from .config import PROFILES

            for profile in PROFILES.values():
                print(json.dumps(profile.to_dict(), indent=1))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"error: --overrides is not valid JSON ({exc.msg})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
