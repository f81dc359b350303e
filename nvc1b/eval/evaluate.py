"""``evaluate``: a checkpoint on a test set through the real bitstream path, at several rate points.

Each sequence is encoded into one ``.nvc`` stream per rate point and that stream is decoded; bpp comes from the
stream's bytes, the qualities from the decoded frames, the times per frame from the encoder and the decoder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from ..coding.runtime import CodingModel, load_coding_model
from ..coding.sequence import FrameStats, SequenceDecoder, SequenceEncoder
from ..data.testsets import TestSequence, TestSet, load_test_set
from ..errors import ConfigError
from ..data.conversions import DEFAULT_CONVERSION
from ..data.testsets import source_depth
from .metrics import measure, yuv_psnr
from .protocol import output_planes, read_references, resolve_protocol
from .results import FrameRow, PointResult, finite_psnr, frame_row, point_name, summarize
from .runner import EvalResult, frame_bar, run_dataset

log = logging.getLogger(__name__)

Q_INDEXES = (0.0, 1.0, 2.0, 3.0)
"""The four rate anchors (λ = 85, 170, 380, 840)."""


def rate_points(q_indexes: Sequence[float]) -> list[tuple[str, float]]:
    """(name, q_index) per rate point: 'q0' … 'q3', 'q1.5'; each in [0, 3] and given once."""
    points = []
    for q in q_indexes:
        q = float(q)
        if not 0.0 <= q <= 3.0:
            raise ConfigError(f"q_index {q:g} is outside 0..3")
        points.append((point_name("q", q), q))
    if len({name for name, _ in points}) != len(points):
        raise ConfigError(f"q_indexes {', '.join(n for n, _ in points)} repeat a rate point")
    return points


def model_label(codec: CodingModel) -> str:
    """'RUN (preset)' for the export of a run directory, 'EXPORT (preset)' otherwise: for legends and tables."""
    source = Path(codec.source)
    name = source.parent.parent.name if source.parent.name == "exports" and source.parent.parent.name else source.stem
    return f"{name} ({codec.preset})"


def open_test_set(dataset: str | Path | TestSet) -> tuple[TestSet, str | None]:
    """A test set and the YAML it came from (None when given as an object)."""
    if isinstance(dataset, TestSet):
        return dataset, None
    return load_test_set(dataset), str(dataset)


def evaluate(checkpoint: str | Path | CodingModel, dataset: str | Path | TestSet, out: str | Path,
             q_indexes: Sequence[float] = Q_INDEXES, frames: int | None = None, intra_period: int | None = None,
             colorspace: str = "rgb", crop: tuple[int, int] | None = None, device: str = "cpu",
             cpu_threads: int | None = None, label: str | None = None, with_ms_ssim: bool = True,
             progress: bool = True, rgb_conversion: str = DEFAULT_CONVERSION, psnr: str = "float") -> EvalResult:
    """Encode and decode every sequence of ``dataset`` at every ``q_index`` with the checkpoint (run directory,
    export or a loaded CodingModel) into ``out``; frames and intra period default to the test set's YAML.
    ``rgb_conversion`` names the YUV → RGB conversion (``nvc1b.data.conversions``), ``psnr`` the output the RD
    curves measure ('float' as DCVC publishes, or 'integer'); both PSNRs are recorded either way.
    Points already on disk for the same model and protocol are reused. MS-SSIM runs on the model's device."""
    codec = checkpoint if isinstance(checkpoint, CodingModel) else load_coding_model(checkpoint, device)
    test_set, yaml_path = open_test_set(dataset)
    protocol = resolve_protocol(test_set, frames, intra_period, colorspace, crop, rgb_conversion, psnr)
    depth = source_depth(test_set)
    points = rate_points(q_indexes)
    label = label or model_label(codec)

    def code_point(sequence: TestSequence, name: str, q_index: float) -> tuple[PointResult, list[FrameRow]]:
        width, height = protocol.size(sequence)
        references = lambda: read_references(test_set, sequence, protocol)
        encoder = SequenceEncoder(codec, width, height, protocol.frames, q_index, protocol.intra_period, cpu_threads)
        encoded: list[FrameStats] = []
        rows: list[FrameRow] = []
        matches = True
        caps: list[float] = []
        with frame_bar(2 * protocol.frames, f"{sequence.name} {name} encode+decode", progress) as bar:
            for x, reference in references():
                encoded.append(encoder.encode_frame(x)[0])
                if protocol.colorspace == "yuv420-via-rgb":  # what a lossless codec of x would score
                    q = measure(reference, output_planes(x, protocol, depth), False)
                    caps.append(yuv_psnr(*(finite_psnr(p) for p in (q.psnr_y_float, q.psnr_u_float, q.psnr_v_float))))
                bar.update()
            stream = encoder.finish()
            for (dec, x_hat), (_, reference), enc in zip(SequenceDecoder(codec, stream), references(), encoded,
                                                         strict=True):
                quality = measure(reference, output_planes(x_hat, protocol, depth), with_ms_ssim, codec.device)
                rows.append(frame_row(enc.index, enc.frame_type, enc.bytes, width * height, quality, enc.seconds,
                                      dec.seconds, enc.bits, enc.payload_bytes))
                matches = matches and bool(dec.matches_encoder)
                bar.update()
        if not matches:
            log.warning("%s %s: decoded frames differ from the encoder's reconstruction", sequence.name, name)
        bits = {k: sum(s.bits.get(k, 0.0) for s in encoded) for k in ("m", "z_m", "y", "z_y")}
        cap = sum(caps) / len(caps) if caps else None
        result = summarize(sequence.name, name, q_index, width, height, len(stream), rows, bits, matches, cap)
        return result, rows

    codec_identity = {"kind": "nvc1b", "preset": codec.preset, "fingerprint": codec.fingerprint.hex()}
    if codec.family != "nvc":  # NVC results keep the identity they always had
        codec_identity["family"] = codec.family
    info = {"checkpoint": codec.source, "dataset_yaml": yaml_path, "device": str(codec.device)}
    if protocol.colorspace == "yuv420-via-rgb":
        info["note"] = ("RGB-model path: the 4:2:0 input is coded as clamped float RGB and converted back, which caps "
                        "the YUV PSNR even of a lossless codec (psnr_yuv_cap per sequence)")
    return run_dataset(out, test_set, protocol, codec_identity, label, points, code_point, progress, info)
