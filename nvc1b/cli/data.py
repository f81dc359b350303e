"""``nvc1b data``: pack video into training shards, build the synthetic dataset, write a test set's RGB PNGs,
verify shards."""

from __future__ import annotations

import argparse
import os

from ..data import builtin, pack, video
from ..data.conversions import CONVERSIONS, DEFAULT_CONVERSION
from ..data.manifest import read_manifest, verify_manifest
from ..errors import DataError
from ..files import check_output


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="pack video into tar shards, build the synthetic dataset, verify shards")
    actions = p.add_subparsers(dest="data_action", required=True, metavar="ACTION")

    packer = actions.add_parser("pack", help="pack clips into WebDataset tar shards with a manifest")
    sources = packer.add_subparsers(dest="source", required=True, metavar="SOURCE")
    vimeo = sources.add_parser("vimeo", help="a Vimeo-90k septuplet tree: ROOT/sequences/00001/0001/im1.png ...")
    vimeo.add_argument("root", help="Vimeo-90k root (holds sequences/)")
    vimeo.add_argument("--list", dest="list_file",
                       help="clip list (default: ROOT/sep_trainlist.txt; without it the pack stops unless --all)")
    vimeo.add_argument("--all", dest="all_clips", action="store_true",
                       help="pack every clip folder, test clips included, when no --list is given")
    frames = sources.add_parser("frames", help="folders of ordered images, cut into clips")
    frames.add_argument("folders", nargs="+", help="frame folders (natural order: im2 before im10)")
    yuv = sources.add_parser("yuv", help="raw 8-bit YUV 4:2:0 files, cut into clips (stored as BT.709 RGB)")
    yuv.add_argument("files", nargs="+", help="YUV files of one size")
    yuv.add_argument("--size", required=True, help="WIDTHxHEIGHT, for example 1920x1080")
    for q in (frames, yuv):
        q.add_argument("--clip", type=int, default=7, help="frames per clip (default 7)")
        q.add_argument("--stride", type=int, default=7, help="frames from one clip's start to the next (default 7)")
    for q in (vimeo, frames, yuv):
        q.add_argument("--out", required=True, help="output folder for shard-*.tar and manifest.json")
        q.add_argument("--shard-size", type=int, default=1000, help="clips per shard (default 1000)")
        q.add_argument("--png-level", type=int, default=pack.DEFAULT_PNG_LEVEL,
                       help="zlib level of the stored PNGs: 0 decodes ~3x faster, 6 is ~40%% smaller (default 0)")
        q.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="encoding processes")
        q.set_defaults(func=run_pack)

    synth = actions.add_parser("synth", help="the built-in synthetic dataset: training shards + YUV test set")
    synth.add_argument("--out", required=True, help="output folder (train/, test/, dataset.json)")
    synth.add_argument("--clips", type=int, default=builtin.DEFAULT_CLIPS, help=f"training clips (default {builtin.DEFAULT_CLIPS})")
    synth.add_argument("--seed", type=int, default=builtin.DEFAULT_SEED, help="random seed (same seed, same bytes)")
    synth.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="rendering processes")
    synth.set_defaults(func=run_synth)

    rgb = actions.add_parser("rgb", help="write the RGB PNG set of a YUV test set by a named conversion")
    rgb.add_argument("dataset", help="test-set YAML of YUV files (data/*.yaml)")
    rgb.add_argument("--out", required=True, help="output folder: one PNG folder per sequence and a png test-set YAML")
    rgb.add_argument("--conversion", choices=tuple(CONVERSIONS), default=DEFAULT_CONVERSION,
                     help=f"YUV 4:2:0 -> RGB conversion (default {DEFAULT_CONVERSION}: DCVC's released one)")
    rgb.add_argument("--frames", type=int, help="frames per sequence (default: all of each file)")
    rgb.set_defaults(func=run_rgb)

    verify = actions.add_parser("verify", help="re-hash every shard of a manifest against its checksums")
    verify.add_argument("manifest", help="manifest.json or the folder that holds it")
    verify.set_defaults(func=run_verify)


def run_pack(args: argparse.Namespace) -> int:
    kw = dict(shard_size=args.shard_size, png_level=args.png_level, jobs=args.jobs, progress=True)
    inputs = [args.root] if args.source == "vimeo" else (args.folders if args.source == "frames" else args.files)
    check_output(args.out, inputs, directory_ok=True, what="--out folder")
    if args.source == "vimeo":
        path = pack.pack_vimeo(args.root, args.out, args.list_file, all_clips=args.all_clips, **kw)
    elif args.source == "frames":
        path = pack.pack_frames(args.folders, args.out, args.clip, args.stride, **kw)
    else:
        width, height = video.parse_size(args.size)
        path = pack.pack_yuv(args.files, args.out, width, height, args.clip, args.stride, **kw)
    m = read_manifest(path)
    print(f"{m.clips} clips in {len(m.shards)} shards, {sum(s.bytes for s in m.shards) / 1e6:.1f} MB: {path}")
    return 0


def run_synth(args: argparse.Namespace) -> int:
    ds = builtin.build_synthetic_dataset(args.out, args.clips, args.seed, args.jobs, progress=True)
    print(f"{ds.clips} training clips: {ds.train_manifest}\ntest set: {ds.test_set}")
    return 0


def run_rgb(args: argparse.Namespace) -> int:
    from ..data.testsets import load_test_set, write_rgb_test_set

    if args.frames is not None and args.frames < 1:
        raise DataError(f"--frames must be at least 1, got {args.frames}")
    path = write_rgb_test_set(load_test_set(args.dataset), args.out, args.conversion, args.frames)
    print(f"RGB test set ({args.conversion}): {path}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    problems = verify_manifest(args.manifest)
    if problems:
        raise DataError(f"{len(problems)} shard(s) differ from the manifest; first: {problems[0]}")
    m = read_manifest(args.manifest)
    print(f"ok: {len(m.shards)} shards, {m.clips} clips match their sizes and checksums")
    return 0
