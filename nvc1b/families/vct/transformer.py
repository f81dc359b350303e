"""VCT's transformer entropy model (paper Section 3.2, Fig. 3).

The current latent is split into non-overlapping w_c×w_c blocks, each previous latent into overlapping
w_p×w_p blocks (stride w_c) centred on them; blocks are independent and run as one batch. T_sep encodes each
previous block, T_joint mixes the two (2·w_p² tokens, with a learned temporal position embedding), and the masked
T_cur predicts a Gaussian mean and scale per channel for each of the w_c² current tokens from a learned start token,
the tokens before it and z_joint (cross-attention).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import EntropyModel as EntropyConfig

SCALE_MIN = 0.11
"""Smallest predicted scale (as the Laplace scale floor of the NVC family)."""


class Attention(nn.Module):
    """Multi-head attention of ``x`` over ``memory`` (itself when None). Its own projections, so every weight is
    read inside this module's forward (as ZeRO-3 needs) and encoder and decoder take the same kernel."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(d, d)
        self.key_value = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)

    def keys_values(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values (N, heads, M, d/heads) of ``memory`` (N, M, d)."""
        n, m, d = memory.shape
        k, v = self.key_value(memory).view(n, m, 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return k, v

    def forward(self, x: Tensor, memory: Tensor | None = None, allowed: Tensor | None = None,
                kv: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """x (N, L, d), memory (N, M, d) or its ``keys_values`` ``kv``; ``allowed`` (L, M) bool: which keys each
        query may attend to."""
        n, length, d = x.shape
        h = self.heads
        q = self.query(x).view(n, length, h, d // h).transpose(1, 2)
        k, v = kv if kv is not None else self.keys_values(x if memory is None else memory)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.out(y.transpose(1, 2).reshape(n, length, d))


class EncoderLayer(nn.Module):
    """Pre-norm multi-head self-attention and MLP."""

    def __init__(self, d: int, heads: int, expansion: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, expansion * d), nn.GELU(), nn.Linear(expansion * d, d))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MaskedConditionalLayer(nn.Module):
    """T_cur's layer: causal self-attention, cross-attention to z_joint (keys and values), MLP."""

    def __init__(self, d: int, heads: int, expansion: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.self_attn = Attention(d, heads)
        self.norm2 = nn.LayerNorm(d)
        self.cross_attn = Attention(d, heads)
        self.norm3 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, expansion * d), nn.GELU(), nn.Linear(expansion * d, d))

    def forward(self, x: Tensor, memory_kv: tuple[Tensor, Tensor], causal: Tensor) -> Tensor:
        x = x + self.self_attn(self.norm1(x), allowed=causal)
        x = x + self.cross_attn(self.norm2(x), kv=memory_kv)
        return x + self.mlp(self.norm3(x))

    def step(self, x: Tensor, memory_kv: tuple[Tensor, Tensor], cache: list, index: int) -> Tensor:
        """Incremental decoding: x (N, 1, d) is the next position; ``cache[index]`` holds the self-attention keys
        and values of the positions before it (extended here), so attending to all of them is causal."""
        h = self.norm1(x)
        k, v = self.self_attn.keys_values(h)
        if len(cache) <= index:
            cache.append((k, v))
        else:
            cache[index] = (torch.cat([cache[index][0], k], dim=2), torch.cat([cache[index][1], v], dim=2))
        x = x + self.self_attn(h, kv=cache[index])
        x = x + self.cross_attn(self.norm2(x), kv=memory_kv)
        return x + self.mlp(self.norm3(x))


def _head(d: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d, d), nn.LeakyReLU(), nn.Linear(d, d), nn.LeakyReLU(), nn.Linear(d, out))


class TemporalMixer(nn.Module):
    """T_sep (per previous block) and T_joint (over the previous blocks together) → z_joint."""

    def __init__(self, cfg: EntropyConfig, latent_channels: int):
        super().__init__()
        d, p = cfg.d_model, cfg.previous_block
        self.embed = nn.Linear(latent_channels, d)
        self.embed_norm = nn.LayerNorm(d)
        self.position_sep = nn.Parameter(torch.randn(p * p, d) * 0.02)
        self.sep = nn.ModuleList(EncoderLayer(d, cfg.heads, cfg.mlp_expansion) for _ in range(cfg.sep_layers))
        self.position_joint = nn.Parameter(torch.randn(cfg.context_frames * p * p, d) * 0.02)
        """The learned temporal position embedding added to T_joint's input."""
        self.joint = nn.ModuleList(EncoderLayer(d, cfg.heads, cfg.mlp_expansion) for _ in range(cfg.joint_layers))
        self.norm = nn.LayerNorm(d)

    def separate(self, tokens: Tensor) -> Tensor:
        """T_sep: (N, w_p², d_C) normalised tokens of previous blocks → (N, w_p², d_T)."""
        x = self.embed_norm(self.embed(tokens)) + self.position_sep
        for layer in self.sep:
            x = layer(x)
        return x

    def mix(self, separate: list[Tensor]) -> Tensor:
        """T_joint over the T_sep outputs of the previous latents, oldest first → z_joint (N, 2·w_p², d_T)."""
        x = torch.cat(separate, dim=1) + self.position_joint
        for layer in self.joint:
            x = layer(x)
        return self.norm(x)


class CurrentBlockModel(nn.Module):
    """T_cur: masked conditional transformer over the w_c² tokens of a current block."""

    def __init__(self, cfg: EntropyConfig, latent_channels: int):
        super().__init__()
        d, tokens = cfg.d_model, cfg.current_block ** 2
        self.start = nn.Parameter(torch.zeros(latent_channels))
        """t_S: the learned start token."""
        self.embed = nn.Linear(latent_channels, d)
        self.embed_norm = nn.LayerNorm(d)
        self.position = nn.Parameter(torch.randn(tokens, d) * 0.02)
        self.layers = nn.ModuleList(
            MaskedConditionalLayer(d, cfg.heads, cfg.mlp_expansion) for _ in range(cfg.cur_layers)
        )
        self.norm = nn.LayerNorm(d)
        self.mean = _head(d, latent_channels)
        self.scale = _head(d, latent_channels)
        self.register_buffer("causal", torch.ones(tokens, tokens).tril().bool(), persistent=False)
        """Query k may attend to inputs 0..k: the start token and tokens 0..k-1."""

    def memory(self, z_joint: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Each layer's cross-attention keys and values of z_joint: the same for all w_c² runs of a frame."""
        return [layer.cross_attn.keys_values(z_joint) for layer in self.layers]

    def forward(self, tokens: Tensor, memory: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
        """Normalised current tokens (N, w_c², d_C) and ``memory(z_joint)`` → means, scales (N, w_c², d_C) and
        z_cur (N, w_c², d_T).

        Prediction k sees the start token and tokens 0..k-1 only (inputs shifted right, causal mask)."""
        n = tokens.shape[0]
        shifted = torch.cat([self.start.expand(n, 1, -1), tokens[:, :-1]], dim=1)
        x = self.embed_norm(self.embed(shifted)) + self.position
        for layer, kv in zip(self.layers, memory, strict=True):
            x = layer(x, kv, self.causal)
        return self._heads(x)

    def step(self, previous: Tensor | None, k: int, memory: list[tuple[Tensor, Tensor]], cache: list):
        """Run k of the coder's w_c² runs: the input at position k is the start token (k = 0) or the normalised
        token k-1 (N, d_C); returns mean, scale (N, d_C) and z_cur (N, d_T) of token k."""
        n = memory[0][0].shape[0]
        token = self.start.expand(n, 1, -1) if previous is None else previous[:, None]
        x = self.embed_norm(self.embed(token)) + self.position[k]
        for index, (layer, kv) in enumerate(zip(self.layers, memory, strict=True)):
            x = layer.step(x, kv, cache, index)
        means, scales, z_cur = self._heads(x)
        return means[:, 0], scales[:, 0], z_cur[:, 0]

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        z_cur = self.norm(x)
        scales = F.softplus(self.scale(z_cur)).clamp_min(SCALE_MIN)
        return self.mean(z_cur), scales, z_cur


class TransformerEntropyModel(nn.Module):
    """The entropy model of VCT: temporal mixer + T_cur, with the block tokenisation of the latents."""

    def __init__(self, cfg: EntropyConfig, latent_channels: int, latent_scale: float):
        super().__init__()
        self.cfg = cfg
        self.latent_scale = latent_scale
        self.mixer = TemporalMixer(cfg, latent_channels)
        self.current = CurrentBlockModel(cfg, latent_channels)

    @property
    def tokens_per_block(self) -> int:
        return self.cfg.current_block ** 2

    def current_tokens(self, y: Tensor) -> Tensor:
        """(B, C, h, w) → (B·n_h·n_w, w_c², C): non-overlapping w_c×w_c blocks, raster order inside a block."""
        b, c, h, w = y.shape
        s = self.cfg.current_block
        t = y.reshape(b, c, h // s, s, w // s, s).permute(0, 2, 4, 3, 5, 1)
        return t.reshape(b * (h // s) * (w // s), s * s, c)

    def untokenize(self, tokens: Tensor, b: int, h: int, w: int) -> Tensor:
        """Inverse of ``current_tokens`` for (B·n, w_c², D) → (B, D, h, w)."""
        s = self.cfg.current_block
        d = tokens.shape[-1]
        t = tokens.reshape(b, h // s, w // s, s, s, d).permute(0, 5, 1, 3, 2, 4)
        return t.reshape(b, d, h, w)

    def previous_tokens(self, y: Tensor) -> Tensor:
        """(B, C, h, w) → (B·n_h·n_w, w_p², C): w_p×w_p blocks with stride w_c centred on the current blocks
        (zero outside the latent)."""
        b, c = y.shape[:2]
        s, p = self.cfg.current_block, self.cfg.previous_block
        pad = (p - s) // 2
        cols = F.unfold(F.pad(y, (pad, pad, pad, pad)), kernel_size=p, stride=s)  # (B, C·p², n)
        n = cols.shape[-1]
        return cols.reshape(b, c, p * p, n).permute(0, 3, 2, 1).reshape(b * n, p * p, c)

    def separate(self, y_hat: Tensor) -> Tensor:
        """T_sep of one decoded latent (run once per latent; its output is reused by the next frames)."""
        return self.mixer.separate(self.previous_tokens(y_hat) / self.latent_scale)

    def joint(self, separate: list[Tensor]) -> Tensor:
        """z_joint from the T_sep outputs of the previous latents (oldest first)."""
        return self.mixer.mix(separate)

    def memory(self, z_joint: Tensor) -> list[tuple[Tensor, Tensor]]:
        """What T_cur reads of z_joint (computed once per frame)."""
        return self.current.memory(z_joint)

    def predict(self, tokens: Tensor, z_joint: Tensor | list) -> tuple[Tensor, Tensor, Tensor]:
        """T_cur on (N, w_c², C) un-normalised current tokens given z_joint (or its ``memory``) → means, scales,
        z_cur."""
        memory = self.memory(z_joint) if isinstance(z_joint, Tensor) else z_joint
        return self.current(tokens / self.latent_scale, memory)

    def step(self, previous: Tensor | None, k: int, memory: list, cache: list) -> tuple[Tensor, Tensor, Tensor]:
        """Token k's mean, scale and z_cur given the decoded token k-1 (un-normalised; None for k = 0), with the
        self-attention ``cache`` of the earlier runs: T_cur's run k when coding (incremental decoding)."""
        return self.current.step(None if previous is None else previous / self.latent_scale, k, memory, cache)
