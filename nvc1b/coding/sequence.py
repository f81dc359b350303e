"""Encoding and decoding whole sequences: the library functions behind ``nvc1b encode`` / ``nvc1b decode`` and
the evaluator. Frames are float RGB tensors (3, H, W) in [0, 1], any size; one stream codes one sequence."""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..data.video import to_uint8
from ..errors import BitstreamError, DataError
from ..model.codec import ReferenceState, StepOutput
from ..model.quantization import LatentCoder
from .container import (
    MAX_DIMENSION,
    MAX_FRAMES,
    MAX_THREADS,
    FrameRecord,
    StreamHeader,
    latent_check,
    pack_frame,
    read_frames,
    read_header,
    recon_check,
    seal,
)
from .runtime import CodingModel, coding_context

log = logging.getLogger(__name__)


@dataclass
class FrameStats:
    """What coding one frame cost."""

    index: int
    frame_type: str
    """'I' or 'P'."""
    bytes: int
    """Size of the frame's record in the stream (payload and its record fields, 4 bytes under 512-byte payloads)."""
    bits: dict[str, float]
    """Information content of each latent under the coding tables: 'z_y', 'y' (and 'z_m', 'm' for P-frames).
    Their sum is the payload size up to the ANS coder's final state (≤ 64 bits per frame)."""
    seconds: float
    """Wall time of the frame: networks and entropy coding."""
    entropy_seconds: float
    """Of which entropy coding (symbol grouping, ANS, escapes)."""
    matches_encoder: bool | None = None
    """Decoder only: whether the decoded frame equals the encoder's reconstruction bit for bit (8-bit RGB; an
    4-bit check, so a differing frame passes with odds 1/16)."""
    payload_bytes: int = 0
    """Of ``bytes``, the entropy-coded payload: the rate without the container."""

    @property
    def network_seconds(self) -> float:
        return self.seconds - self.entropy_seconds


@dataclass
class EncodedSequence:
    stream: bytes
    header: StreamHeader
    frames: list[FrameStats]
    reconstruction: Tensor | None = None
    """(N, 3, H, W) on the CPU: exactly what a decoder of ``stream`` outputs (when kept)."""

    @property
    def bpp(self) -> float:
        return 8 * len(self.stream) / (self.header.width * self.header.height * self.header.frame_count)


@dataclass
class DecodedSequence:
    header: StreamHeader
    frames: Tensor
    """(N, 3, H, W) on the CPU."""
    stats: list[FrameStats] = field(default_factory=list)
    stream_bytes: int = 0

    @property
    def bpp(self) -> float:
        return 8 * self.stream_bytes / (self.header.width * self.header.height * self.header.frame_count)


def recon_checksum(x_hat: Tensor) -> int:
    """CRC-32 of a reconstruction (3, H, W) as 8-bit RGB in (H, W, 3) order."""
    return zlib.crc32(np.ascontiguousarray(to_uint8(x_hat.permute(1, 2, 0))).tobytes())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(codec: CodingModel, frame_type: str, x: Tensor | None, state: ReferenceState | None, header: StreamHeader,
          coder: LatentCoder, index: int) -> StepOutput:
    """One I- or P-frame (frame ``index`` of the sequence) through the model's shared step API with the bitstream coder."""
    if frame_type == "I":
        return codec.model.intra_step(x, header.q_index, coder=coder, size=(header.height, header.width), batch=1,
                                      sequence_index=index)
    return codec.model.inter_step(x, state, header.q_index, coder=coder)


class SequenceEncoder:
    """Encodes the frames of one sequence one at a time; ``finish`` returns the stream."""

    def __init__(self, codec: CodingModel, width: int, height: int, frame_count: int, q_index: float = 0.0,
                 intra_period: int = 32, cpu_threads: int | None = None):
        if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
            raise DataError(f"frame size {width}x{height} is outside 1..{MAX_DIMENSION} per side")
        if not 0 < frame_count <= MAX_FRAMES or intra_period < 1:
            raise ValueError(f"need 1..{MAX_FRAMES} frames and an intra period ≥ 1, got {frame_count}, {intra_period}")
        if not 0.0 <= q_index <= 3.0:
            raise ValueError(f"q_index must lie in [0, 3], got {q_index}")
        threads = 0 if codec.device.type != "cpu" else (cpu_threads or torch.get_num_threads())
        if not 0 <= threads <= MAX_THREADS:
            raise ValueError(f"cpu_threads must lie in 1..{MAX_THREADS}, got {threads}")
        self.codec = codec
        self.header = StreamHeader(
            fingerprint=codec.fingerprint, width=width, height=height, frame_count=frame_count,
            intra_period=intra_period, q_index=float(np.float32(q_index)), cpu_threads=threads, family=codec.family,
        )
        self._records: list[bytes] = [self.header.pack()]
        self._state: ReferenceState | None = None
        self._index = 0

    def encode_frame(self, frame: Tensor) -> tuple[FrameStats, Tensor]:
        """Code the next frame (3, H, W); return its stats and reconstruction (3, H, W, CPU)."""
        header, index = self.header, self._index
        if index >= header.frame_count:
            raise ValueError(f"the stream was declared with {header.frame_count} frames")
        if frame.dim() != 3 or tuple(frame.shape) != (3, header.height, header.width):
            raise DataError(
                f"frame {index}: shape {tuple(frame.shape)} does not match the stream's 3x{header.height}x{header.width}"
            )
        device = self.codec.device
        x = frame.to(device=device, dtype=torch.float32)[None]
        frame_type = header.frame_type(index)
        coder = self.codec.symbol_encoder(where=f"frame {index}")
        start = time.perf_counter()
        with coding_context(device, header.cpu_threads):
            out = _step(self.codec, frame_type, x, self._state, header, coder, index)
            payload = coder.finish()
        _sync(device)
        seconds = time.perf_counter() - start
        x_hat = out.x_hat[0].cpu()
        record = pack_frame(payload, coder.checksum, recon_checksum(x_hat))
        self._records.append(record)
        self._state, self._index = out.state, index + 1
        stats = FrameStats(index, frame_type, len(record), dict(coder.bits), seconds, coder.seconds,
                           payload_bytes=len(payload))
        log.debug("encoded frame %d (%s): %d bytes, %.3f s", index, frame_type, len(record), seconds)
        return stats, x_hat

    def finish(self) -> bytes:
        """The complete stream (header, records, CRC-32 trailer), once every declared frame is encoded."""
        if self._index != self.header.frame_count:
            raise ValueError(f"{self._index} frames encoded but the stream declares {self.header.frame_count}")
        return seal(b"".join(self._records))


class SequenceDecoder:
    """Decodes a stream frame by frame; the header and the model's fingerprint are checked on construction."""

    def __init__(self, codec: CodingModel, stream: bytes):
        self.codec = codec
        self.stream = bytes(stream)
        self.header = read_header(self.stream)
        self.records = read_frames(self.stream, self.header)
        if self.header.family != codec.family:
            raise BitstreamError(
                f"header (byte 4): stream was encoded by a {self.header.family} model but {codec.source} is a "
                f"{codec.family} model (preset '{codec.preset}'): wrong checkpoint"
            )
        if self.header.fingerprint != codec.fingerprint:
            raise BitstreamError(
                f"header (byte 5): stream was encoded with model {self.header.fingerprint.hex()} but "
                f"{codec.source} is model {codec.fingerprint.hex()} (preset '{codec.preset}'): "
                "wrong checkpoint"
            )
        self.cpu_threads = self.header.cpu_threads or torch.get_num_threads()

    def __iter__(self) -> Iterator[tuple[FrameStats, Tensor]]:
        """Yield (stats, x̂ (3, H, W) on the CPU) per frame."""
        state = None
        for record in self.records:
            stats, x_hat, state = self._decode(record, state)
            yield stats, x_hat

    def _decode(self, record: FrameRecord, state: ReferenceState | None) -> tuple[FrameStats, Tensor, ReferenceState]:
        device = self.codec.device
        coder = self.codec.symbol_decoder(record.payload, where=record.where)
        start = time.perf_counter()
        try:
            with coding_context(device, self.cpu_threads):
                out = _step(self.codec, record.frame_type, None, state, self.header, coder, record.index)
            coder.finish()
            if latent_check(coder.checksum) != record.latent_check:
                raise BitstreamError(f"{record.where}: decoded latents fail their checksum")
        except BitstreamError as exc:
            # the stream passed its CRC: a decode that does not add up means other probabilities than the encoder's
            raise BitstreamError(
                f"{exc}; the stream is intact (its CRC-32 matches), so this decoder computed other probabilities than the encoder "
                f"(encoded {self._encoded_on()}; another device, CPU type or library build changes the arithmetic)"
            ) from None
        _sync(device)
        seconds = time.perf_counter() - start
        x_hat = out.x_hat[0].cpu()
        matches = recon_check(recon_checksum(x_hat)) == record.recon_check
        stats = FrameStats(record.index, record.frame_type, record.size, dict(coder.bits), seconds, coder.seconds,
                           matches, len(record.payload))
        return stats, x_hat, out.state

    def _encoded_on(self) -> str:
        threads = self.header.cpu_threads
        return f"on a CPU with {threads} thread{'s' if threads > 1 else ''}" if threads else "on a GPU"


def encode_sequence(codec: CodingModel, frames: Tensor | Sequence[Tensor], q_index: float = 0.0,
                    intra_period: int = 32, cpu_threads: int | None = None,
                    keep_reconstruction: bool = True) -> EncodedSequence:
    """Encode frames (N, 3, H, W) or a sequence of (3, H, W) into one stream at rate position ``q_index``."""
    if len(frames) == 0:
        raise DataError("no frames to encode")
    height, width = frames[0].shape[-2:]
    encoder = SequenceEncoder(codec, int(width), int(height), len(frames), q_index, intra_period, cpu_threads)
    stats, recon = [], []
    for frame in frames:
        frame_stats, x_hat = encoder.encode_frame(frame)
        stats.append(frame_stats)
        if keep_reconstruction:
            recon.append(x_hat)
    return EncodedSequence(encoder.finish(), encoder.header, stats, torch.stack(recon) if recon else None)


def decode_sequence(codec: CodingModel, stream: bytes) -> DecodedSequence:
    """Decode a whole stream; frames come back as (N, 3, H, W) on the CPU."""
    decoder = SequenceDecoder(codec, stream)
    stats, frames = [], []
    for frame_stats, x_hat in decoder:
        stats.append(frame_stats)
        frames.append(x_hat)
    return DecodedSequence(decoder.header, torch.stack(frames), stats, len(stream))


