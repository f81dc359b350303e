"""``nvc1b submit``, ``nvc1b status``, ``nvc1b cancel``: a schedule as a chain of SLURM jobs."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="submit a schedule as one SLURM job per stage, chained with afterok")
    p.add_argument("schedule", type=Path)
    p.add_argument("--cluster", required=True, type=Path, help="cluster profile (cluster/*.yaml)")
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--stages", help="A..B, names or indices, inclusive (default: all)")
    p.add_argument("--dry-run", action="store_true", help="write and print the scripts, submit nothing")
    p.set_defaults(func=run_submit)

    p = sub.add_parser("status", help="SLURM state, progress, ETA and newest checkpoint of each stage of a run")
    p.add_argument("--run-dir", required=True, type=Path)
    p.set_defaults(func=run_status)

    p = sub.add_parser("cancel", help="cancel a run's pending and running SLURM jobs")
    p.add_argument("--run-dir", required=True, type=Path)
    p.set_defaults(func=run_cancel)


def run_submit(args: argparse.Namespace) -> int:
    from ..cluster.profile import load_profile
    from ..cluster.submit import submit_chain

    subs = submit_chain(args.schedule, load_profile(args.cluster), args.run_dir, args.stages, args.dry_run)
    for s in subs:
        if args.dry_run:
            print(f"# ---- {s.script}")
            print(s.script.read_text())
        else:
            print(f"stage {s.index:2d} {s.stage:<24} job {s.job_id}")
    if args.dry_run:
        print(f"# dry run: {len(subs)} scripts written to {subs[0].script.parent}, nothing submitted")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from ..cluster.submit import run_status as status

    rows = status(args.run_dir)
    print(f"{'stage':<28}{'job':>8}  {'state':<11}{'reason':<22}{'elapsed':>10}  {'progress':<11}{'ETA':<9}checkpoint")
    for r in rows:
        reason = "" if r.job.reason in ("None", "") else r.job.reason
        restarts = f" r{r.job.restarts}" if r.job.restarts else ""
        print(f"{r.index:02d} {r.stage:<25}{r.job.job_id:>8}  {r.job.state + restarts:<11}{reason:<22}"
              f"{r.job.elapsed:>10}  {r.progress:<11}{r.eta:<9}{r.checkpoint}")
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    from ..cluster.submit import cancel_run

    cancelled = cancel_run(args.run_dir)
    print(f"cancelled {len(cancelled)} job(s): {' '.join(cancelled)}" if cancelled else "no pending or running jobs")
    return 0
