"""Command line: ``python -m xqglib {run,book,publish,reproduce,profiles,stages,train-retriever,generate,encode,build-model}``."""

from __future__ import annotations

import argparse
import sys

from xqglib.core.errors import UserError


def _add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="cpu", help="smoke | cpu | paper (default: cpu)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="replace one setting, e.g. --set generator.steps=200 (repeatable; "
                             "`python -m xqglib profiles` lists them)")
    parser.add_argument("--overrides", default="{}",
                        help='settings to replace as a JSON object, e.g. \'{"augmentation": {"alpha": 0.05}}\'')
    parser.add_argument("--run-dir", default=None, help="default: runs/<profile>")


def _overrides(args: argparse.Namespace) -> dict:
    """The overrides of ``--overrides`` and ``--set``, every one checked here, before anything
    starts; values of ``--set`` as the settings hold them (e.g. "ar,de" -> ["ar", "de"]), for the
    notebooks."""
    from xqglib.config.profiles import load_profile
    from xqglib.config.settings import parse_assignments, parse_overrides

    assigned = parse_assignments(args.assignments)
    overrides = {**parse_overrides(args.overrides), **assigned}
    load_profile(args.profile, overrides, from_text=bool(assigned))
    return _canonical(args.profile, overrides) if assigned else overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xqglib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute the stages' notebooks in order (papermill)")
    _add_settings_arguments(run)
    run.add_argument("--from", dest="start", default=None,
                     help="first stage: number (1-12) or name (default: the first one not finished "
                          "under these settings; --from 1 runs them all)")
    run.add_argument("--to", dest="stop", default=None, help="last stage: number (1-12) or name")

    book = sub.add_parser("book", help="run what a profile's book still needs, then build the book")
    _add_settings_arguments(book)
    book.add_argument("--rerun", action="store_true", help="rerun every stage even if its outputs are current")
    book.add_argument("--local", action="store_true",
                      help="build from a local run (running what it lacks), even where published/<profile> exists")

    publish = sub.add_parser("publish", help="export a complete run's small outputs into published/<profile>")
    publish.add_argument("--profile", default="cpu", help="smoke | cpu | paper (default: cpu)")
    publish.add_argument("--run-dir", default=None, help="default: runs/<profile>")
    publish.add_argument("--to", default=None, help="default: published/<profile>")

    reproduce = sub.add_parser("reproduce", help="recompute a published run's headline numbers and compare them")
    reproduce.add_argument("--tier", type=int, default=1,
                           help="1: from the published per-question tables (seconds); 3: a fresh complete run "
                                "(--run-dir, finished first with `python -m xqglib run`)")
    reproduce.add_argument("--profile", default="cpu", help="the published run's profile (default: cpu)")
    reproduce.add_argument("--published", default=None, help="default: published/<profile>")
    reproduce.add_argument("--run-dir", default=None, help="tier 3: the fresh run's directory")

    profiles = sub.add_parser("profiles", help="print the profiles' settings, grouped by section")
    profiles.add_argument("name", nargs="?", help="one profile (default: all)")
    profiles.add_argument("--explain", action="store_true", help="with each setting's meaning")

    stages = sub.add_parser("stages", help="print the stage table")
    stages.add_argument("--profile", default="cpu", help="whose stages and paths (default: cpu)")

    for command, (help_text, what) in {
        "train-retriever": ("train one retriever row on one or several processes (torchrun / accelerate launch); "
                            "stage 4 then reuses the model", "the retriever row (e.g. xdr)"),
        "generate": ("generate queries for every corpus passage with one generator, sharded across processes "
                     "(torchrun / accelerate launch); stage 3 then reuses them", "the generator (e.g. google/mt5-base)"),
        "encode": ("encode corpus, test queries and generated queries with one retriever, sharded across "
                   "processes (torchrun / accelerate launch); stage 5 then reuses them", "the retriever row (e.g. xdr)"),
    }.items():
        parser_ = sub.add_parser(command, help=help_text)
        _add_settings_arguments(parser_)
        parser_.add_argument("name", help=what)

    build = sub.add_parser("build-model", help="build a local model folder (idempotent)")
    build.add_argument("name")
    build.add_argument("--force", action="store_true")

    args = parser.parse_args(argv)
    try:
        if args.command in ("run", "book"):
            overrides = _overrides(args)
            if args.command == "run":
                from xqglib.pipeline.runner import run_pipeline

                rd = run_pipeline(args.profile, overrides, args.run_dir, args.start, args.stop)
                print(f"run directory: {rd.root}")
            else:
                from xqglib.pipeline.publish import book as build_book

                build_book(args.profile, local=args.local, rerun=args.rerun, overrides=overrides, run_dir=args.run_dir)
        elif args.command == "publish":
            from xqglib.pipeline.publish import export

            print(f"published: {export(args.profile, args.run_dir, args.to)}")
        elif args.command == "reproduce":
            from xqglib.pipeline.publish import reproduce as run_tier

            compared = run_tier(args.tier, args.published, args.profile, args.run_dir)
            if args.tier == 1 and (compared["verdict"] != "exact").any():
                return 1  # tier 1 must be exact: anything else is a failure
        elif args.command in DISTRIBUTED:
            from xqglib.pipeline import rq1
            from xqglib.pipeline.common import open_run
            from xqglib.pipeline.distributed import accelerator

            cfg, rd = open_run(args.profile, args.run_dir, _overrides(args))
            acc = accelerator()
            work, say = DISTRIBUTED[args.command]
            done = getattr(rq1, work)(cfg, rd, args.name, acc)
            if acc.is_main_process:
                print(f"{args.name}: {say(done, rd, args.name)} on {acc.num_processes} process(es)")
        elif args.command == "profiles":
            from xqglib.config.profiles import PROFILES
            from xqglib.config.settings import describe

            if args.name is not None and args.name not in PROFILES:
                raise UserError(f"unknown profile {args.name!r}; choose one of {', '.join(PROFILES)}")
            chosen = [PROFILES[args.name]] if args.name else list(PROFILES.values())
            print("\n\n".join(describe(p, with_help=args.explain) for p in chosen))
        elif args.command == "stages":
            from xqglib.config.profiles import load_profile
            from xqglib.pipeline.stages import table

            for row in table(load_profile(args.profile)):
                print(f"{row['stage']:<20} {row['notebook']}\n    needs:    {row['needs stages']} (stages it reads from)\n"
                      f"    reads:    {row['reads']}\n    writes:   {row['writes']}\n    settings: {row['settings']}")
        elif args.command == "build-model":
            from xqglib.models.builds import build_model

            print(build_model(args.name, force=args.force))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished stages are kept, and `run --from N` resumes", file=sys.stderr)
        return 130
    return 0


#: The commands that run on one process or several (torchrun / accelerate launch): the stage
#: function of :mod:`xqglib.pipeline.rq1` each calls with the accelerator, and what its first
#: process reports.
DISTRIBUTED = {
    "train-retriever": ("train_dense_retriever",
                        lambda log, rd, name: f"{len(log)} steps, saved to {rd.retriever_model(name)},"),
    "generate": ("generate_queries",
                 lambda rows, rd, name: f"queries for {len(rows):,} passages in {rd.generated(name)},"),
    "encode": ("encode_retriever",
               lambda c, rd, name: f"{c['passages']:,} passages, {c['test queries']:,} test queries and "
                                   f"{c['generated queries']:,} generated queries in "
                                   f"{rd.embeddings(name, 'passages').parent},"),
}


def _canonical(profile: str, overrides: dict) -> dict:
    """Overrides with the values as the settings hold them (lists for list settings)."""
    from xqglib.config.profiles import load_profile
    from xqglib.config.settings import flatten_overrides

    settings = load_profile(profile, overrides, from_text=True).flat()
    return {path: settings[path] for path in flatten_overrides(overrides)}


if __name__ == "__main__":
    sys.exit(main())
