"""Temporal context mining (paper III-3): a 3-scale feature pyramid over the reference feature, warped by the
decoded structure and detail flows (offset-diversity alignment at full scale), fused across scales, and
merged with a ConvLSTM long-term reference into the contexts C⁰ (H), C¹ (H/2), C² (H/4)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config.model import Interface
from ..config.model import TemporalContextMining as TCMConfig
from .blocks import BlockType, stack
from .hierarchy import adaptor_index
from .layers import ConvLSTMCell, ResBlock, conv1x1, conv3x3, down2, structure_detail, subpel_conv, up2
from .precision import fp32, fp32_region
from .warp import flow_warp, flow_warp_many, warp_components

Contexts = tuple[Tensor, Tensor, Tensor]


def _res(block_type: BlockType, ch: int, depth: int) -> nn.Module:
    return stack(block_type, ch, ch, depth, lambda i, o: ResBlock(o))


class FeaturePyramid(nn.Module):
    """Features at H, H/2, H/4 from a feature at H."""

    def __init__(self, ch: tuple[int, int, int], depth: tuple[int, int, int], block_type: BlockType):
        super().__init__()
        self.level0 = nn.Sequential(conv3x3(ch[0], ch[0]), _res(block_type, ch[0], depth[0]))
        self.level1 = nn.Sequential(conv3x3(ch[0], ch[1], 2), _res(block_type, ch[1], depth[1]))
        self.level2 = nn.Sequential(conv3x3(ch[1], ch[2], 2), _res(block_type, ch[2], depth[2]))

    def forward(self, x: Tensor) -> Contexts:
        f0 = self.level0(x)
        f1 = self.level1(f0)
        return f0, f1, self.level2(f1)


class MultiScaleFusion(nn.Module):
    """Coarse-to-fine refinement of three scales; each scale gets a residual update."""

    def __init__(self, ch: tuple[int, int, int], depth: tuple[int, int, int], block_type: BlockType):
        super().__init__()
        self.up2 = nn.Sequential(subpel_conv(ch[2], ch[1], 2, kernel=3), _res(block_type, ch[1], depth[1]))
        self.out2 = nn.Sequential(conv3x3(ch[2], ch[2]), _res(block_type, ch[2], depth[2]))
        self.up1 = nn.Sequential(subpel_conv(2 * ch[1], ch[0], 2, kernel=3), _res(block_type, ch[0], depth[0]))
        self.out1 = nn.Sequential(conv3x3(2 * ch[1], ch[1]), _res(block_type, ch[1], depth[1]))
        self.out0 = nn.Sequential(conv3x3(2 * ch[0], ch[0]), _res(block_type, ch[0], depth[0]))

    def forward(self, c0: Tensor, c1: Tensor, c2: Tensor) -> Contexts:
        mid = torch.cat([self.up2(c2), c1], dim=1)
        top = torch.cat([self.up1(mid), c0], dim=1)
        return c0 + self.out0(top), c1 + self.out1(mid), c2 + self.out2(c2)


class OffsetDiversityAlign(nn.Module):
    """Warps a feature with ``groups × offsets`` learned offsets around the decoded flow, each with a sigmoid
    mask, and fuses the candidates with a grouped 1×1 conv (DCVC-DC's wiring: the ``offsets`` copies of the
    feature are stacked copy-major, so one fusion group sees consecutive channel groups of one copy)."""

    MAX_RESIDUE = 40.0

    def __init__(self, ch: int, hidden: int, groups: int, offsets: int):
        super().__init__()
        self.groups, self.offsets = groups, offsets
        n = groups * offsets
        self.offset_net = nn.Sequential(
            conv3x3(ch + 3 + 2, hidden, 2), nn.LeakyReLU(0.1), conv3x3(hidden, hidden), nn.LeakyReLU(0.1),
            conv3x3(hidden, 3 * n),
        )
        self.fuse = nn.Conv2d(offsets * ch, ch, 1, groups=groups)

    def forward(self, feature: Tensor, warped_feature: Tensor, warped_frame: Tensor, flow: Tensor) -> Tensor:
        b, c, h, w = feature.shape
        g, k = self.groups, self.offsets
        out = up2(self.offset_net(torch.cat([warped_feature, warped_frame, flow], dim=1)))
        with fp32_region():  # offsets are sampling positions: fp32 like the flow they refine
            out = fp32(out)
            # g·k sampling slots in DCVC-DC's order: slot s = copy·g + group warps channel group (s mod g) at
            # offset s. Warped here per group, its k copies in one call (the feature is read, not copied k times).
            offsets = self.MAX_RESIDUE * torch.tanh(out[:, : 2 * g * k]).view(b, k, g, 2, h, w) + fp32(flow)[:, None, None]
            mask = torch.sigmoid(out[:, 2 * g * k :]).view(b, k, g, h, w).transpose(1, 2).reshape(b * g, 1, k, h, w)
            x = flow_warp_many(feature.reshape(b * g, c // g, h, w), offsets.transpose(1, 2).reshape(b * g, k, 2, h, w))
            x = (x * mask).view(b, g, c // g, k, h, w)
        # channels in slot order (copy, group, channel): each fusion group mixes the k·c/g consecutive ones
        return self.fuse(x.permute(0, 3, 1, 2, 4, 5).reshape(b, k * c, h, w))


class TemporalContextMining(nn.Module):
    def __init__(self, cfg: TCMConfig, interface: Interface):
        super().__init__()
        ch, depth, bt = cfg.channels, cfg.blocks, cfg.block_type
        self.adaptor_intra = conv3x3(3, ch[0])  # reference is an I-frame: features from the decoded frame
        self.adaptors = nn.ModuleList(conv1x1(interface.feature_channels, ch[0]) for _ in range(3))
        self.lstm = ConvLSTMCell(ch[0], ch[0])
        self.pyramid = FeaturePyramid(ch, depth, bt)
        self.hidden_pyramid = FeaturePyramid(ch, depth, bt)
        self.fusion = MultiScaleFusion(ch, depth, bt)
        self.hidden_fusion = MultiScaleFusion(ch, depth, bt)
        self.align_structure = OffsetDiversityAlign(ch[0], ch[1], cfg.offset_groups, cfg.offsets)
        self.align_detail = OffsetDiversityAlign(ch[0], ch[1], cfg.offset_groups, cfg.offsets)
        self.merge_hidden = nn.ModuleList(conv3x3(2 * c, c) for c in ch)
        self.project = nn.ModuleList(
            conv1x1(c, o) if c != o else nn.Identity() for c, o in zip(ch, interface.context_channels)
        )

    def forward(
        self,
        ref_frame: Tensor,
        ref_feature: Tensor | None,
        hidden: Tensor | None,
        cell: Tensor | None,
        flow_s: Tensor,
        flow_d: Tensor,
        sequence_index: int,
    ) -> tuple[Contexts, Tensor, Tensor, Tensor]:
        """Contexts (C⁰, C¹, C²), the warped frame warp(x̂_{t-1}, v̂_t), and the next LSTM hidden/cell.
        ``sequence_index``: the coded frame's position in its sequence (selects the feature adaptor)."""
        warped_s, warped_d = warp_components(ref_frame, flow_s, flow_d)

        if ref_feature is None:
            feature = self.adaptor_intra(ref_frame)
            zeros = torch.zeros_like(feature)
            next_hidden, next_cell = self.lstm(feature, zeros, zeros)
        else:
            feature = self.adaptors[adaptor_index(sequence_index)](ref_feature)
            next_hidden, next_cell = self.lstm(feature, hidden, cell)

        flows_s, flows_d = [flow_s], [flow_d]
        for _ in range(2):
            flows_s.append(down2(flows_s[-1]) / 2)
            flows_d.append(down2(flows_d[-1]) / 2)

        contexts = []
        for level, f in enumerate(self.pyramid(feature)):
            f_s, f_d = structure_detail(f)
            c_s, c_d = flow_warp(f_s, flows_s[level]), flow_warp(f_d, flows_d[level])
            if level == 0:
                c_s = self.align_structure(f_s, c_s, warped_s, flow_s)
                c_d = self.align_detail(f_d, c_d, warped_d, flow_d)
            contexts.append(c_s + c_d)
        contexts = list(self.fusion(*contexts))

        if hidden is not None:  # long-term reference H_{t-1}
            long_term = self.hidden_fusion(*self.hidden_pyramid(hidden))
            contexts = [m(torch.cat([c, h], dim=1)) for m, c, h in zip(self.merge_hidden, contexts, long_term)]
        c0, c1, c2 = (p(c) for p, c in zip(self.project, contexts))
        return (c0, c1, c2), warped_s + warped_d, next_hidden, next_cell
