"""The ``compeffdist`` command: run the pipeline, check params, list stages, export a run, publish the study,
fetch SentiBench, build the specialist teacher."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from compeffdist_utils.core.config import ParamsError, load_params, parse_set_overrides
from compeffdist_utils.core.redaction import redact
from compeffdist_utils.core.versions import version_line
from compeffdist_utils.environment_and_corpus.corpus import check_corpus_counts
from compeffdist_utils.export import export_run, publish_study, summary_lines
from compeffdist_utils.models import check_model_specs
from compeffdist_utils.planning.context import Rates
from compeffdist_utils.planning.plan import make_plan
from compeffdist_utils.planning.report import format_plan
from compeffdist_utils.planning.throughput import format_hours, load_throughput, stage_hours
from compeffdist_utils.run.interrupts import interrupt_name
from compeffdist_utils.run.runner import (
    RunError,
    RunInterrupted,
    Runner,
    discover_stages,
    select_stages,
)
from compeffdist_utils.sentibench import fetch_sentibench
from compeffdist_utils.specialist.build import main as build_teacher_main
from compeffdist_utils.stage.stage import find_project_root
from compeffdist_utils.teacher.backends import cache_path, check_teacher_settings
from compeffdist_utils.teacher.cache import ResponseCache


def _cmd_run(args: argparse.Namespace) -> int:

    runner = Runner(args.params, parse_set_overrides(args.set), run_dir=args.run_dir)
    manifest = runner.run(stages=args.stages, force=args.force, progress=not args.quiet)
    print(f"\nrun folder: {runner.run_dir}")
    for st in manifest["stages"]:
        print(f"  {st['name']:<32} {st['status']:<8} {st['seconds']:>8.1f} s")
    print(f"report: {runner.run_dir / 'report.html'}")
    if (runner.run_dir / "report.png").is_file():
        print(f"report screenshot: {runner.run_dir / 'report.png'}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    params = load_params(args.params, parse_set_overrides(args.set))
    root = find_project_root()
    names = [s.name for s in select_stages(discover_stages(root / "notebooks"), args.stages)]
    rates = Rates.from_params(
        params,
        price_in=args.price_in,
        price_out=args.price_out,
        teacher_tokens_per_s=args.teacher_tokens_per_s,
        student_tokens_per_s=args.student_tokens_per_s,
    )
    run_dir = Path(args.run_dir).resolve() if args.run_dir else params.run_dir(root)
    plan = make_plan(params, root, run_dir, names, rates)
    measured = load_throughput(args.throughput, args.gpu)
    if measured is not None:
        plan["gpu_hours"] = stage_hours(plan, params, measured)
    print(json.dumps(plan, indent=1) if args.json else format_plan(plan))
    if measured is not None and not args.json:
        print("\n" + format_hours(plan["gpu_hours"], measured, params.training.method))
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:

    params = load_params(args.params, parse_set_overrides(args.set))
    problems = check_model_specs(params) + check_teacher_settings(params) + check_corpus_counts(params.corpus)
    if problems:
        raise ParamsError(f"{args.params} cannot run as it is:\n  - " + "\n  - ".join(problems))
    print(yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False))
    print(f"# {version_line()}")  # a YAML comment: the output stays valid YAML
    return 0


def _cmd_stages(args: argparse.Namespace) -> int:

    for st in discover_stages(find_project_root() / "notebooks"):
        print(st.name)
    return 0


def _cmd_fetch_sentibench(args: argparse.Namespace) -> int:

    path = fetch_sentibench(Path(args.dest))
    print(f"SentiBench datasets are in {path}; set evaluation.sentibench_dir: {path}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    """Write a finished run's data (HF dataset folder) and distilled student (transformers folder) to share."""
    result = export_run(
        args.run_dir, args.out, dataset=not args.no_dataset, model=not args.no_model, overwrite=args.overwrite
    )
    print("\n".join(summary_lines(result)))
    return 0


def _cmd_publish_study(args: argparse.Namespace) -> int:
    """Write the study for readers (tables with CIs, figures, report, README) from its run folder."""
    docs = publish_study(args.run_dir, args.out, find_project_root(), args.sentibench_dir)
    grid = "PARTIAL grid" if docs.partial else "complete grid"
    print(f"published run {docs.run_name!r} ({grid}) into {docs.out}")
    for name, source in docs.sources.items():
        print(f"  {name:<20} {source}")
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    """List or drop cached teacher answers of one stage or model, keeping the rest of the file."""

    params = load_params(args.params, parse_set_overrides(args.set))
    path = cache_path(params)
    if not path.is_file():
        print(f"no response cache at {path}")
        return 0
    cache = ResponseCache(path, read_only=args.action == "info")  # info only reads: a damaged file stays put
    if args.action == "info":
        print(f"{path}: {cache.count()} answers")
        for stage, model, n in cache.summary():
            print(f"  {stage or '(untagged)':<28} {model:<40} {n:>8}")
        return 0
    stage = args.stage
    if stage and stage.isdigit():  # a stage number such as 01: its full name
        stage = select_stages(discover_stages(find_project_root() / "notebooks"), stage)[0].name
    if stage is None and args.model is None:
        raise ParamsError("cache drop: name --stage NN and/or --model SPEC (see `compeffdist cache info`)")
    n = cache.drop(stage=stage, model=args.model)
    print(f"dropped {n} cached answer(s) from {path}; the next run asks for them again")
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
    run.add_argument(
        "--quiet", action="store_true", help="one line per stage (no live progress of the running stage)"
    )
    run.set_defaults(func=_cmd_run)

    plan = sub.add_parser(
        "plan", help="the teacher requests, tokens, dollars and hours of a run, without running it"
    )
    plan.add_argument("params", help="params YAML, e.g. params/paper.yaml")
    plan.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a param")
    plan.add_argument("--stages", help="subset, e.g. '01-04'")
    plan.add_argument(
        "--run-dir", help="run folder whose outputs the plan counts (default reports/<run_name>)"
    )
    plan.add_argument("--price-in", type=float, metavar="USD_PER_1M", help="USD per 1M prompt tokens")
    plan.add_argument("--price-out", type=float, metavar="USD_PER_1M", help="USD per 1M completion tokens")
    plan.add_argument("--teacher-tokens-per-s", type=float, metavar="N", help="generated teacher tokens/s")
    plan.add_argument("--student-tokens-per-s", type=float, metavar="N", help="student forward tokens/s")
    plan.add_argument(
        "--throughput", metavar="FILE", help="benchmarks/bench_gpu.py's JSON: hours per stage 05-08"
    )
    plan.add_argument("--gpu", metavar="NAME", help="measured preset instead of --throughput: h200")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(func=_cmd_plan)

    val = sub.add_parser("validate", help="check a params file and print the resolved values")
    val.add_argument("params")
    val.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    val.set_defaults(func=_cmd_validate)

    sub.add_parser("stages", help="list the stages").set_defaults(func=_cmd_stages)

    cache = sub.add_parser("cache", help="list or drop cached teacher answers (one stage or model)")
    cache.add_argument("action", choices=["info", "drop"])
    cache.add_argument("params", help="params YAML (it names the cache folder)")
    cache.add_argument("--stage", help="drop: answers asked by this stage, e.g. 01")
    cache.add_argument("--model", help="drop: answers given by this teacher model")
    cache.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    cache.set_defaults(func=_cmd_cache)

    export = sub.add_parser(
        "export", help="a finished run's dataset (Parquet + card) and student (transformers folder + card)"
    )
    export.add_argument("run_dir", help="the run folder, e.g. reports/tiny")
    export.add_argument(
        "--out", required=True, help="writes OUT/dataset/ and OUT/model/ (nothing is uploaded)"
    )
    export.add_argument("--overwrite", action="store_true", help="replace OUT/dataset/ and OUT/model/")
    export.add_argument("--no-model", action="store_true", help="only the dataset")
    export.add_argument("--no-dataset", action="store_true", help="only the model")
    export.set_defaults(func=_cmd_export)

    study = sub.add_parser(
        "publish-study",
        help="the study for readers: results.csv, efficiency.csv, figures, report.html, README (stage 08 may be partial)",
    )
    study.add_argument("run_dir", help="the study's run folder, e.g. reports/study")
    study.add_argument("--out", default="docs/study", help="folder to (re)write whole (default docs/study)")
    study.add_argument(
        "--sentibench-dir", help="SentiBench's datasets/ folder, when not where the run's params say"
    )
    study.set_defaults(func=_cmd_publish_study)

    fetch = sub.add_parser("fetch-sentibench", help="clone SentiBench (needs network and git)")
    fetch.add_argument("dest", nargs="?", default="data/Sentiment-Distillation")
    fetch.set_defaults(func=_cmd_fetch_sentibench)

    # listed here for --help; main() hands its arguments to the builder's own parser
    sub.add_parser(
        "build-teacher", help="build the specialist teacher embedded:smollm2-135m-sentiment (--seed 42)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["build-teacher"]:
        return build_teacher_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ParamsError as err:
        print(f"compeffdist: {err}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, RunInterrupted) as err:  # Ctrl-C / SIGTERM: one line, the run resumable
        said = str(err) if isinstance(err, RunInterrupted) else f"interrupted by {interrupt_name(err)}"
        print(f"compeffdist: {redact(said)}", file=sys.stderr)
        return 130
    except Exception as err:  # clear one-line errors for the kit's own failures
        if isinstance(err, RunError | OSError | ValueError | RuntimeError):  # OSError: e.g. a full disk
            print(f"compeffdist: {redact(str(err))}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
