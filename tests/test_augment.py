"""Colour permutation of training clips: a per-clip order of R, G, B, the same for every frame, seeded."""

import torch

from nvc1b.train.augment import permute_colours


def test_each_clip_gets_one_channel_order_for_all_its_frames():
    torch.manual_seed(0)
    clips = torch.rand(16, 3, 3, 8, 8)
    torch.manual_seed(5)
    out = permute_colours(clips)
    orders = set()
    for b in range(clips.shape[0]):
        order = [next(c for c in range(3) if torch.equal(out[b, 0, k], clips[b, 0, c])) for k in range(3)]
        assert sorted(order) == [0, 1, 2]
        assert torch.equal(out[b], clips[b][:, order])  # every frame in the same order
        orders.add(tuple(order))
    assert len(orders) > 1
    torch.manual_seed(5)
    assert torch.equal(permute_colours(clips), out)
