"""The ``compeffdist`` command: run the pipeline, check params, list stages, fetch SentiBench."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from .config import ParamsError, load_params, parse_set_overrides


def _cmd_run(args: argparse.Namespace) -> int:
    from .runner import Runner

    runner = Runner(args.params, parse_set_overrides(args.set), run_dir=args.run_dir)
    manifest = runner.run(stages=args.stages, force=args.force, progress=not args.quiet)
    print(f"\nrun folder: {runner.run_dir}")
    for st in manifest["stages"]:
        print(f"  {st['name']:<32} {st['status']:<8} {st['seconds']:>8.1f} s")
    print(f"report: {runner.run_dir / 'report.html'}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    params = load_params(args.params, parse_set_overrides(args.set))
    print(yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False))
    return 0


def _cmd_stages(args: argparse.Namespace) -> int:
    from .runner import discover_stages
    from .stage import find_project_root

    for st in discover_stages(find_project_root() / "notebooks"):
        print(st.name)
    return 0


def _cmd_fetch_sentibench(args: argparse.Namespace) -> int:
    from .sentibench import fetch_sentibench

    path = fetch_sentibench(Path(args.dest))
    print(f"SentiBench datasets are in {path}; set evaluation.sentibench_dir: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="compeffdist", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser("run", help="run the numbered notebooks into reports/<run_name>/")
    run.add_argument("params", help="params YAML, e.g. params/tiny.yaml")
    run.add_argument("--stages", help="subset, e.g. '00-03' or '05,07'")
    run.add_argument("--force", action="store_true", help="rerun stages even when unchanged")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a param")
    run.add_argument("--run-dir", help="run folder (default reports/<run_name>)")
    run.add_argument("--quiet", action="store_true", help="no per-cell progress bar")
    run.set_defaults(func=_cmd_run)

    val = sub.add_parser("validate", help="check a params file and print the resolved values")
    val.add_argument("params")
    val.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    val.set_defaults(func=_cmd_validate)

    sub.add_parser("stages", help="list the stages").set_defaults(func=_cmd_stages)

    fetch = sub.add_parser("fetch-sentibench", help="clone SentiBench (needs network and git)")
    fetch.add_argument("dest", nargs="?", default="data/Sentiment-Distillation")
    fetch.set_defaults(func=_cmd_fetch_sentibench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ParamsError as err:
        print(f"compeffdist: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # clear one-line errors for the kit's own failures
        from .runner import RunError

        if isinstance(err, RunError | FileNotFoundError | ValueError | RuntimeError):
            print(f"compeffdist: {err}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
