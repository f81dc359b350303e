"""The hand-set start of ``init: pass-through``: a zero-residual codec made into a working one before it has seen
any data. The intra coder codes 16×16 block means in colour (``pass_through_intra``), each P-frame starts as its
reference with the residual's block means coded the same way (``pass_through_pframes``), and ẑ tells the priors
the rate point (``_gain_priors``). Every weight is set through the blocks' shortcuts, so it needs the residual
branches at zero first (``nvc1b.model.init``)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .intra import IntraCodec
from .layers import DepthConv, DepthConvBlock, StridedResBlock, UpsampleResBlock
from .swin import SwinPair

RGB = 3
"""Channels that carry the frame through the pass-through intra coder: R, G, B in channels 0..2."""
PASS_THROUGH_GAINS = (8.0, 16.0, 40.0, 128.0)
"""Latent units per unit of pixel value at each rate anchor: a block mean is quantised in steps of 1/8 of the
pixel range at the lowest rate point and of 1/128 at the highest (set through the rate control's per-anchor
steps)."""
PASS_THROUGH_STD = 12.0
"""Initial std of the RGB latents' prior in latent units at a gain of 40 (the third rate point); it is
proportional to the gain (see GAIN)."""
SILENT_Z_SCALE = 0.1
"""Scale of the hyper-latents' initial factorized density: P(ẑ = 0) ≈ 0.99."""
QUIET_SCALES = {"laplace": 0.1, "gaussian": 0.2}
"""Initial scale of every other latent channel's prior, by distribution: a zero costs about 0.01 bits, and a
value of 1 (a channel the training starts to use) about 8 bits, short of the 16.6-bit floor where the rate's
gradient vanishes."""

DC = 3
"""The intra encoder's constant channel (next to R, G, B): it takes ½ off the latent, which is then centred on zero
at every rate point (the rate control's steps multiply it as they multiply the frame)."""
DIVIDING_STAGES = 2
"""Up-samplings of a decoder that divide by the top gain, its square root each: the carriers stay within a few
units of the latent and the frame, and no weight of the path is as small as 1/128 (Adam moves every weight by
about the learning rate a step, which would swamp such a one). The encoder multiplies in its last convolution,
so that its features stay at the pixels' scale."""
RESIDUAL_STD = 0.6
"""Initial std, in latent units, of the prior of the P-frame latents that carry the residual's block means, at a
gain of 40 (the third rate point); it is proportional to the gain (see GAIN)."""
GAIN = 3
"""The latent channel (next to R, G, B) that tells the priors the rate point: it holds gain / GAIN_UNIT (1, 2, 5
and 16), the hyper-encoder copies it into ẑ's first channel (about 5 bits for each hyper-latent position) and
the priors take the RGB latents' std in proportion to it and this channel's own mean from it (so it costs
nothing more). A prior of one std for every rate point would spend about as many bits on a block mean quantised
in steps of 1/8 as in steps of 1/40: measured, the rate points then spanned only 1.9x in bits at step 0."""
GAIN_UNIT = 8.0
INTRA_SPREAD = PASS_THROUGH_STD / 40.0
"""The RGB latents' std per unit of gain in the intra coder (PASS_THROUGH_STD at a gain of 40)."""
RESIDUAL_SPREAD = RESIDUAL_STD / 40.0
"""The residual latents' std per unit of gain in the P-frame coder."""
GAIN_Z_MEAN, GAIN_Z_SCALE = 6.0, 3.0
"""Location and scale of the logistic density of ẑ's gain channel at the start."""

_IDENTITY = torch.zeros(3, 3)
_IDENTITY[1, 1] = 1.0
_BOX = torch.outer(torch.tensor([0.0, 1.0, 1.0]), torch.tensor([0.0, 1.0, 1.0])) / 4
"""A 3×3, stride-2, padding-1 kernel that averages the 2×2 block (2i, 2i+1): four of them give 16×16 means."""


def _carry(conv: nn.Conv2d, kernel: Tensor | None = None, gain: float = 1.0, silence_rest: bool = False,
           src: tuple[int, ...] = (0, 1, 2), dst: tuple[int, ...] = (0, 1, 2)) -> None:
    """Make output channels ``dst`` of ``conv`` its input channels ``src`` filtered by ``kernel`` (3×3; none: 1×1
    identity) times ``gain``, from nothing else. With ``silence_rest`` every other output channel is zero too;
    otherwise it keeps its initial weights (free features the training can start to use)."""
    w = conv.weight
    if w.shape[0] <= max(dst) or w.shape[1] <= max(src):
        raise ValueError(f"pass-through needs at least {RGB} channels in and out, got a {tuple(w.shape)} convolution")
    tap = torch.ones(1, 1) if kernel is None else kernel
    if tuple(w.shape[-2:]) != tuple(tap.shape):
        raise ValueError(f"pass-through kernel {tuple(tap.shape)} does not fit a {tuple(w.shape)} convolution")
    rows = list(dst)
    if silence_rest:
        w.zero_()
        if conv.bias is not None:
            conv.bias.zero_()
    w[rows] = 0
    for i, o in zip(src, dst, strict=True):
        w[o, i] = gain * tap
    if conv.bias is not None:
        conv.bias[rows] = 0


def _last_projection(blocks: nn.Module) -> nn.Conv2d | None:
    """The last of ``_projections(blocks)``: with every residual branch at zero, the blocks' output is its output."""
    found = _projections(blocks)
    return found[-1] if found else None


def _prior_rows(conv: nn.Conv2d, scales: slice, means: slice, quiet: float, scale: float | None = None) -> None:
    """Prior parameters that start near constants: the RGB latents' std ``scale`` (none carried: no RGB latents),
    every other's ``quiet``, all means zero; the weights keep 1% of their initial values so that the priors can
    learn to vary."""
    conv.weight[scales] *= 0.01
    conv.bias[scales] = quiet
    if scale is not None:
        conv.bias[scales.start : scales.start + RGB] = scale
    conv.weight[means] *= 0.01
    conv.bias[means] = 0.0


def _quiet_priors(fusion: nn.Module, spatial_prior: nn.Module, channels: int, carried_scale: float | None) -> None:
    """Quantisation step 1 and near-constant priors (see ``_prior_rows``) for a PriorFusion and its quadtree prior."""
    c = channels
    last = _last_projection(fusion)
    if last is None or last.out_channels != 3 * c:
        raise ValueError("pass-through needs the prior fusion to end in a block that changes the width")
    last.weight[:c] = 0  # quantisation step 1 everywhere
    last.bias[:c] = 1.0
    quiet = QUIET_SCALES[spatial_prior.distribution]
    _prior_rows(last, slice(c, 2 * c), slice(2 * c, 3 * c), quiet, carried_scale)
    spatial = _last_projection(spatial_prior.net)
    for conv in [spatial] if spatial is not None else list(spatial_prior.step_adaptors):
        if conv.out_channels != 2 * c:
            raise ValueError("pass-through needs the spatial prior's parameters from a block of width 2C")
        _prior_rows(conv, slice(0, c), slice(c, 2 * c), quiet, carried_scale)


def _silence_hyperprior(hyperprior: nn.Module) -> None:
    """ẑ starts at zero (the hyper-encoder's last convolution at zero) under a factorized density concentrated
    on zero (scale SILENT_Z_SCALE, centred), so the hyper-latent costs almost nothing until training uses it."""
    last = _last_conv(hyperprior.encoder)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    prior = hyperprior.z_prior
    layers = len(prior.matrices)
    scale = SILENT_Z_SCALE ** (1.0 / layers)
    for matrix, bias in zip(prior.matrices, prior.biases):
        matrix.fill_(math.log(math.expm1(1.0 / scale / matrix.shape[1])))
        bias.zero_()
    for factor in prior.factors:
        factor.zero_()


def _last_conv(module: nn.Module) -> nn.Conv2d:
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1]


def _private(conv: nn.Conv2d, rows: dict[int, dict[int, float]], kernel: Tensor | None = None) -> None:
    """Each output channel of ``rows`` (output → {input: weight}) becomes that weighted sum of inputs (through
    ``kernel``, by default the centre tap), from nothing else and without bias; no other output channel sees those
    inputs, so what they carry reaches those outputs only."""
    w = conv.weight
    sources = sorted({src for taps in rows.values() for src in taps})
    if w.shape[0] <= max(rows) or w.shape[1] <= sources[-1]:
        raise ValueError(f"pass-through cannot route channels {sources} → {sorted(rows)} through a "
                         f"{tuple(w.shape)} convolution")
    if kernel is None:
        kernel = torch.zeros(w.shape[-2:])
        kernel[w.shape[-2] // 2, w.shape[-1] // 2] = 1.0
    w[:, sources] = 0
    for dst, taps in rows.items():
        w[dst] = 0
        for src, weight in taps.items():
            w[dst, src] = weight * kernel
        if conv.bias is not None:
            conv.bias[dst] = 0


def _projections(module: nn.Module) -> list[nn.Conv2d]:
    """The 1×1 shortcuts of ``module``'s width-changing DepthConvBlocks in order: with every residual branch at
    zero, ``module`` is their product (a block that keeps the width is the identity)."""
    return [m.depth_conv.shortcut for m in module.modules()
            if isinstance(m, DepthConvBlock) and isinstance(m.depth_conv.shortcut, nn.Conv2d)]


def _route(projections: list[nn.Conv2d], rows: dict[int, dict[int, float]]) -> None:
    """Through a chain of 1×1 projections, carry the inputs that ``rows`` (output row of the last → {input of
    the first: weight}) names, each on its own channel (its own index where the width allows, so that two chains
    through the same projections agree), and make those rows of the last projection the weighted sums."""
    sources = sorted({src for taps in rows.values() for src in taps})
    carriers = {src: src for src in sources}
    for conv in projections[:-1]:
        kept = {src: i for src, i in carriers.items() if i < conv.out_channels}
        free = (i for i in range(conv.out_channels) if i not in kept.values())
        moved = {src: kept[src] if src in kept else next(free) for src in sources}
        _private(conv, {moved[src]: {carriers[src]: 1.0} for src in sources})
        carriers = moved
    _private(projections[-1], {dst: {carriers[s]: w for s, w in taps.items()} for dst, taps in rows.items()})


def _carry_z(decoder: nn.Module, rows: dict[int, float]) -> None:
    """ẑ's channel 0 through a hyper-decoder (residual branches at zero, every activation passing positive values)
    to its output channels ``rows`` (channel → weight): plain convolutions by their centre tap, sub-pixel ones to
    all four sub-positions, blocks that keep the width as they are."""
    steps: list[tuple[nn.Conv2d, bool]] = []
    for m in decoder:
        if isinstance(m, UpsampleResBlock):
            steps.append((m.shortcut[0], True))
        elif isinstance(m, nn.Sequential) and isinstance(m[-1], nn.PixelShuffle):
            steps.append((m[0], True))
        elif isinstance(m, nn.Conv2d):
            steps.append((m, False))
        elif isinstance(m, DepthConvBlock) and isinstance(m.depth_conv.shortcut, nn.Conv2d):
            steps.append((m.depth_conv.shortcut, False))
    for index, (conv, subpel) in enumerate(steps):
        targets = rows if index == len(steps) - 1 else {0: 1.0}
        if subpel:  # output channel c, sub-position s comes from conv row 4c + s
            targets = {4 * c + s: w for c, w in targets.items() for s in range(4)}
        _private(conv, {dst: {0: w} for dst, w in targets.items()})


def _gain_priors(hyperprior: nn.Module, hyper_rows: dict[int, float], fusion_chains: list[list[nn.Conv2d]],
                 fusion_rows: dict[int, dict[int, float]], spatial: nn.Module, channels: int) -> None:
    """The priors read the rate point from ẑ (see GAIN): the hyper-encoder copies latent channel GAIN into ẑ's
    channel 0 (centre taps: ẑ at position j reads the latent at 4j, never the padding) under a logistic density
    (GAIN_Z_MEAN, GAIN_Z_SCALE); the hyper-decoder gives it to its outputs ``hyper_rows``; the prior fusion's
    chains of projections make the common parameters' ``fusion_rows`` from them (the RGB latents' std and channel
    GAIN's mean), and the quadtree prior's later steps take both from the common parameters. Call after
    ``_silence_hyperprior`` and ``_quiet_priors``."""
    encoder = [m for m in hyperprior.encoder if isinstance(m, nn.Conv2d)]
    for index, conv in enumerate(encoder):
        _private(conv, {0: {GAIN if index == 0 else 0: 1.0}})
    prior = hyperprior.z_prior
    k = (1.0 / GAIN_Z_SCALE) ** (1.0 / len(prior.matrices))
    for i, (matrix, bias) in enumerate(zip(prior.matrices, prior.biases)):
        matrix[0] = math.log(math.expm1(k / matrix.shape[2]))
        bias[0] = -GAIN_Z_MEAN * k if i == 0 else 0.0
    _carry_z(hyperprior.decoder, hyper_rows)
    for chain in fusion_chains:
        if chain:  # an empty chain is a fusion that starts as the identity: its output is its input
            _route(chain, fusion_rows)
    c = channels
    step_rows = {k: {2 * c + k: 1.0} for k in range(RGB)} | {c + GAIN: {3 * c + GAIN: 1.0}}
    for adaptor in spatial.step_adaptors:  # its input: [ŷ so far, quantisation steps, scales, means]
        _route([adaptor, *_projections(spatial.net)], step_rows)


def _mute_gain(*parts: nn.Module) -> None:
    """No convolution of ``parts`` (the first layers that read ŷ) sees latent channel GAIN: the rate point is for
    the priors, not a large constant in the decoders' free features."""
    for part in parts:
        for m in part.modules():
            if isinstance(m, nn.Conv2d) and m.in_channels > GAIN and m.groups == 1:
                m.weight[:, GAIN] = 0


def _gain_levels(gains: tuple[float, ...]) -> None:
    levels = [g / GAIN_UNIT for g in gains]
    if any(level != round(level) or level < 1 for level in levels):
        raise ValueError(f"pass-through gains must be whole multiples of {GAIN_UNIT:g}, got {gains}")


@torch.no_grad()
def pass_through_intra(intra: nn.Module, gains: tuple[float, ...] = PASS_THROUGH_GAINS) -> None:
    """Start a zero-residual IntraCodec as a linear colour codec of 16×16 block means.

    Encoder: each of the four stride-2 stages averages 2×2 blocks of channels 0..2 (the strided residual blocks'
    first convolution, their second passing it on) beside a constant channel DC; the latent's convolution
    multiplies by the top rate point's gain, takes off ½ through DC and starts every other latent channel at zero;
    the rate control's per-anchor steps give each rate point its own gain of ``gains``. Decoder: every sub-pixel
    up-sampling copies channels 0..2 to the four sub-positions (nearest neighbour), the first DIVIDING_STAGES
    dividing by the top gain; the U-Net's output block takes them from its first block and the last convolution
    adds the ½ back. Entropy model: quantisation step 1, RGB latents under a zero-mean prior of std
    INTRA_SPREAD · gain, which the priors read from ẑ (latent channel GAIN, see ``_gain_priors``), the rest near
    zero, and ẑ's other channels silent (see ``_silence_hyperprior``). The other channels keep
    their initial weights but start without any path to the frame, so at step 0 the reconstruction is the block
    means (28.2 dB on the demo's synthetic test windows at the top rate point) and training adds detail from
    there. Needs conv blocks.
    """
    if not isinstance(intra, IntraCodec):
        raise TypeError(f"pass-through starts an IntraCodec, not {type(intra).__name__}")
    if any(isinstance(m, SwinPair) for m in intra.modules()):
        raise ValueError("pass-through needs the intra coder's block_type 'conv' (Swin blocks have no pass-through)")
    if intra.rate.enc_scale.numel() != len(gains):
        raise ValueError(f"pass-through has {len(gains)} gains for {intra.rate.enc_scale.numel()} rate anchors")
    _gain_levels(gains)
    top = gains[-1]
    carriers = (*range(RGB), DC)
    first = intra.enc_in[0]
    for m in [*intra.enc_in.modules(), *intra.enc_out.modules()]:
        if isinstance(m, StridedResBlock):
            if m is first:  # the frame's R, G, B, and a constant channel of value 1
                _carry(m.conv1, _BOX)
                m.conv1.weight[DC] = 0
                m.conv1.bias[DC] = 1.0
            else:
                _carry(m.conv1, _BOX, src=carriers, dst=carriers)
            _carry(m.conv2, _IDENTITY, src=carriers, dst=carriers)
            m.shortcut.weight[: DC + 1] = 0
            m.shortcut.bias[: DC + 1] = 0
    last = intra.enc_out[-1]  # the latent: block means minus ½ (the constant channel's half), centred on zero
    _carry(last, _BOX, gain=top, silence_rest=True)
    for c in range(RGB):
        last.weight[c, DC] = -0.5 * top * _BOX
    last.weight[GAIN, DC] = top / GAIN_UNIT * _BOX  # the rate point, for the priors
    ups = [m for part in (intra.dec_in, intra.dec_out) for m in part.modules() if isinstance(m, UpsampleResBlock)]
    for up, gain in zip(ups, _decoder_gains(top, len(ups)), strict=True):
        _nearest(up.shortcut, gain)
    for part in (intra.enc_in, intra.enc_out, intra.dec_in, intra.dec_out, intra.refine):
        _carry_depth_convs(part)
    _carry(intra.refine[-1], _IDENTITY)
    intra.refine[-1].bias[:RGB] = 0.5  # the ½ taken off the latent
    _rate_steps(intra.rate, gains)
    _mute_gain(intra.dec_in[0], intra.dec_in[1])

    n = intra.latent_channels
    _quiet_priors(intra.fusion, intra.spatial_prior, n, None)  # the RGB latents' std: from ẑ, below
    _silence_hyperprior(intra.hyperprior)
    _gain_priors(intra.hyperprior, {0: 1.0}, [_projections(intra.fusion)],
                 {n + k: {0: INTRA_SPREAD * GAIN_UNIT} for k in range(RGB)} | {2 * n + GAIN: {0: 1.0}},
                 intra.spatial_prior, n)


def _decoder_gains(top: float, count: int) -> list[float]:
    """Gains of a decoder's ``count`` up-samplings: the first DIVIDING_STAGES divide by the top gain."""
    if count < DIVIDING_STAGES:
        raise ValueError(f"pass-through needs {DIVIDING_STAGES} up-samplings in the decoder, found {count}")
    return [top ** (-1.0 / DIVIDING_STAGES)] * DIVIDING_STAGES + [1.0] * (count - DIVIDING_STAGES)


def _nearest(subpel: nn.Sequential, gain: float = 1.0) -> None:
    """A sub-pixel up-sampling (conv, pixel shuffle) that copies channels 0..2 to their four sub-positions."""
    conv = subpel[0]  # output channel c, sub-position s comes from conv row 4c + s
    if conv.weight.shape[1] < RGB or conv.weight.shape[0] < 4 * RGB:
        raise ValueError("pass-through needs at least 3 channels on both sides of every up-sampling")
    conv.weight[: 4 * RGB] = 0
    conv.bias[: 4 * RGB] = 0
    k = conv.weight.shape[-1] // 2
    for c in range(RGB):
        conv.weight[4 * c : 4 * c + 4, c, k, k] = gain


def _carry_depth_convs(part: nn.Module) -> None:
    """Every DepthConv of ``part`` whose shortcut changes the width passes channels 0..2 on."""
    for m in part.modules():
        if isinstance(m, DepthConv) and isinstance(m.shortcut, nn.Conv2d):
            _carry(m.shortcut)


def _rate_steps(rate: nn.Module, gains: tuple[float, ...]) -> None:
    """Per-anchor steps of a RateControl: ``gains`` relative to the top one (the stages carry the top gain)."""
    steps = torch.tensor(gains) / gains[-1]
    rate.enc_scale.copy_(steps)
    rate.dec_scale.copy_(1.0 / steps)


def _pass_through_residual(cc: nn.Module, routed: tuple[int, ...], gains: tuple[float, ...]) -> None:
    """The ContextualCodec's main path (linear at step 0: convolutions and residual blocks at zero) carrying the
    block means of x − C⁰[routed] in latent channels 0..2 (and the rate point in GAIN, as the intra coder), and the
    reconstruction adding them back to C⁰."""
    top = gains[-1]
    in_ch = cc.enc1.in_channels
    k0 = in_ch - RGB
    carriers = (*range(RGB), DC)
    _carry(cc.enc1, _BOX)  # the frame's channels come first: cat([x, C⁰])
    for c, r in zip(range(RGB), routed, strict=True):
        cc.enc1.weight[c, RGB + r] = -_BOX
    cc.enc1.weight[DC] = 0  # a constant channel, multiplied by the rate control's steps: the rate point
    cc.enc1.bias[DC] = 1.0
    _carry(cc.enc2, _BOX, src=carriers, dst=carriers)
    _carry(cc.enc3[0], _BOX, src=carriers, dst=carriers)
    if isinstance(cc.enc4, nn.Conv2d):
        _carry(cc.enc4, _BOX, gain=top, silence_rest=True)
        cc.enc4.weight[GAIN, DC] = top / GAIN_UNIT * _BOX
        ups = [cc.dec4]
    else:
        _carry(cc.enc4[0], _BOX, src=carriers, dst=carriers)
        _carry(cc.enc4[-1], _IDENTITY, gain=top, silence_rest=True)
        cc.enc4[-1].weight[GAIN, DC] = top / GAIN_UNIT * _IDENTITY
        _carry(cc.dec4[0], _IDENTITY)
        ups = [cc.dec4[-1]]
    ups += [cc.dec3[-1], cc.dec2, cc.dec1]
    for up, gain in zip(ups, _decoder_gains(top, len(ups)), strict=True):
        _nearest(up, gain)
    _rate_steps(cc.rate, gains)
    _mute_gain(cc.dec4[0])
    recon_ch = cc.recon_in.in_channels - k0  # recon_in sees cat([decoder output, C⁰])
    _carry(cc.recon_in, _IDENTITY, src=tuple(recon_ch + r for r in routed))
    for c in range(RGB):
        cc.recon_in.weight[c, c] = _IDENTITY
    _carry_depth_convs(cc.recon_unets)
    _carry(cc.recon_out, _IDENTITY)


def _fuse_carriers(align: nn.Module, src: tuple[int, ...]) -> tuple[int, ...]:
    """Wire an OffsetDiversityAlign so that, with its offset net at zero (every offset the flow, every mask ½),
    channels ``src`` of the feature come out warped by the flow: each goes to a free output channel of a fusion
    group that sees it in some copy, with weight 2 (undoing the mask). Returns the output channels used."""
    fuse = align.fuse
    ch, groups, copies = fuse.out_channels, align.groups, align.offsets
    per_in, per_out = copies * ch // groups, ch // groups
    fuse.weight[:] = 0
    fuse.bias[:] = 0
    used: list[int] = []
    for channel in src:
        for copy in range(copies):
            group = (copy * ch + channel) // per_in
            free = [o for o in range(group * per_out, (group + 1) * per_out) if o not in used]
            if free:
                fuse.weight[free[0], (copy * ch + channel) % per_in] = 2.0
                used.append(free[0])
                break
        else:
            raise ValueError(f"pass-through cannot route feature channel {channel} through the alignment's fusion")
    return tuple(used)


@torch.no_grad()
def pass_through_pframes(codec: nn.Module, gains: tuple[float, ...] = PASS_THROUGH_GAINS) -> None:
    """Start the six P-frame parts (after zero-residual) so that at step 0 a P-frame is decoded as its reference
    with its block means set to the frame's.

    The decoded flows start at zero (both flow heads at zero), so warping is copying. Temporal context mining
    carries R, G, B of the reference (the I-frame's pixels through ``adaptor_intra``, later frames' reference
    features through every feature adaptor) into C⁰: the feature pyramid's first convolution passes them on, the
    alignments' offset nets start at zero (offsets = the flow) and their fusions route the three channels, the
    multi-scale fusion's updates and the long-term merge start at zero. The contextual codec codes the 16×16 block
    means of the residual (the frame minus C⁰'s R, G, B) as the intra coder codes the frame's (see
    ``_pass_through_residual``), and its reconstruction net adds them to C⁰'s, giving the frame and the first three
    channels of the reference feature F̂_t. So at step 0 a P-frame is its warped reference with its block means
    set to the frame's: the block-mean frame again, without drift. The motion latents start at zero under
    near-constant priors and cost almost no bits; training then learns the flows and the detail."""
    mc, tcm, cc = codec.motion_codec, codec.temporal_context_mining, codec.contextual_codec
    for head in (mc.structure_head, mc.detail_head):
        nn.init.zeros_(head[0].weight)
        nn.init.zeros_(head[0].bias)
    nn.init.zeros_(_last_conv(mc.enc_out).weight)
    nn.init.zeros_(_last_conv(mc.enc_out).bias)
    me = codec.motion_entropy
    _quiet_priors(me.fusion, me.spatial_prior, me.spatial_prior.channels, None)
    _silence_hyperprior(me.hyperprior)

    _carry(tcm.adaptor_intra, _IDENTITY)
    for adaptor in tcm.adaptors:
        _carry(adaptor)
    _carry(tcm.pyramid.level0[0], _IDENTITY)
    carriers = (0, 1, 2)
    for align in (tcm.align_structure, tcm.align_detail):
        last = align.offset_net[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    routed = _fuse_carriers(tcm.align_structure, carriers)
    if _fuse_carriers(tcm.align_detail, carriers) != routed:
        raise ValueError("pass-through: the two alignments route the feature differently")
    for out in (tcm.fusion.out0, tcm.fusion.out1, tcm.fusion.out2):
        nn.init.zeros_(out[0].weight)
        nn.init.zeros_(out[0].bias)
    _carry(tcm.merge_hidden[0], _IDENTITY, src=routed, dst=routed)
    if isinstance(tcm.project[0], nn.Conv2d):
        _carry(tcm.project[0], src=routed, dst=routed)

    _pass_through_residual(cc, routed, gains)
    ce = codec.contextual_entropy
    _quiet_priors(ce.fusion, ce.spatial_prior, ce.spatial_prior.channels, None)  # the residual's std: from ẑ
    if _last_projection(ce.fusion.net) is None:
        # with a previous latent the fusion (adaptor and net of one width) starts as the identity, so its output
        # is its input: quantisation steps from the temporal prior, scales from the hyperprior, means the
        # previous latent ŷ_{t-1}. Start the first two as the constants above.
        c = ce.spatial_prior.channels
        temporal = _last_conv(ce.temporal_prior)
        temporal.weight.zero_()
        temporal.bias.fill_(1.0)
        hyper = _last_conv(ce.hyperprior.decoder)
        hyper.weight *= 0.01
        hyper.bias.fill_(QUIET_SCALES[ce.spatial_prior.distribution])  # the RGB ones: from ẑ, below
        if temporal.out_channels != c or hyper.out_channels != c:
            raise ValueError("pass-through: the contextual prior fusion's inputs are not one latent wide each")
    _silence_hyperprior(ce.hyperprior)
    c, spread = ce.spatial_prior.channels, RESIDUAL_SPREAD * GAIN_UNIT
    tail = _projections(ce.fusion.net)  # the fusion's input: [temporal prior, hyperprior] (+ the previous ŷ)
    chains = [[*_projections(ce.fusion.adaptor_first), *tail], [*_projections(ce.fusion.adaptor_ref), *tail]]
    _gain_priors(ce.hyperprior, dict.fromkeys(range(RGB), spread), chains,
                 {c + k: {c + k: 1.0} for k in range(RGB)} | {2 * c + GAIN: {c: 1.0 / spread}}, ce.spatial_prior, c)
