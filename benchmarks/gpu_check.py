"""The GPU paths CI cannot run, checked in one go on a machine with one GPU (run by benchmarks/gpu_check.sh).

Steps: the environment; the dtype probe of a training step under CUDA bf16 autocast (warps and rates in fp32,
convolutions in bf16); stages/demo.yaml trained a few steps in bf16 through the real engine with one injected NaN,
stopped, resumed, and one clip encoded and decoded with the result; `nvc1b bench train` at T = 2 and 6 with
--baseline; `nvc1b bench memory --check` at T = 2 and 6; `nvc1b bench codec` at 1080p; the CUDA coding tests.
Every step is timed and reported pass/fail even when an earlier one failed. ``--cpu-smoke`` runs the same steps
with `tiny` in fp32 on the CPU (the dtype probe then re-enacts CUDA's autocast with GpuEmulation), so CI keeps
the script working.

Writes OUT/gpu_check.json (the summary), OUT/gpu_check.txt (the table, also printed) and OUT/gpu_check.log (every
step's output).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Settings:
    """What differs between the GPU check and the CPU smoke run."""

    smoke: bool
    out: Path

    @property
    def preset(self) -> str:
        return "tiny" if self.smoke else "nvc1b"

    @property
    def device(self) -> str:
        return "cpu" if self.smoke else "cuda"

    @property
    def crop(self) -> int:
        return 32 if self.smoke else 256


class StepFailed(Exception):
    """A step ran but its result is wrong (the message says what)."""


def cli(*argv: str) -> str:
    """Run `nvc1b ARGV` in this process; its stdout (echoed to the log), or StepFailed on a non-zero exit."""
    from nvc1b.cli.main import main

    out = io.StringIO()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR1)}
    try:
        with contextlib.redirect_stdout(out):
            code = main(list(argv))
    finally:  # the trainer's stop-on-signal handlers must not outlive its command
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    print(out.getvalue(), flush=True)
    if code:
        raise StepFailed(f"nvc1b {' '.join(argv[:2])}: exit {code} (its error is in the log)")
    return out.getvalue()


def step_environment(s: Settings) -> str:
    import deepspeed
    import torch
    from deepspeed.accelerator import get_accelerator

    info = {
        "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "deepspeed": deepspeed.__version__, "accelerator": get_accelerator().device_name(),
        "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(device=props.name, memory_gb=round(props.total_memory / 2**30, 1),
                    capability=f"{props.major}.{props.minor}", cudnn=torch.backends.cudnn.version(),
                    nccl=".".join(str(v) for v in torch.cuda.nccl.version() if v != ""), bf16=torch.cuda.is_bf16_supported())
    else:
        info["device"] = platform.processor() or platform.machine()
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        info["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    print(json.dumps(info, indent=1))
    if not s.smoke and not info["gpus"]:
        raise StepFailed("torch sees no CUDA device (use --cpu-smoke on a machine without one)")
    if not s.smoke and info["accelerator"] != "cuda":
        raise StepFailed(f"DeepSpeed's accelerator is {info['accelerator']!r}, not 'cuda' (unset DS_ACCELERATOR)")
    return f"{info['device']}, torch {info['torch']}, CUDA {info['cuda']}, DeepSpeed {info['accelerator']}" + (
        f", NCCL {info['nccl']}" if "nccl" in info else "")


def step_dtype_probe(s: Settings) -> str:
    """One training step of `tiny` under CUDA's bf16 autocast: every grid and matmul fp32, convolutions bf16."""
    import torch

    from nvc1b.config.model import load_preset
    from nvc1b.model.codec import VideoCodec
    from nvc1b.perf.emulation import DtypeRecorder, GpuEmulation, backward_under
    from nvc1b.train.clip import ClipLoss, ClipSpec, set_trainable

    torch.manual_seed(0)
    codec = VideoCodec(load_preset("tiny")).to(s.device)
    set_trainable(codec, "All")
    module = ClipLoss(codec, ClipSpec("All", "all_T", 2, (85.0, 170.0, 380.0, 840.0), (0.5, 1.2, 0.5, 0.9)))
    frames = torch.rand(1, 2, 3, s.crop, s.crop, device=s.device)
    q_index = torch.tensor([3.0], device=s.device)
    rec = DtypeRecorder()
    if s.smoke:  # CPU autocast follows another policy (it runs grid_sampler in fp32 by itself): re-enact CUDA's
        gpu = GpuEmulation(torch.bfloat16)
        with rec, gpu:
            loss, _ = module(frames, q_index)
        backward_under(gpu, loss)
    else:
        with rec, torch.autocast("cuda", dtype=torch.bfloat16):
            loss, _ = module(frames, q_index)
        loss.backward()
    bad_grids = [i for i, (x, g, exact) in enumerate(rec.grids) if x != torch.float32 or g != torch.float32 or exact]
    bf16_convs = rec.convs.count(torch.bfloat16)
    summary = (f"{len(rec.grids)} grids ({len(bad_grids)} not fp32-computed), {bf16_convs}/{len(rec.convs)} convs bf16, "
               f"{rec.matmuls.count(torch.float32)}/{len(rec.matmuls)} matmuls fp32, loss {loss.item():.4g}")
    print(summary)
    if bad_grids or not rec.grids:
        raise StepFailed(f"sampling grids not computed in fp32: {bad_grids} of {len(rec.grids)}")
    if set(rec.matmuls) != {torch.float32}:
        raise StepFailed(f"factorized-prior matmuls not all fp32: {rec.matmuls}")
    if bf16_convs < len(rec.convs) - 2:  # the two flow heads run in fp32
        raise StepFailed(f"only {bf16_convs} of {len(rec.convs)} convolutions ran in bf16")
    if not torch.isfinite(loss):
        raise StepFailed(f"loss {loss.item()}")
    return summary


def _demo_schedule(s: Settings, manifest: Path) -> Path:
    """stages/demo.yaml cut to a few steps of its intra stage and its first cascaded stage, bf16 on the GPU,
    on ``manifest``'s clips."""
    import yaml

    sched = yaml.safe_load((ROOT / "stages" / "demo.yaml").read_text())
    by_name = {st["name"]: st for st in sched["stages"]}
    sched["stages"] = [{**by_name["intra"], "steps": 3}, {**by_name["t12-all"], "steps": 2}]
    for st in sched["stages"]:
        st.pop("epochs", None)
        st.pop("warmup_steps", None)  # the cut stages are shorter than the warm-up
    sched.update(precision="fp32" if s.smoke else "bf16", checkpoint_every=2, global_batch=4, micro_batch=2,
                 crop=s.crop)
    sched["data"] = {"train": str(manifest), "workers": 0}
    path = s.out / "demo-check.yaml"
    path.write_text(yaml.safe_dump(sched, sort_keys=False))
    return path


def step_train_resume_code(s: Settings) -> str:
    """Train with a NaN injected at intra step 2, stop after 3 steps, resume to the end, then code one clip."""
    import numpy as np

    run_dir, data = s.out / "demo-run", s.out / "demo-data"
    shutil.rmtree(run_dir, ignore_errors=True)
    if not (data / "train" / "manifest.json").is_file():  # 8 built-in clips: the check needs a few batches only
        shutil.rmtree(data, ignore_errors=True)
        cli("data", "synth", "--out", str(data), "--clips", "8", "--jobs", "1")
    schedule = _demo_schedule(s, data / "train" / "manifest.json")
    os.environ["NVC1B_INJECT_NAN"] = "intra:2"
    try:
        cli("train", str(schedule), "--run-dir", str(run_dir), "--max-steps", "3")
        cli("train", str(schedule), "--run-dir", str(run_dir), "--resume")
    finally:
        os.environ.pop("NVC1B_INJECT_NAN")
    records = [json.loads(line) for line in (run_dir / "logs" / "metrics.jsonl").read_text().splitlines()]
    skipped = [(r["stage"], r["stage_step"]) for r in records if not r["applied"]]
    if skipped != [("intra", 2)]:
        raise StepFailed(f"expected only intra step 2 skipped, got {skipped}")
    if json.loads((run_dir / "status.json").read_text())["state"] != "finished":
        raise StepFailed("the resumed run did not finish")
    # one clip: three frames of a moving smooth pattern, raw YUV 4:2:0
    h = w = 64 if s.smoke else 256
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for t in range(3):
        y = (128 + 60 * np.sin((xx + 3 * t) / 7.0) * np.cos(yy / 9.0)).astype(np.uint8)
        frames.append(np.concatenate([y.ravel(), np.full(h * w // 2, 128, np.uint8)]))
    clip = s.out / "clip.yuv"
    clip.write_bytes(np.concatenate(frames).tobytes())
    stream, decoded = s.out / "clip.nvc", s.out / "decoded.yuv"
    cli("encode", "--checkpoint", str(run_dir), "--input", str(clip), "--size", f"{w}x{h}", "--output", str(stream),
        "--device", s.device)
    report = cli("decode", str(stream), "--checkpoint", str(run_dir), "--output", str(decoded),
                 "--reference", str(clip), "--device", s.device)
    if decoded.stat().st_size != clip.stat().st_size:
        raise StepFailed(f"decoded {decoded.stat().st_size} bytes, expected {clip.stat().st_size}")
    last = report.strip().splitlines()[-1] if report.strip() else ""
    return f"{len(records)} steps, skipped {skipped}, resumed; {stream.stat().st_size} B stream; {last}"


def _bench_train(s: Settings, frames: int) -> str:
    argv = ["bench", "train", "--preset", s.preset, "--crop", str(s.crop), "--frames", str(frames), "--baseline"]
    if s.smoke:
        argv += ["--steps", "1", "--warmup", "0"]
    out = cli(*argv)
    return out.strip().splitlines()[-1] if out.strip() else ""


def _bench_memory(s: Settings) -> str:
    argv = ["bench", "memory", "--preset", s.preset, "--cluster", str(ROOT / "cluster" / "a800x4.yaml"),
            "--crop", str(s.crop), "--frames", "2", "6", "--check"]
    if s.smoke:
        argv += ["--precision", "fp32"]
    out = cli(*argv)
    return out.strip().splitlines()[-1] if out.strip() else ""


def _bench_codec(s: Settings) -> str:
    size = "64x64" if s.smoke else "1920x1080"
    out = cli("bench", "codec", "--preset", s.preset, "--size", size, "--device", s.device,
              *(["--frames", "1"] if s.smoke else []))
    return out.strip().splitlines()[-1] if out.strip() else ""


def _coding_tests(s: Settings) -> str:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_coding_gpu.py"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    print(proc.stdout[-3000:], proc.stderr[-2000:])
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0:
        raise StepFailed(f"pytest exit {proc.returncode}: {last}")
    if not s.smoke and "skipped" in last:
        raise StepFailed(f"the CUDA tests were skipped: {last}")
    return last


STEPS: list[tuple[str, Callable[[Settings], str]]] = [
    ("environment", step_environment),
    ("dtype probe (CUDA bf16 autocast)", step_dtype_probe),
    ("demo: bf16 train + NaN + resume + code", step_train_resume_code),
    ("bench train T=2 --baseline", lambda s: _bench_train(s, 2)),
    ("bench train T=6 --baseline", lambda s: _bench_train(s, 6)),
    ("bench memory --check T=2,6", _bench_memory),
    ("bench codec 1080p", _bench_codec),
    ("CUDA coding tests", _coding_tests),
]


def _release_memory() -> None:
    """What a step (or its out-of-memory failure) left on the GPU is freed before the next step."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_step(index: int, name: str, fn: Callable[[Settings], str], s: Settings) -> dict:
    """Run one step with its output in the log; a failure or a crash is reported and the next step runs."""
    print(f"\n===== step {index + 1}: {name} =====", flush=True)
    t0 = time.perf_counter()
    try:
        status, result = "pass", fn(s)
    except StepFailed as exc:
        status, result = "fail", str(exc)
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        status, result = "fail", f"{type(exc).__name__}: {first}"
    _release_memory()
    sys.stdout.flush()
    sys.stderr.flush()
    return {"step": name, "status": status, "seconds": round(time.perf_counter() - t0, 1), "result": result}


def render(rows: list[dict], s: Settings, total: float) -> str:
    width = max(len(r["step"]) for r in rows)
    mode = "CPU smoke run (tiny, fp32)" if s.smoke else f"GPU check ({s.preset}, bf16)"
    lines = [f"nvc1b gpu_check: {mode}", f"{'step':<{width}}  status   time  result"]
    for r in rows:
        lines.append(f"{r['step']:<{width}}  {r['status']:<6} {r['seconds']:5.1f}s  {r['result'][:110]}")
    passed = sum(r["status"] == "pass" for r in rows)
    lines.append(f"{passed}/{len(rows)} passed in {total:.0f} s; gpu_check.json and gpu_check.log in {s.out}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="the same steps with tiny in fp32 on the CPU")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu_check", help="output folder")
    args = parser.parse_args(argv)
    s = Settings(smoke=args.cpu_smoke, out=args.out.resolve())
    s.out.mkdir(parents=True, exist_ok=True)
    if s.smoke:
        os.environ["NVC1B_DEVICE"] = "cpu"
    os.environ.setdefault("NVC1B_PROGRESS", "0")
    sys.stdout.flush()
    console = os.fdopen(os.dup(1), "w", buffering=1)
    saved = os.dup(1), os.dup(2)
    t0 = time.perf_counter()
    rows = []
    # one log for the whole run, for Python's streams and the file descriptors (compilers DeepSpeed probes write
    # there): loggers created by a step (DeepSpeed's, the trainer's) keep a valid stream
    with open(s.out / "gpu_check.log", "w", buffering=1) as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            for i, (name, fn) in enumerate(STEPS):
                rows.append(run_step(i, name, fn, s))
                print(f"[{i + 1}/{len(STEPS)}] {name}: {rows[-1]['status']} ({rows[-1]['seconds']} s)", file=console)
        finally:
            log.flush()
            for fd, copy in enumerate(saved, start=1):
                os.dup2(copy, fd)
                os.close(copy)
        total = time.perf_counter() - t0
        summary = {"mode": "cpu-smoke" if s.smoke else "gpu", "preset": s.preset, "seconds": round(total, 1),
                   "passed": sum(r["status"] == "pass" for r in rows), "of": len(rows), "steps": rows}
        table = render(rows, s, total)
        (s.out / "gpu_check.json").write_text(json.dumps(summary, indent=1))
        (s.out / "gpu_check.txt").write_text(table + "\n")
    print(table, file=console)
    print(json.dumps({k: summary[k] for k in ("mode", "preset", "seconds", "passed", "of")}), file=console)
    return 0 if summary["passed"] == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
