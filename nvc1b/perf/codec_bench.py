"""Coding-speed benchmark: encode and decode time per frame through the real bitstream path, split into
network and entropy-coding time."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ..coding import SequenceDecoder, encode_sequence, load_coding_model
from ..families import build_model, load_model_config
from ..model.export import save_model


def benchmark_codec(preset: str, width: int, height: int, threads: int | None = None,
                    device: str = "cpu", frames: int = 3) -> list[dict]:
    """Encode then decode ``frames`` smooth random frames (I, P, …) with seeded random weights; one row per
    coded frame after a warm-up frame. Timing does not depend on training; the rates do."""
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_model(build_model(load_model_config(preset)), Path(tmp) / f"{preset}.safetensors")
        codec = load_coding_model(path, device)
        g = torch.Generator().manual_seed(1)
        clip = torch.nn.functional.avg_pool2d(torch.rand(frames + 1, 3, height, width, generator=g), 9, 1, 4)
        encode_sequence(codec, clip[:1], q_index=1, cpu_threads=threads)  # warm-up (kernel selection)
        encoded = encode_sequence(codec, clip[1:], q_index=1, cpu_threads=threads, keep_reconstruction=False)
        components = []  # per decoded frame, where the model splits its time (VCT: paper Table 3's columns)
        split = hasattr(codec.model, "component_seconds")
        decoded_stats = []
        if split:
            codec.model.component_seconds = {}
        for stats, _ in SequenceDecoder(codec, encoded.stream):
            decoded_stats.append(stats)
            if split:
                components.append(codec.model.component_seconds)
                codec.model.component_seconds = {}
        if split:
            codec.model.component_seconds = None
    rows = [
        {
            "preset": preset, "size": f"{width}x{height}", "device": device, "frame": enc.frame_type,
            "bytes": enc.bytes, "encode_s": enc.seconds, "encode_network_s": enc.network_seconds,
            "encode_entropy_s": enc.entropy_seconds, "decode_s": dec.seconds,
            "decode_network_s": dec.network_seconds, "decode_entropy_s": dec.entropy_seconds,
        }
        for enc, dec in zip(encoded.frames, decoded_stats)
    ]
    for row, dec, parts in zip(rows, decoded_stats, components):
        row.update({f"decode_{k}_s": v for k, v in parts.items()}, decode_EC_s=dec.entropy_seconds)
    return rows


def render_codec(rows: list[dict]) -> str:
    lines = [f"{'preset':<9}{'size':>11}{'frame':>6}{'encode s':>10}{'network':>9}{'entropy':>9}"
             f"{'decode s':>10}{'network':>9}{'entropy':>9}"]
    for r in rows:
        lines.append(f"{r['preset']:<9}{r['size']:>11}{r['frame']:>6}{r['encode_s']:>10.3f}{r['encode_network_s']:>9.3f}"
                     f"{r['encode_entropy_s']:>9.3f}{r['decode_s']:>10.3f}{r['decode_network_s']:>9.3f}"
                     f"{r['decode_entropy_s']:>9.3f}")
        split = [(k[7:-2], v) for k, v in r.items() if k.startswith("decode_T") or k in ("decode_D_s", "decode_EC_s")]
        if split:
            lines.append(" " * 26 + "decode split: " + ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in split))
    return "\n".join(lines)
