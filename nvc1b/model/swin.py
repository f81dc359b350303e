"""Shifted-window self-attention blocks (Swin Transformer) on NCHW feature maps, for the scaling study's
mixed CNN-Swin and Swin-only variants (paper Section IV-B)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _window_partition(x: Tensor, w: int) -> Tensor:
    # (B, H, W, C) -> (B * nW, w*w, C)
    b, h, wd, c = x.shape
    x = x.view(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, c)


def _window_merge(x: Tensor, w: int, b: int, h: int, wd: int) -> Tensor:
    # (B * nW, w*w, C) -> (B, H, W, C)
    c = x.shape[-1]
    x = x.view(b, h // w, wd // w, w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, wd, c)


class SwinBlock(nn.Module):
    """One Swin block: LayerNorm → (shifted) window attention with relative position bias → LayerNorm → MLP.

    The map is zero-padded to a multiple of the window; padded positions are masked out as keys, and a
    shifted block masks keys from other regions of the rolled map, as in the Swin paper.
    """

    def __init__(self, channels: int, heads: int, window: int = 8, shift: bool = False, mlp_ratio: float = 4.0):
        super().__init__()
        if channels % heads:
            raise ValueError(f"Swin block: {channels} channels do not split into {heads} heads")
        self.heads, self.window, self.shift = heads, window, shift
        self.norm1 = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.norm2 = nn.LayerNorm(channels)
        hidden = int(channels * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels))
        self.rel_bias = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.rel_bias, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer("rel_index", rel[..., 0] * (2 * window - 1) + rel[..., 1], persistent=False)

    def _mask(self, h: int, w: int, hp: int, wp: int, shift: int, device: torch.device) -> Tensor:
        """Additive mask (nW, w*w, w*w): -inf where a key is padding or lies in another shifted region."""
        win = self.window
        valid = torch.zeros(hp, wp, device=device)
        valid[:h, :w] = 1
        region = torch.zeros(hp, wp, device=device)
        if shift:
            bounds = (slice(0, -win), slice(-win, -shift), slice(-shift, None))
            label = 0
            for hs in bounds:
                for ws in bounds:
                    region[hs, ws] = label
                    label += 1
        region = torch.roll(region, (-shift, -shift), dims=(0, 1)) if shift else region
        valid = torch.roll(valid, (-shift, -shift), dims=(0, 1)) if shift else valid
        region = _window_partition(region[None, :, :, None], win)[..., 0]  # (nW, w*w)
        valid = _window_partition(valid[None, :, :, None], win)[..., 0]
        allowed = (region[:, :, None] == region[:, None, :]) & (valid[:, None, :] > 0)
        return torch.zeros(allowed.shape, device=device).masked_fill(~allowed, float("-inf"))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        win = self.window
        hp, wp = -(-h // win) * win, -(-w // win) * win
        shift = win // 2 if self.shift and (hp > win or wp > win) else 0
        tokens = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        y = F.pad(self.norm1(tokens), (0, 0, 0, wp - w, 0, hp - h))
        if shift:
            y = torch.roll(y, (-shift, -shift), dims=(1, 2))
        windows = _window_partition(y, win)  # (B*nW, w*w, C)
        n = windows.shape[1]
        q, k, v = self.qkv(windows).view(-1, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.rel_bias[self.rel_index.reshape(-1)].view(n, n, self.heads).permute(2, 0, 1)
        mask = self._mask(h, w, hp, wp, shift, x.device).to(x.dtype)  # (nW, n, n)
        n_win = mask.shape[0]
        attn_mask = (bias[None, None] + mask[None, :, None]).expand(b, n_win, self.heads, n, n)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask.reshape(-1, self.heads, n, n))
        out = self.proj(out.transpose(1, 2).reshape(-1, n, c))
        out = _window_merge(out, win, b, hp, wp)
        if shift:
            out = torch.roll(out, (shift, shift), dims=(1, 2))
        tokens = tokens + out[:, :h, :w]
        tokens = tokens + self.mlp(self.norm2(tokens))
        return tokens.permute(0, 3, 1, 2)


class SwinPair(nn.Sequential):
    """A regular-window block followed by a shifted-window block, the unit Swin stacks are built from."""

    def __init__(self, channels: int, window: int = 8):
        heads = max(1, channels // 32)
        while channels % heads:
            heads -= 1
        super().__init__(SwinBlock(channels, heads, window, shift=False), SwinBlock(channels, heads, window, shift=True))
