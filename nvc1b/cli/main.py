"""Entry point: builds the sub-command parser, runs the command, turns NvcError into one line + exit code."""

from __future__ import annotations

import argparse
import sys

from ..errors import NvcError
from . import bench, cluster, coding, data, demo, evaluation, imports, params, sweep, train


COMMANDS = (params, data, train, cluster, bench, coding, evaluation, sweep, demo, imports)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nvc1b", description="Neural video coding at scale: NVC-1B and family.")
    # the deepspeed launcher passes --local_rank=N before the sub-command; the rank is read from the environment
    parser.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NvcError as exc:
        print(f"nvc1b: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("nvc1b: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
