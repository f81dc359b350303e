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
    p.add_argument("--after", metavar="JOB|last",
                   help="the first job waits (afterok) for this job, or for the newest job of this run still queued "
                        "or running ('last': a second phase on another profile)")
    p.add_argument("--dry-run", action="store_true",
                   help="write and print the scripts and each sbatch command with its --dependency, submit nothing")
    p.set_defaults(func=run_submit)

    p = sub.add_parser("status", help="progress, ETA and newest checkpoint of each stage of a run (local or "
                                      "submitted), with the SLURM state where jobs were submitted")
    p.add_argument("--run-dir", required=True, type=Path)
    p.set_defaults(func=run_status)

    p = sub.add_parser("cancel", help="cancel a run's pending and running SLURM jobs")
    p.add_argument("--run-dir", required=True, type=Path)
    p.set_defaults(func=run_cancel)


def run_submit(args: argparse.Namespace) -> int:
    from ..cluster.profile import load_profile
    from ..cluster.submit import dry_run_commands, submit_chain

    subs = submit_chain(args.schedule, load_profile(args.cluster), args.run_dir, args.stages, args.dry_run, args.after)
    if args.dry_run:
        for s in subs:
            print(f"# ---- {s.script}")
            print(s.script.read_text())
        print(f"# dry run: {len(subs)} scripts written to {subs[0].script.parent}, nothing submitted; the chain:")
        print("\n".join(dry_run_commands(subs)))
        return 0
    for s in subs:
        after = f" after {s.dependency.split(':', 1)[1]}" if s.dependency else ""
        print(f"stage {s.index:2d} {s.stage:<24} {s.profile:<10}{after:<14} job {s.job_id}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from ..cluster.submit import run_status as status
    from ..train.observe import format_duration

    run, rows = status(args.run_dir)
    if run:
        where = f" at stage {run.get('stage')} ('{run.get('stage_name', '')}')" if "stage" in run else ""
        eta = format_duration(run.get("eta_schedule_s"))
        print(f"run {args.run_dir}: {run.get('state', '?')}{where}, {run.get('total_steps', 0)} steps in all"
              + (f", schedule ETA {eta}" if eta else ""))
    print(f"{'stage':<28}{'profile':<10}{'job':>8}  {'state':<11}{'reason':<22}{'elapsed':>10}  "
          f"{'progress':<11}{'ETA':<9}checkpoint")
    for r in rows:
        job, state, reason, elapsed = "-", "", "", ""
        if r.job is not None:
            job, elapsed = r.job.job_id, r.job.elapsed
            state = r.job.state + (f" r{r.job.restarts}" if r.job.restarts else "")
            reason = "" if r.job.reason in ("None", "") else r.job.reason
        print(f"{r.index:02d} {r.stage:<25}{r.profile:<10}{job:>8}  {state:<11}{reason:<22}{elapsed:>10}  "
              f"{r.progress:<11}{r.eta:<9}{r.checkpoint}")
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    from ..cluster.submit import cancel_run

    cancelled = cancel_run(args.run_dir)
    print(f"cancelled {len(cancelled)} job(s): {' '.join(cancelled)}" if cancelled else "no pending or running jobs")
    return 0
