"""Convolutional building blocks shared by the coding parts (DCVC-family layer vocabulary)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 1, stride=stride)


def subpel_conv(in_ch: int, out_ch: int, factor: int = 2, kernel: int = 1) -> nn.Sequential:
    """Sub-pixel up-sampling: a conv to ``out_ch * factor**2`` channels followed by a pixel shuffle."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch * factor**2, kernel, padding=kernel // 2), nn.PixelShuffle(factor)
    )


def pad_bottom_right(x: Tensor, bottom: int, right: int) -> Tensor:
    """Replicate-pad the bottom and right edges; ``x`` itself when nothing is missing (training crops are
    multiples of 64), which saves a copy and keeps torch.compile off replication_pad2d_backward, whose fake
    kernel disagrees with the CPU kernel on strides."""
    if bottom == 0 and right == 0:
        return x
    return F.pad(x, (0, right, 0, bottom), mode="replicate")


def down2(x: Tensor) -> Tensor:
    """Bilinear ×0.5 (the 'structure' low-pass of the paper)."""
    return F.interpolate(x, size=(x.shape[-2] // 2, x.shape[-1] // 2), mode="bilinear", align_corners=False)


def up2(x: Tensor) -> Tensor:
    """Bilinear ×2."""
    return F.interpolate(x, size=(x.shape[-2] * 2, x.shape[-1] * 2), mode="bilinear", align_corners=False)


def structure_detail(x: Tensor) -> tuple[Tensor, Tensor]:
    """Split ``x`` into structure ``up2(down2(x))`` and detail ``x - structure``."""
    structure = up2(down2(x))
    return structure, x - structure


class ResBlock(nn.Module):
    """Pre-activation residual block of two 3×3 convs; ``bottleneck`` halves the inner width."""

    def __init__(self, channels: int, slope: float = 0.01, bottleneck: bool = False, end_with_relu: bool = False):
        super().__init__()
        inner = channels // 2 if bottleneck else channels
        self.conv1 = conv3x3(channels, inner)
        self.conv2 = conv3x3(inner, channels)
        self.slope = slope
        self.end_with_relu = end_with_relu

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.leaky_relu(x, self.slope))
        out = self.conv2(F.leaky_relu(out, self.slope))
        if self.end_with_relu:
            out = F.leaky_relu(out, self.slope)
        return x + out


class StridedResBlock(nn.Module):
    """Residual block that halves the resolution: conv3×3/2 → conv3×3, with a 1×1/2 shortcut.

    The shortcut subsamples and then applies a stride-1 1×1 conv: the same function and weights as a strided 1×1
    conv, without oneDNN's strided-1×1 backward path, which writes past its workspace for channels_last tensors
    of fewer than 8 input channels (oneDNN issue 6035; the motion codec's 4-channel flow input hits it)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch, stride=2)
        self.conv2 = conv3x3(out_ch, out_ch)
        self.shortcut = conv1x1(in_ch, out_ch)

    def forward(self, x: Tensor) -> Tensor:
        out = F.leaky_relu(self.conv1(x), 0.01)
        out = F.leaky_relu(self.conv2(out), 0.1)
        return out + self.shortcut(x[..., ::2, ::2])


class UpsampleResBlock(nn.Module):
    """Residual block that doubles the resolution with sub-pixel convs on both paths."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.up = subpel_conv(in_ch, out_ch, 2)
        self.conv = conv3x3(out_ch, out_ch)
        self.shortcut = subpel_conv(in_ch, out_ch, 2)

    def forward(self, x: Tensor) -> Tensor:
        out = F.leaky_relu(self.up(x), 0.01)
        out = F.leaky_relu(self.conv(out), 0.1)
        return out + self.shortcut(x)


class DepthConv(nn.Module):
    """1×1 → depthwise 3×3 → 1×1 with a (1×1 or identity) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, slope: float = 0.01):
        super().__init__()
        self.pw1 = conv1x1(in_ch, in_ch)
        self.dw = nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch)
        self.pw2 = conv1x1(in_ch, out_ch)
        self.shortcut = conv1x1(in_ch, out_ch) if in_ch != out_ch else nn.Identity()
        self.slope = slope

    def forward(self, x: Tensor) -> Tensor:
        out = self.pw2(self.dw(F.leaky_relu(self.pw1(x), self.slope)))
        return out + self.shortcut(x)


class ConvFFN(nn.Module):
    """Pointwise feed-forward with a residual. ``gated`` uses a GLU-style gate of expansion 2 (intra coder);
    the plain form expands to max(min(4c, 1024), 2c) channels (P-frame coder)."""

    def __init__(self, channels: int, gated: bool = False, slope: float = 0.1):
        super().__init__()
        self.gated = gated
        self.slope = slope
        if gated:
            self.fc1 = conv1x1(channels, channels * 4)
            self.fc2 = conv1x1(channels * 2, channels)
        else:
            inner = max(min(channels * 4, 1024), channels * 2)
            self.fc1 = conv1x1(channels, inner)
            self.fc2 = conv1x1(inner, channels)

    def forward(self, x: Tensor) -> Tensor:
        if self.gated:
            value, gate = self.fc1(x).chunk(2, dim=1)
            return x + self.fc2(value * F.leaky_relu(gate, self.slope))
        out = F.leaky_relu(self.fc1(x), self.slope)
        return x + F.leaky_relu(self.fc2(out), self.slope)


class DepthConvBlock(nn.Module):
    """DepthConv followed by ConvFFN: the workhorse block of DCVC-DC-style entropy models and codecs."""

    def __init__(self, in_ch: int, out_ch: int, gated: bool = False):
        super().__init__()
        self.depth_conv = DepthConv(in_ch, out_ch)
        self.ffn = ConvFFN(out_ch, gated=gated)

    def forward(self, x: Tensor) -> Tensor:
        return self.ffn(self.depth_conv(x))


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM cell: one 3×3 conv over [input, hidden] gives the four gates."""

    def __init__(self, in_ch: int, hidden_ch: int):
        super().__init__()
        self.hidden_ch = hidden_ch
        self.gates = conv3x3(in_ch + hidden_ch, 4 * hidden_ch)

    def forward(self, x: Tensor, hidden: Tensor, cell: Tensor) -> tuple[Tensor, Tensor]:
        i, f, o, g = self.gates(torch.cat([x, hidden], dim=1)).split(self.hidden_ch, dim=1)
        cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
        hidden = torch.sigmoid(o) * torch.tanh(cell)
        return hidden, cell
