"""Damaged streams, wrong checkpoints and wrong inputs: one-line errors naming the frame and byte offset, and a
fuzz loop showing that the decoder only ever fails with BitstreamError."""

import random
import zlib

import pytest
import torch

from nvc1b.coding import decode_sequence, encode_sequence, load_coding_model, read_header
from nvc1b.coding.container import RECORD_OVERHEAD
from nvc1b.errors import BitstreamError, DataError, NvcError
from nvc1b.model import VideoCodec
from nvc1b.model.export import save_model


@pytest.fixture(scope="module")
def codec(trained_tiny_export):
    return load_coding_model(trained_tiny_export)


@pytest.fixture(scope="module")
def stream(codec):
    x = torch.nn.functional.avg_pool2d(torch.rand(3, 3, 32, 48, generator=torch.Generator().manual_seed(5)), 5, 1, 2)
    return encode_sequence(codec, x, q_index=2, intra_period=2).stream


def frame_offsets(stream):
    """Byte offset of each frame record."""
    offsets, offset = [], read_header(stream).size
    for _ in range(read_header(stream).frame_count):
        offsets.append(offset)
        offset += RECORD_OVERHEAD + int.from_bytes(stream[offset + 1 : offset + 5], "little")
    return offsets


def test_truncated_stream_names_frame_and_offset(codec, stream):
    offsets = frame_offsets(stream)
    cases = {10: "header", offsets[0] + 3: f"frame 0 (byte {offsets[0]})", offsets[2] + 20: f"frame 2 (byte {offsets[2]})"}
    for length, where in cases.items():
        with pytest.raises(BitstreamError, match="truncated") as info:
            decode_sequence(codec, stream[:length])
        assert str(info.value).startswith(where) and "\n" not in str(info.value)


def test_corrupted_payload_names_frame_and_offset(codec, stream):
    offsets = frame_offsets(stream)
    damaged = bytearray(stream)
    damaged[offsets[1] + RECORD_OVERHEAD + 2] ^= 0x10
    with pytest.raises(BitstreamError, match=rf"^frame 1 \(byte {offsets[1]}\): frame checksum mismatch"):
        decode_sequence(codec, bytes(damaged))


@pytest.mark.parametrize("offset, message", [(0, "not an nvc1b bitstream"), (4, "version"), (30, "header checksum")])
def test_damaged_header(codec, stream, offset, message):
    damaged = bytearray(stream)
    damaged[offset] ^= 0x01
    with pytest.raises(BitstreamError, match=message):
        decode_sequence(codec, bytes(damaged))


def test_trailing_bytes_are_rejected(codec, stream):
    with pytest.raises(BitstreamError, match=rf"byte {len(stream)}: 3 unexpected bytes after frame 2"):
        decode_sequence(codec, stream + b"abc")


def test_wrong_checkpoint_is_refused(tmp_path, tiny_config, stream):
    other = load_coding_model(save_model(VideoCodec(tiny_config), tmp_path / "other.safetensors"))
    with pytest.raises(BitstreamError, match=r"header \(byte 8\):.*preset 'tiny'.*wrong checkpoint"):
        decode_sequence(other, stream)


def test_wrong_frame_size_is_refused(codec):
    from nvc1b.coding import SequenceEncoder

    encoder = SequenceEncoder(codec, width=48, height=32, frame_count=2)
    with pytest.raises(DataError, match="frame 0: shape"):
        encoder.encode_frame(torch.rand(3, 32, 40))


def test_latents_decoded_with_other_probabilities_are_detected(codec, stream):
    """A payload that is valid ANS data but was not made with this decoder's probabilities: the latent checksum
    (or the escape and end-of-payload checks) catch it instead of returning a wrong frame."""
    offsets = frame_offsets(stream)
    start = offsets[0] + RECORD_OVERHEAD
    length = int.from_bytes(stream[offsets[0] + 1 : offsets[0] + 5], "little")
    payload = bytearray(stream[start : start + length])
    payload[0] ^= 0x40  # the ANS coder reads this word last: only the final symbols change
    record = bytearray(stream[offsets[0] : offsets[0] + 13])
    crc = zlib.crc32(bytes(payload), zlib.crc32(bytes(record))).to_bytes(4, "little")
    forged = stream[: offsets[0]] + bytes(record) + crc + bytes(payload) + stream[start + length :]
    with pytest.raises(BitstreamError, match=rf"^frame 0 \(byte {offsets[0]}\)"):
        decode_sequence(codec, forged)


def test_a_decoder_computing_other_probabilities_fails_loudly(trained_tiny_export, stream):
    """What another device's arithmetic does to a decoder, exaggerated: its scales and means differ slightly."""
    other = load_coding_model(trained_tiny_export)
    with torch.no_grad():
        other.model.intra.hyperprior.decoder[-1].bias.add_(0.05)
    with pytest.raises(BitstreamError, match=r"^frame 0 \(byte \d+\): .*other probabilities than the encoder"):
        decode_sequence(other, stream)


def test_fuzz_flips_and_truncations_only_raise_bitstream_errors(codec, stream):
    rng = random.Random(0)
    offsets = frame_offsets(stream)
    original = decode_sequence(codec, stream).frames
    for trial in range(120):
        data = bytearray(stream)
        if trial % 4 == 0:
            data = data[: rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        if trial % 3 == 0 and len(data) == len(stream):  # re-seal the frame checksums: garbage reaches the decoder
            for offset in offsets:
                length = int.from_bytes(data[offset + 1 : offset + 5], "little")
                if offset + RECORD_OVERHEAD + length <= len(data) and length % 4 == 0:
                    body = bytes(data[offset : offset + 13])
                    payload = bytes(data[offset + RECORD_OVERHEAD : offset + RECORD_OVERHEAD + length])
                    data[offset + 13 : offset + 17] = zlib.crc32(payload, zlib.crc32(body)).to_bytes(4, "little")
        if bytes(data) == stream:
            continue
        try:
            decoded = decode_sequence(codec, bytes(data))
        except BitstreamError as exc:
            assert "\n" not in str(exc)
            continue
        except NvcError as exc:  # pragma: no cover - the assertion explains
            pytest.fail(f"trial {trial}: {type(exc).__name__} instead of BitstreamError: {exc}")
        # only the reconstruction checksum (informational, re-sealed above) may be damaged without an error
        assert torch.equal(decoded.frames, original), trial
        assert not all(s.matches_encoder for s in decoded.stats), trial
