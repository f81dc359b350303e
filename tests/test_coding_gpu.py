"""Cross-device decoding: a stream encoded on the CPU decoded on a GPU and the reverse (skipped without CUDA).

Floating-point results differ between devices, so only the decoded latents can be required to agree (their
checksum is verified on decoding); the frames are compared to within one 8-bit code value."""

import pytest
import torch

from nvc1b.coding import decode_sequence, encode_sequence, load_coding_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("encode_on, decode_on", [("cpu", "cuda"), ("cuda", "cpu")])
def test_cross_device_decoding(trained_tiny_export, encode_on, decode_on):
    clip = torch.nn.functional.avg_pool2d(torch.rand(3, 3, 32, 48, generator=torch.Generator().manual_seed(11)), 5, 1, 2)
    encoded = encode_sequence(load_coding_model(trained_tiny_export, encode_on), clip, q_index=2, intra_period=2)
    decoded = decode_sequence(load_coding_model(trained_tiny_export, decode_on), encoded.stream)  # latents verified
    assert (decoded.frames - encoded.reconstruction).abs().max() <= 1.0 / 255
    again = decode_sequence(load_coding_model(trained_tiny_export, decode_on), encoded.stream)
    assert torch.equal(again.frames, decoded.frames)  # deterministic on the decoding device
