"""Sequences through real bitstreams with a briefly trained tiny model: bit-exact decoding of I- and P-frames at
every rate anchor, equality with the model's own evaluation-mode reconstruction, size against the estimate, and
independence from the thread setting and from how decoding is interleaved."""

import pytest
import torch

from nvc1b.coding import (
    SequenceDecoder,
    coding_context,
    decode_sequence,
    encode_sequence,
    load_coding_model,
    read_header,
)
from nvc1b.model.quantization import RateEstimator


@pytest.fixture(scope="module")
def codec(trained_tiny_export):
    return load_coding_model(trained_tiny_export)


def smooth_clip(frames=4, height=40, width=56, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(frames, 3, height, width, generator=g)
    return torch.nn.functional.avg_pool2d(x, 7, 1, 3)


def estimate(codec, clip, q_index, intra_period, cpu_threads):
    """The model's own evaluation-mode pass (RateEstimator('round')) in the coder's execution context."""
    recon, bits, state = [], [], None
    with coding_context(codec.device, cpu_threads):
        for t, frame in enumerate(clip):
            if t % intra_period == 0:
                out = codec.model.intra_step(frame[None], q_index, coder=RateEstimator("round"))
            else:
                out = codec.model.inter_step(frame[None], state, q_index, coder=RateEstimator("round"))
            state = out.state
            recon.append(out.x_hat[0])
            bits.append({k: v.item() for k, v in out.bits.items()})
    return torch.stack(recon), bits


@pytest.mark.parametrize("q_index", [0, 1, 2, 3])
def test_round_trip_is_bit_exact_and_matches_the_model(codec, q_index):
    clip = smooth_clip()
    encoded = encode_sequence(codec, clip, q_index=q_index, intra_period=3)
    assert [s.frame_type for s in encoded.frames] == ["I", "P", "P", "I"]
    decoded = decode_sequence(codec, encoded.stream)
    assert torch.equal(decoded.frames, encoded.reconstruction)
    assert all(s.matches_encoder for s in decoded.stats)
    recon, estimated = estimate(codec, clip, q_index, 3, encoded.header.cpu_threads)
    assert torch.equal(decoded.frames, recon)

    for enc, dec, est in zip(encoded.frames, decoded.stats, estimated):
        assert enc.bits.keys() == est.keys() == ({"y", "z_y"} if enc.frame_type == "I" else {"m", "z_m", "y", "z_y"})
        assert enc.bits == dec.bits
        assert 0 < enc.entropy_seconds < enc.seconds
    payload_bits = 8 * sum(s.payload_bytes for s in encoded.frames)
    estimated_bits = sum(sum(b.values()) for b in estimated)
    coded_bits = sum(sum(s.bits.values()) for s in encoded.frames)  # information content under the integer tables
    assert coded_bits == pytest.approx(estimated_bits, rel=0.005)
    ans_flush = 64 * len(clip)  # the ANS coder's final state, at most two words per frame
    assert abs(payload_bits - estimated_bits) <= 0.01 * estimated_bits + ans_flush
    container = read_header(encoded.stream).size + sum(s.bytes - s.payload_bytes for s in encoded.frames) + 4
    assert len(encoded.stream) == container + payload_bits // 8


def test_rate_positions_between_anchors_and_unaligned_sizes(codec):
    clip = smooth_clip(frames=3, height=33, width=47, seed=1)
    encoded = encode_sequence(codec, clip, q_index=1.37, intra_period=32)
    decoded = decode_sequence(codec, encoded.stream)
    assert decoded.frames.shape == (3, 3, 33, 47)
    assert torch.equal(decoded.frames, encoded.reconstruction)
    assert decoded.header.q_index == pytest.approx(1.37) and decoded.bpp == pytest.approx(encoded.bpp)


def test_encoding_is_reproducible(codec):
    clip = smooth_clip(frames=2)
    assert encode_sequence(codec, clip, 2).stream == encode_sequence(codec, clip, 2).stream


@pytest.mark.parametrize("encoder_threads", [1, 2])
def test_decoding_gives_the_same_bytes_with_one_and_two_threads(codec, encoder_threads):
    clip = smooth_clip(frames=3, seed=2)
    encoded = encode_sequence(codec, clip, 1, cpu_threads=encoder_threads)
    assert encoded.header.cpu_threads == encoder_threads
    saved = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            decoded = decode_sequence(codec, encoded.stream)
            assert torch.equal(decoded.frames, encoded.reconstruction), threads
            assert torch.get_num_threads() == threads  # the coder restores the caller's setting
    finally:
        torch.set_num_threads(saved)


def test_interleaved_frame_by_frame_decoding_equals_whole_sequence_decoding(codec):
    clips = [smooth_clip(frames=3, seed=3), smooth_clip(frames=3, seed=4)]
    streams = [encode_sequence(codec, c, 3, intra_period=2).stream for c in clips]
    whole = [decode_sequence(codec, s).frames for s in streams]
    decoders = [iter(SequenceDecoder(codec, s)) for s in streams]
    for t in range(3):  # a batch-style evaluator multiplexing streams frame by frame
        for k, decoder in enumerate(decoders):
            stats, x_hat = next(decoder)
            assert stats.index == t and torch.equal(x_hat, whole[k][t])
