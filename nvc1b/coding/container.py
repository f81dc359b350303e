"""The ``.nvc`` container: a stream header, then one record per frame. Little-endian throughout; the layout is
documented field by field in ``docs/bitstream.md``. Reading validates every field and checksum and raises a
one-line ``BitstreamError`` naming the frame and byte offset."""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import BitstreamError

MAGIC = b"NV1B"
VERSION = 1
FINGERPRINT_BYTES = 16
MAX_DIMENSION = 16384
"""Largest width or height a stream may declare."""
MAX_FRAMES = 1 << 24
FRAME_TYPES = {0: "I", 1: "P"}

_HEADER = struct.Struct("<4sHH16sIIIIfHB")  # magic … preset name length; then the name, then CRC-32
_RECORD = struct.Struct("<BIII")  # type, payload size, latent checksum, reconstruction checksum; then CRC-32
_CRC = struct.Struct("<I")
RECORD_OVERHEAD = _RECORD.size + _CRC.size
"""Bytes of a frame record besides its payload."""


@dataclass(frozen=True)
class StreamHeader:
    """What a decoder needs before the first frame."""

    fingerprint: bytes
    """First 16 bytes of the model's coding fingerprint (preset, weights and coding tables)."""
    preset: str
    """Preset name of the model, for error messages."""
    width: int
    height: int
    frame_count: int
    intra_period: int
    """Frame i is an I-frame when i % intra_period == 0."""
    q_index: float
    """Rate position in [0, 3] (float32)."""
    cpu_threads: int
    """Intra-op threads the encoder ran the networks with on the CPU (0: encoded on a GPU)."""

    def frame_type(self, index: int) -> str:
        return "I" if index % self.intra_period == 0 else "P"

    def pack(self) -> bytes:
        name = self.preset.encode()[:255]
        body = _HEADER.pack(
            MAGIC, VERSION, 0, self.fingerprint, self.width, self.height, self.frame_count, self.intra_period,
            self.q_index, self.cpu_threads, len(name),
        ) + name
        return body + _CRC.pack(zlib.crc32(body))

    @property
    def size(self) -> int:
        return _HEADER.size + len(self.preset.encode()[:255]) + _CRC.size


@dataclass(frozen=True)
class FrameRecord:
    """One frame of a stream, as read from bytes."""

    index: int
    frame_type: str
    offset: int
    """Byte offset of the record in the stream."""
    payload: bytes
    latent_checksum: int
    """CRC-32 of the frame's integer symbols (int32, coding order): detects decoding with other probabilities."""
    recon_checksum: int
    """CRC-32 of the encoder's reconstruction as 8-bit RGB (H, W, 3): tells whether the decode matches it exactly."""

    @property
    def size(self) -> int:
        return RECORD_OVERHEAD + len(self.payload)

    @property
    def where(self) -> str:
        return f"frame {self.index} (byte {self.offset})"


def pack_frame(frame_type: str, payload: bytes, latent_checksum: int, recon_checksum: int) -> bytes:
    """Bytes of one frame record."""
    code = {v: k for k, v in FRAME_TYPES.items()}[frame_type]
    body = _RECORD.pack(code, len(payload), latent_checksum, recon_checksum)
    return body + _CRC.pack(zlib.crc32(payload, zlib.crc32(body))) + payload


def _need(data: bytes, offset: int, size: int, what: str) -> None:
    if offset + size > len(data):
        raise BitstreamError(f"{what}: stream ends at byte {len(data)}, {offset + size - len(data)} bytes short (truncated)")


def read_header(data: bytes) -> StreamHeader:
    """Parse and check the stream header."""
    _need(data, 0, _HEADER.size, "header")
    magic, version, flags, fingerprint, width, height, frames, period, q, threads, name_len = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise BitstreamError(f"header (byte 0): not an nvc1b bitstream (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise BitstreamError(f"header (byte 4): bitstream version {version} is not supported (this build reads {VERSION})")
    _need(data, _HEADER.size, name_len + _CRC.size, "header")
    end = _HEADER.size + name_len
    (crc,) = _CRC.unpack_from(data, end)
    if crc != zlib.crc32(data[:end]):
        raise BitstreamError(f"header (byte {end}): header checksum mismatch (corrupted stream)")
    checks = [
        (flags == 0, 6, f"unknown flags {flags:#x}"),
        (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION, 24, f"invalid frame size {width}x{height}"),
        (0 < frames <= MAX_FRAMES, 32, f"invalid frame count {frames}"),
        (period > 0, 36, f"invalid intra period {period}"),
        (math.isfinite(q) and 0.0 <= q <= 3.0, 40, f"invalid q_index {q}"),
    ]
    for ok, offset, message in checks:
        if not ok:
            raise BitstreamError(f"header (byte {offset}): {message}")
    try:
        preset = data[_HEADER.size : end].decode()
    except UnicodeDecodeError:
        raise BitstreamError(f"header (byte {_HEADER.size}): preset name is not UTF-8") from None
    return StreamHeader(
        fingerprint=bytes(fingerprint), preset=preset, width=width, height=height, frame_count=frames,
        intra_period=period, q_index=q, cpu_threads=threads,
    )


def iter_frames(data: bytes, header: StreamHeader) -> Iterator[FrameRecord]:
    """The frame records after the header, each checked (type, size, CRC) just before it is yielded."""
    offset = header.size
    for index in range(header.frame_count):
        where = f"frame {index} (byte {offset})"
        _need(data, offset, RECORD_OVERHEAD, where)
        code, length, latent_crc, recon_crc = _RECORD.unpack_from(data, offset)
        (crc,) = _CRC.unpack_from(data, offset + _RECORD.size)
        if FRAME_TYPES.get(code) != header.frame_type(index):
            raise BitstreamError(f"{where}: frame type {code} where a {header.frame_type(index)}-frame belongs (corrupted stream)")
        if length % 4:
            raise BitstreamError(f"{where}: payload size {length} is not a whole number of 32-bit words (corrupted stream)")
        start = offset + RECORD_OVERHEAD
        _need(data, start, length, where)
        payload = bytes(data[start : start + length])
        if crc != zlib.crc32(payload, zlib.crc32(data[offset : offset + _RECORD.size])):
            raise BitstreamError(f"{where}: frame checksum mismatch (corrupted stream)")
        yield FrameRecord(index, header.frame_type(index), offset, payload, latent_crc, recon_crc)
        offset = start + length
    if offset != len(data):
        raise BitstreamError(f"byte {offset}: {len(data) - offset} unexpected bytes after frame {header.frame_count - 1}")
