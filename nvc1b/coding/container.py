"""The ``.nvc`` container, version 3: a stream header, one record per frame, a CRC-32 trailer. Lean on purpose
(24 header bytes and 3 bytes a frame in the common case), since at the lowest rates every byte is a visible share
of the bitrate. The layout is documented field by field in ``docs/bitstream.md``. Reading validates every field
and checksum and raises a one-line ``BitstreamError`` naming the frame and byte offset."""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

from ..errors import BitstreamError

MAGIC = b"NVC"
VERSION = 3
FAMILY_IDS = {"nvc": 0, "vct": 1}
"""The model family a stream was coded with (header byte 4): a decoder of another family refuses it by name."""
FINGERPRINT_BYTES = 8
MAX_DIMENSION = 16384
"""Largest width or height a stream may declare."""
MAX_FRAMES = 1 << 24
MAX_THREADS = 1024
"""Most CPU threads an encoder may record (and a decoder will start)."""
MAX_WORDS = 1 << 32
"""Most 32-bit words a frame's payload may hold."""

_Q = struct.Struct("<f")
_TRAILER = struct.Struct("<I")
CHECK_BYTES = 2
"""One 16-bit word a frame holds both checks: the latent check in its low bits, the reconstruction check above."""
LATENT_CHECK_BITS = 12
RECON_CHECK_BITS = 4


def pack_varint(value: int) -> bytes:
    """Unsigned LEB128: 7 bits a byte, low bits first, high bit set on every byte but the last."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_varint(data: bytes, offset: int, what: str) -> tuple[int, int]:
    """(value, offset after it) of the LEB128 number at ``offset``; at most 5 bytes (32 bits)."""
    value = 0
    for i in range(5):
        if offset + i >= len(data):
            raise BitstreamError(f"{what}: stream ends at byte {len(data)} inside a size field (truncated)")
        byte = data[offset + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, offset + i + 1
    raise BitstreamError(f"{what}: size field at byte {offset} runs past 5 bytes (corrupted stream)")


def latent_check(symbol_crc: int) -> int:
    """The low 12 bits of a frame's symbol CRC-32, which its record keeps."""
    return symbol_crc & ((1 << LATENT_CHECK_BITS) - 1)


def recon_check(recon_crc: int) -> int:
    """The low 4 bits of a reconstruction's CRC-32, which its record keeps."""
    return recon_crc & ((1 << RECON_CHECK_BITS) - 1)


@dataclass(frozen=True)
class StreamHeader:
    """What a decoder needs before the first frame."""

    fingerprint: bytes
    """First 8 bytes of the model's coding fingerprint (preset, weights and coding tables)."""
    width: int
    height: int
    frame_count: int
    intra_period: int
    """Frame i is an I-frame when i % intra_period == 0."""
    q_index: float
    """Rate position in [0, 3] (float32)."""
    cpu_threads: int
    """Intra-op threads the encoder ran the networks with on the CPU (0: encoded on a GPU)."""
    family: str = "nvc"
    """Model family of the encoder (``nvc1b.families``)."""

    def frame_type(self, index: int) -> str:
        return "I" if index % self.intra_period == 0 else "P"

    def pack(self) -> bytes:
        numbers = (self.width, self.height, self.frame_count, self.intra_period)
        return (MAGIC + bytes([VERSION, FAMILY_IDS[self.family]]) + self.fingerprint[:FINGERPRINT_BYTES]
                + b"".join(pack_varint(n) for n in numbers) + _Q.pack(self.q_index) + pack_varint(self.cpu_threads))

    @property
    def size(self) -> int:
        return len(self.pack())


@dataclass(frozen=True)
class FrameRecord:
    """One frame of a stream, as read from bytes."""

    index: int
    frame_type: str
    offset: int
    """Byte offset of the record in the stream."""
    payload: bytes
    latent_check: int
    """Low 12 bits of the CRC-32 of the frame's integer symbols (int32, coding order): detects decoding with other
    probabilities than the encoder's."""
    recon_check: int
    """Low 4 bits of the CRC-32 of the encoder's reconstruction as 8-bit RGB (H, W, 3): whether the decode
    matches it exactly (informational)."""
    size: int
    """Bytes of the record: size field, checks and payload."""

    @property
    def where(self) -> str:
        return f"frame {self.index} (byte {self.offset})"


def pack_frame(payload: bytes, symbol_crc: int, recon_crc: int) -> bytes:
    """Bytes of one frame record: payload size in words, the two shortened checks in one word, the payload."""
    if len(payload) % 4:
        raise ValueError(f"an ANS payload is whole 32-bit words, got {len(payload)} bytes")
    checks = latent_check(symbol_crc) | recon_check(recon_crc) << LATENT_CHECK_BITS
    return pack_varint(len(payload) // 4) + checks.to_bytes(CHECK_BYTES, "little") + payload


def record_overhead(payload_bytes: int) -> int:
    """Container bytes of a frame record besides its payload (3 while the payload is under 512 bytes)."""
    return len(pack_varint(payload_bytes // 4)) + CHECK_BYTES


def seal(body: bytes) -> bytes:
    """A stream's header and records followed by their CRC-32 (the trailer)."""
    return body + _TRAILER.pack(zlib.crc32(body))


def _need(data: bytes, offset: int, size: int, what: str) -> None:
    if offset + size > len(data):
        raise BitstreamError(f"{what}: stream ends at byte {len(data)}, {offset + size - len(data)} bytes short (truncated)")


def read_header(data: bytes) -> StreamHeader:
    """Parse and check the stream header (its bytes are covered by the trailer, checked by ``read_frames``)."""
    _need(data, 0, len(MAGIC) + 2 + FINGERPRINT_BYTES, "header")
    if data[:3] != MAGIC:
        raise BitstreamError(f"header (byte 0): not an nvc1b bitstream (magic {bytes(data[:3])!r}, expected {MAGIC!r})")
    if data[3] != VERSION:
        raise BitstreamError(f"header (byte 3): bitstream version {data[3]} is not supported (this build reads {VERSION})")
    families = {v: k for k, v in FAMILY_IDS.items()}
    if data[4] not in families:
        raise BitstreamError(f"header (byte 4): unknown model family {data[4]} (this build codes {', '.join(FAMILY_IDS)})")
    family = families[data[4]]
    fingerprint = bytes(data[5:13])
    offset, numbers = 13, []
    for _ in range(4):
        start = offset
        value, offset = read_varint(data, offset, "header")
        numbers.append((value, start))
    (width, w_at), (height, h_at), (frames, n_at), (period, p_at) = numbers
    _need(data, offset, _Q.size, "header")
    (q,) = _Q.unpack_from(data, offset)
    q_at, offset = offset, offset + _Q.size
    threads_at = offset
    threads, offset = read_varint(data, offset, "header")
    checks = [
        (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION, w_at if not 0 < width <= MAX_DIMENSION else h_at,
         f"invalid frame size {width}x{height}"),
        (0 < frames <= MAX_FRAMES, n_at, f"invalid frame count {frames}"),
        (period > 0, p_at, f"invalid intra period {period}"),
        (math.isfinite(q) and 0.0 <= q <= 3.0, q_at, f"invalid q_index {q}"),
        (threads <= MAX_THREADS, threads_at, f"{threads} CPU threads is above the encoder's limit of {MAX_THREADS}"),
    ]
    for ok, at, message in checks:
        if not ok:
            raise BitstreamError(f"header (byte {at}): {message} (corrupted stream)")
    return StreamHeader(fingerprint=fingerprint, width=width, height=height, frame_count=frames,
                        intra_period=period, q_index=q, cpu_threads=threads, family=family)


def read_frames(data: bytes, header: StreamHeader) -> list[FrameRecord]:
    """Every frame record after the header, once the layout (sizes, truncation, trailing bytes) and the stream's
    CRC-32 trailer are checked: damage anywhere is reported before any frame is decoded."""
    offset = header.size
    records = []
    for index in range(header.frame_count):
        where = f"frame {index} (byte {offset})"
        words, start = read_varint(data, offset, where)
        _need(data, start, CHECK_BYTES, where)
        checks = int.from_bytes(data[start : start + CHECK_BYTES], "little")
        latent, recon = latent_check(checks), checks >> LATENT_CHECK_BITS
        start += CHECK_BYTES
        _need(data, start, 4 * words + _TRAILER.size, where)
        payload = bytes(data[start : start + 4 * words])
        records.append(FrameRecord(index, header.frame_type(index), offset, payload, latent, recon,
                                   start + 4 * words - offset))
        offset = start + 4 * words
    if offset + _TRAILER.size != len(data):
        extra = len(data) - offset - _TRAILER.size
        raise BitstreamError(f"byte {offset + _TRAILER.size}: {extra} unexpected bytes after the trailer")
    (crc,) = _TRAILER.unpack_from(data, offset)
    if crc != zlib.crc32(data[:offset]):
        raise BitstreamError(f"byte {offset}: stream checksum mismatch: bytes 0..{offset - 1} are damaged "
                             "(corrupted stream)")
    return records
