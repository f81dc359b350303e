"""Damaged streams, wrong checkpoints and wrong inputs: one-line errors naming the frame and byte offset, a fuzz
loop showing that the decoder only ever fails with BitstreamError, and the lean container's overhead measured."""

import random
import zlib
from dataclasses import replace

import pytest
import torch

from nvc1b.coding import decode_sequence, encode_sequence, load_coding_model, read_header
from nvc1b.cli.main import main
from nvc1b.coding.container import MAX_THREADS, pack_varint, read_frames, record_overhead
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
    return [r.offset for r in read_frames(stream, read_header(stream))]


def reseal(body):
    """A stream body (header and records) with a fresh CRC-32 trailer: a forgery that passes the transport check."""
    return bytes(body) + zlib.crc32(bytes(body)).to_bytes(4, "little")


def test_truncated_stream_names_frame_and_offset(codec, stream):
    offsets = frame_offsets(stream)
    cases = {10: "header", offsets[0] + 3: f"frame 0 (byte {offsets[0]})", offsets[2] + 20: f"frame 2 (byte {offsets[2]})"}
    for length, where in cases.items():
        with pytest.raises(BitstreamError, match="truncated") as info:
            decode_sequence(codec, stream[:length])
        assert str(info.value).startswith(where) and "\n" not in str(info.value)


def test_corrupted_payload_is_caught_by_the_stream_checksum(codec, stream):
    offsets = frame_offsets(stream)
    damaged = bytearray(stream)
    damaged[offsets[1] + 6] ^= 0x10
    with pytest.raises(BitstreamError, match=rf"^byte {len(stream) - 4}: stream checksum mismatch"):
        decode_sequence(codec, bytes(damaged))


@pytest.mark.parametrize("offset, message", [(0, "not an nvc1b bitstream"), (3, "version"), (6, "stream checksum")])
def test_damaged_header(codec, stream, offset, message):
    damaged = bytearray(stream)
    damaged[offset] ^= 0x01
    with pytest.raises(BitstreamError, match=message):
        decode_sequence(codec, bytes(damaged))


def test_trailing_bytes_are_rejected(codec, stream):
    with pytest.raises(BitstreamError, match=rf"byte {len(stream)}: 3 unexpected bytes after the trailer"):
        decode_sequence(codec, stream + b"abc")


def test_wrong_checkpoint_is_refused(tmp_path, tiny_config, stream):
    other = load_coding_model(save_model(VideoCodec(tiny_config), tmp_path / "other.safetensors"))
    with pytest.raises(BitstreamError, match=r"header \(byte 5\):.*preset 'tiny'.*wrong checkpoint"):
        decode_sequence(other, stream)


def test_wrong_frame_size_is_refused(codec):
    from nvc1b.coding import SequenceEncoder

    encoder = SequenceEncoder(codec, width=48, height=32, frame_count=2)
    with pytest.raises(DataError, match="frame 0: shape"):
        encoder.encode_frame(torch.rand(3, 32, 40))


def test_latents_decoded_with_other_probabilities_are_detected(codec, stream):
    """A payload that is valid ANS data but was not made with this decoder's probabilities: the latent checksum
    (or the escape and end-of-payload checks) catch it instead of returning a wrong frame."""
    first = read_frames(stream, read_header(stream))[0]
    start = first.offset + first.size - len(first.payload)
    forged = bytearray(stream[:-4])
    forged[start] ^= 0x40  # the ANS coder reads this word last: only the final symbols change
    with pytest.raises(BitstreamError, match=rf"^frame 0 \(byte {first.offset}\)"):
        decode_sequence(codec, reseal(forged))


def test_a_decoder_computing_other_probabilities_fails_loudly(trained_tiny_export, stream):
    """What another device's arithmetic does to a decoder, exaggerated: its scales and means differ slightly."""
    other = load_coding_model(trained_tiny_export)
    with torch.no_grad():
        list(other.model.intra.hyperprior.decoder[-1].parameters())[-1].add_(0.05)
    with pytest.raises(BitstreamError, match=r"^frame 0 \(byte \d+\): .*other probabilities than the encoder"):
        decode_sequence(other, stream)


def test_fuzz_flips_and_truncations_only_raise_bitstream_errors(codec, stream):
    rng = random.Random(0)
    original = decode_sequence(codec, stream).frames
    for trial in range(120):
        data = bytearray(stream)
        if trial % 4 == 0:
            data = data[: rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        if trial % 3 == 0 and len(data) == len(stream):  # re-seal the stream checksum: garbage reaches the decoder
            data = bytearray(reseal(data[:-4]))
        if bytes(data) == stream:
            continue
        try:
            decoded = decode_sequence(codec, bytes(data))
        except BitstreamError as exc:
            assert "\n" not in str(exc)
            continue
        except NvcError as exc:  # pragma: no cover - the assertion explains
            pytest.fail(f"trial {trial}: {type(exc).__name__} instead of BitstreamError: {exc}")
        header, damaged = read_header(stream), read_header(bytes(data))
        if damaged.cpu_threads != header.cpu_threads and damaged.pack() == replace(
                header, cpu_threads=damaged.cpu_threads).pack():
            continue  # a re-sealed header asking for another thread count is a valid stream (other float rounding)
        # only the reconstruction checksum (informational, re-sealed above) may be damaged without an error
        assert torch.equal(decoded.frames, original), trial
        assert not all(s.matches_encoder for s in decoded.stats), trial


def test_thread_count_above_the_encoders_cap_is_refused_and_leaves_no_output(tmp_path, capsys, trained_tiny_export,
                                                                            stream):
    header = read_header(stream)
    threads_at = header.size - len(pack_varint(header.cpu_threads))
    forged = reseal(stream[:threads_at] + pack_varint(MAX_THREADS + 1) + stream[header.size : -4])
    with pytest.raises(BitstreamError, match=rf"^header \(byte {threads_at}\): {MAX_THREADS + 1} CPU threads is above"):
        read_header(forged)
    path = tmp_path / "threads.nvc"
    path.write_bytes(forged)
    code = main(["decode", str(path), "--checkpoint", str(trained_tiny_export), "--output", str(tmp_path / "out.yuv")])
    err = capsys.readouterr().err
    assert code != 0 and "CPU threads is above" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["threads.nvc"]


def test_container_overhead_per_frame(codec):
    """The lean container's bytes besides the payloads: a 24-byte header at common sizes, 3 bytes a frame under
    512-byte payloads, a 4-byte trailer; version 1 spent 56 + 17 per frame. Measured on HEVC class D's size."""
    x = torch.nn.functional.avg_pool2d(torch.rand(3, 3, 240, 416, generator=torch.Generator().manual_seed(1)), 9, 1, 4)
    encoded = encode_sequence(codec, x, q_index=0, intra_period=32)
    header = read_header(encoded.stream)
    assert header.size == 24 < 25
    payload = sum(s.payload_bytes for s in encoded.frames)
    overhead = len(encoded.stream) - payload
    per_frame = [s.bytes - s.payload_bytes for s in encoded.frames]
    assert per_frame == [record_overhead(s.payload_bytes) for s in encoded.frames]
    assert all(n == 3 for s, n in zip(encoded.frames, per_frame) if s.payload_bytes < 512)
    assert overhead == header.size + sum(per_frame) + 4
    # at DCVC's lowest class D rates (~350-500 bytes a frame over 96 frames) that is (24 + 4 + 96·3) / 96 bytes a
    # frame: 3.3 bytes, under 1 % of 350 bytes; version 1 spent 17.6, 3.5-5 %
    assert (header.size + 4 + 96 * 3) / 96 / 350 < 0.01
