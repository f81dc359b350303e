"""``nvc1b sweep plan|submit|run|status|report``: scaling studies from one spec (stages/sweeps/*.yaml)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="scaling studies: plan, submit or run, and report a sweep of models")
    kinds = p.add_subparsers(dest="sweep", required=True, metavar="ACTION")

    plan = kinds.add_parser("plan", help="each model's parameters per part vs the paper, and memory per GPU")
    plan.add_argument("spec", type=Path, help="sweep spec (stages/sweeps/*.yaml)")
    plan.add_argument("--cluster", type=Path, help="cluster profile: add each model's measured memory per GPU")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(func=run_plan)

    submit = kinds.add_parser("submit", help="submit every model's stage chain and its evaluation job to SLURM")
    submit.add_argument("spec", type=Path)
    submit.add_argument("--cluster", required=True, type=Path, help="cluster profile (cluster/*.yaml)")
    submit.add_argument("--run-root", required=True, type=Path, help="folder of the sweep's runs, one per model")
    submit.add_argument("--models", nargs="+", help="only these models (default: all)")
    submit.add_argument("--dry-run", action="store_true", help="write every script, submit nothing")
    submit.set_defaults(func=run_submit)

    run = kinds.add_parser("run", help="train (and evaluate) every model here, one after another, without SLURM")
    run.add_argument("spec", type=Path)
    run.add_argument("--run-root", required=True, type=Path)
    run.add_argument("--local", action="store_true", required=True, help="run in this process (the only mode)")
    run.add_argument("--models", nargs="+", help="only these models (default: all)")
    run.add_argument("--steps", type=int, help="cut every stage to N optimizer steps (smoke runs)")
    run.add_argument("--no-eval", action="store_true", help="train only")
    run.set_defaults(func=run_local)

    status = kinds.add_parser("status", help="per model: stages trained, the stage under way and its ETA, SLURM "
                                             "job states, test sets evaluated")
    status.add_argument("spec", type=Path)
    status.add_argument("--run-root", required=True, type=Path)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=run_status)

    report = kinds.add_parser("report", help="BD-rate vs the baseline per test set, and BD-rate vs parameters plots")
    report.add_argument("spec", type=Path)
    report.add_argument("--run-root", required=True, type=Path)
    report.add_argument("--out", type=Path, help="report folder (default: RUN_ROOT/report)")
    report.set_defaults(func=run_report)


def _models(args: argparse.Namespace):
    from ..sweep.build import resolve_models
    from ..sweep.spec import load_sweep

    sweep = load_sweep(args.spec)
    if getattr(args, "models", None):
        for name in args.models:
            sweep.spec.model(name)  # unknown names are an error
    return sweep, resolve_models(sweep)


def run_plan(args: argparse.Namespace) -> int:
    from ..cluster.profile import load_profile
    from ..sweep.plan import memory_settings, plan_json, plan_sweep, render_plan

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    sweep, models = _models(args)
    settings = memory_settings(sweep, load_profile(args.cluster)) if args.cluster else None
    rows = plan_sweep(sweep, models, settings)
    print(json.dumps(plan_json(sweep, rows, settings)) if args.json else render_plan(sweep, rows, settings))
    return 0


def run_submit(args: argparse.Namespace) -> int:
    from ..cluster.profile import load_profile
    from ..sweep.submit import submit_sweep

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sweep, models = _models(args)
    chosen = [m for m in models if not args.models or m.name in args.models]
    results = submit_sweep(sweep, chosen, load_profile(args.cluster), args.run_root, dry_run=args.dry_run)
    for r in results:
        print(r.describe())
    return 1 if any(r.error for r in results) else 0


def run_local(args: argparse.Namespace) -> int:
    from ..sweep.evaluation import run_eval_command
    from ..sweep.local import run_sweep_local

    sweep, models = _models(args)
    chosen = [m for m in models if not args.models or m.name in args.models]
    outcomes = run_sweep_local(sweep, chosen, args.run_root, steps=args.steps,
                               evaluate=None if args.no_eval else run_eval_command)
    for o in outcomes:
        print(o.describe())
    return 1 if any(o.failed for o in outcomes) else 0


def run_report(args: argparse.Namespace) -> int:
    from ..sweep.evaluation import evaluator
    from ..sweep.report import collect_report, write_report

    sweep, models = _models(args)
    load_results, bd_rate = evaluator()
    report = collect_report(sweep, models, args.run_root, load_results, bd_rate)
    out = args.out or Path(args.run_root) / "report"
    files = write_report(report, out)
    print(report.render())
    print(f"\nreport written to {out}: " + ", ".join(p.name for p in files))
    return 0


def run_status(args: argparse.Namespace) -> int:
    from ..sweep.status import render_status, status_json, sweep_status

    sweep, models = _models(args)
    rows = sweep_status(sweep, models, args.run_root)
    print(json.dumps(status_json(rows), indent=1) if args.json else render_status(rows))
    return 0
