"""Real bitstreams: entropy coding of every latent, the ``.nvc`` container, and sequence encode/decode."""

from .container import StreamHeader, read_header
from .runtime import CodingModel, coding_context, load_coding_model
from .sequence import (
    DecodedSequence,
    EncodedSequence,
    FrameStats,
    SequenceDecoder,
    SequenceEncoder,
    decode_sequence,
    encode_sequence,
)

__all__ = [
    "CodingModel",
    "DecodedSequence",
    "EncodedSequence",
    "FrameStats",
    "SequenceDecoder",
    "SequenceEncoder",
    "StreamHeader",
    "coding_context",
    "decode_sequence",
    "encode_sequence",
    "load_coding_model",
    "read_header",
]
