"""``nvc1b import``: published DCVC checkpoints (DCVC-SDD, DCVC-DC's intra) to nvc1b weights."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="convert published DCVC-SDD / DCVC-DC checkpoints to nvc1b weights")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="FORMAT")
    s = kinds.add_parser("dcvc-sdd", help="DCVC-SDD P-frame + DCVC-DC intra checkpoints → an nvc1b export")
    s.add_argument("p_checkpoint", help="DCVC-SDD P-frame checkpoint (.pth.tar as released)")
    s.add_argument("--intra", required=True, help="DCVC-DC intra checkpoint (cvpr2023_image_psnr.pth.tar or alike)")
    s.add_argument("--out", required=True, help="output .safetensors export (encode, decode, eval, schedule init)")
    s.add_argument("--preset", default="sdd-21m", help="preset with the references' widths (default sdd-21m)")
    s.set_defaults(func=run_sdd)
    d = kinds.add_parser("dcvc-dc-intra", help="DCVC-DC intra checkpoint → an nvc1b intra part file")
    d.add_argument("i_checkpoint", help="DCVC-DC intra checkpoint (.pth.tar as released)")
    d.add_argument("--out", required=True, help="output .safetensors part file (an intra stage's weights:)")
    d.add_argument("--preset", default="sdd-21m", help="preset whose intra section has DCVC-DC's widths")
    d.set_defaults(func=run_intra)


def run_sdd(args: argparse.Namespace) -> int:
    from ..importers.convert import write_dcvc_sdd_export

    path = write_dcvc_sdd_export(args.p_checkpoint, args.intra, args.out, args.preset)
    print(f"imported DCVC-SDD {args.p_checkpoint} + DCVC-DC intra {args.intra}: every tensor mapped -> {path}")
    return 0


def run_intra(args: argparse.Namespace) -> int:
    from ..importers.convert import write_intra_part

    path = write_intra_part(args.i_checkpoint, args.out, args.preset)
    print(f"imported DCVC-DC intra {args.i_checkpoint}: every tensor mapped -> {path}")
    return 0
