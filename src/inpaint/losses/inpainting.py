"""The composite loss of partial-convolution inpainting (Liu et al., ECCV 2018, eqs. 1-7).

Notation: ``I_out`` network output, ``I_gt`` target, ``M`` mask (1 = valid pixel, 0 = hole),
``I_comp = M * I_gt + (1 - M) * I_out``, ``Psi_p`` the VGG16 pool-p activations (p = 1, 2, 3).

- valid  = mean(|M * (I_out - I_gt)|)            (mean over all B*C*H*W elements, not over valid pixels)
- hole   = mean(|(1 - M) * (I_out - I_gt)|)
- perceptual = sum_p mean|Psi_p(I_out) - Psi_p(I_gt)| + sum_p mean|Psi_p(I_comp) - Psi_p(I_gt)|
- style_out  = sum_p mean|G_p(I_out) - G_p(I_gt)|,  G_p(I) = Psi_p(I) Psi_p(I)^T / (C_p H_p W_p), in float32
- style_comp = the same with I_comp
- tv = (sum of |differences| of horizontally and vertically adjacent pixel pairs of I_comp with both pixels in R)
  / (B*C*H*W), R = the 1-pixel (3x3) dilation of the hole
- total = sum_k weight_k * term_k, paper weights valid 1, hole 6, perceptual 0.05, style 120 + 120, tv 0.1, plus any
  extra terms of the user's own (``extra_terms``, each with its weight in ``weights``).

Torch only (no kornia): the dilation is a 3x3 max-pool of the hole indicator.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaint.losses.vgg import VGG16FeatureExtractor

__all__ = [
    "LOSS_TERMS",
    "PAPER_WEIGHTS",
    "VGG_TERMS",
    "InpaintingLoss",
    "composite",
    "dilate_hole",
    "gram_matrix",
    "hole_loss",
    "perceptual_loss",
    "style_loss",
    "total_variation_in_region",
    "valid_loss",
]

PAPER_WEIGHTS: dict[str, float] = {
    "valid": 1.0,
    "hole": 6.0,
    "perceptual": 0.05,
    "style_out": 120.0,
    "style_comp": 120.0,
    "tv": 0.1,
}
LOSS_TERMS: tuple[str, ...] = tuple(PAPER_WEIGHTS)
VGG_TERMS: tuple[str, ...] = ("perceptual", "style_out", "style_comp")


def _compute_dtype(t: Tensor) -> torch.dtype:
    # At least float32 (bf16/fp16 activations under autocast are upcast), float64 stays float64.
    return torch.promote_types(t.dtype, torch.float32)


def composite(output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """``I_comp = M * I_gt + (1 - M) * I_out``: the target's valid pixels, the output in the holes.

    Args:
        output: (B, 3, H, W). target: (B, 3, H, W). mask: (B, 1 or 3, H, W), 1 = valid, 0 = hole.

    Returns:
        (B, 3, H, W); gradients reach ``output`` through the hole pixels only.
    """
    return mask * target + (1.0 - mask) * output


def valid_loss(output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """``mean(|M * (I_out - I_gt)|)`` over all B*3*H*W elements. Shapes as in :func:`composite`; returns a scalar."""
    return (mask * (output - target)).abs().mean()


def hole_loss(output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """``mean(|(1 - M) * (I_out - I_gt)|)`` over all B*3*H*W elements (not over hole pixels only)."""
    return ((1.0 - mask) * (output - target)).abs().mean()


def gram_matrix(feat: Tensor) -> Tensor:
    """Gram matrix ``F F^T / (C H W)`` computed in (at least) float32, also under autocast.

    Half precision overflows here (sums of H*W squared activations), hence autocast is switched off locally.

    Args:
        feat: (B, C, H, W) activations.

    Returns:
        (B, C, C) float32 (float64 if ``feat`` is float64).
    """
    b, c, h, w = feat.shape
    with torch.autocast(device_type=feat.device.type, enabled=False):
        f = feat.to(_compute_dtype(feat)).reshape(b, c, h * w)
        return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def perceptual_loss(feats: Sequence[Tensor], feats_gt: Sequence[Tensor]) -> Tensor:
    """``sum_p mean|Psi_p(I) - Psi_p(I_gt)|`` (one half of the paper's perceptual loss).

    Args:
        feats: per-layer activations of one image batch, each (B, C_p, H_p, W_p).
        feats_gt: the target's activations, same shapes.

    Returns:
        scalar in the compute dtype (float32 under autocast).
    """
    return sum(
        (
            (f.to(_compute_dtype(f)) - g.to(_compute_dtype(f))).abs().mean()
            for f, g in zip(feats, feats_gt, strict=True)
        ),
        start=feats[0].new_zeros((), dtype=_compute_dtype(feats[0])),
    )


def style_loss(feats: Sequence[Tensor], grams_gt: Sequence[Tensor]) -> Tensor:
    """``sum_p mean|G_p(I) - G_p(I_gt)|`` over the B*C_p*C_p Gram entries.

    Args:
        feats: per-layer activations (B, C_p, H_p, W_p).
        grams_gt: the target's Gram matrices (B, C_p, C_p), from :func:`gram_matrix`.

    Returns:
        float32 scalar (float64 for float64 inputs).
    """
    return sum(
        ((gram_matrix(f) - g).abs().mean() for f, g in zip(feats, grams_gt, strict=True)),
        start=grams_gt[0].new_zeros(()),
    )


def dilate_hole(mask: Tensor) -> Tensor:
    """Region R: the hole dilated by one pixel (3x3 square structuring element), as a 0/1 float map.

    Args:
        mask: (B, C, H, W), 1 = valid, 0 = hole.

    Returns:
        (B, C, H, W), 1 inside R. The image border is not a hole (max-pool pads with -inf).
    """
    return F.max_pool2d(1.0 - mask, kernel_size=3, stride=1, padding=1)


def total_variation_in_region(image: Tensor, region: Tensor) -> Tensor:
    """Anisotropic TV over pixel pairs with both pixels in ``region``, divided by ``image.numel()``.

    Args:
        image: (B, C, H, W).
        region: (B, 1 or C, H, W), 1 where a pixel belongs to the region (fractional values weight the pairs).

    Returns:
        scalar.
    """
    dh = (image[..., :, 1:] - image[..., :, :-1]).abs() * (region[..., :, 1:] * region[..., :, :-1])
    dv = (image[..., 1:, :] - image[..., :-1, :]).abs() * (region[..., 1:, :] * region[..., :-1, :])
    return (dh.sum() + dv.sum()) / image.numel()


class InpaintingLoss(nn.Module):
    """Composite PConv loss; returns each unweighted term and their weighted ``total``.

    Terms whose weight is 0 are neither computed nor returned (their keys are absent from the result); with every
    VGG term off (``perceptual``, ``style_out``, ``style_comp``) no VGG is built at all.

    Args:
        vgg_weights: VGG16 weight source, see :func:`inpaint.losses.vgg.load_vgg16_features`: ``"imagenet"``
            (default; fails fast offline without the cached file), ``"imagenet_or_random"`` (offline demo),
            ``"random"`` (tests), or a path to a torchvision vgg16 state dict.
        weights: overrides of :data:`PAPER_WEIGHTS` (partial mappings allowed, e.g. ``{"tv": 0}``); keys must be
            among ``valid, hole, perceptual, style_out, style_comp, tv`` and the names of ``extra_terms``, each of
            which needs one; values >= 0.
        extra_terms: terms of your own, name -> module whose ``forward(output, target, mask)`` returns a scalar
            (shapes as below, float32, mask 1 = valid); added to ``total`` with ``weights[name]`` and returned under
            their name (docs/extending.md).

    Attributes:
        weights: the effective weights, the six paper terms' and the extra terms'.
        active_terms: the terms computed, in :data:`LOSS_TERMS` order, then the extra terms.
        vgg: the frozen :class:`VGG16FeatureExtractor`, or ``None`` when no VGG term is active.
        vgg_source: which VGG weights were used: ``"imagenet"``, ``"random"``, ``"file:<path>"`` or ``"none"``.

    Shapes: ``forward(output, target, mask)`` with output and target (B, 3, H, W) in [0, 1], mask (B, 1 or 3, H, W),
    1 = valid; returns a dict of scalars. The formulas are in the module docstring and docs/loss.md (Liu et al. 2018,
    section 3, "Loss Functions")::

        total = 1 valid + 6 hole + 0.05 perceptual + 120 (style_out + style_comp) + 0.1 tv

    Examples:
        Without the VGG terms no VGG is built. A grey 32x32 target, an output that is wrong (0 instead of 0.5)
        exactly in a 16x16 hole: ``hole = 0.5 * 256 / 1024``, and the composite's total variation over the hole
        dilated by one pixel counts 64 edge pairs of 0.5 in each of 3 channels, ``tv = 96 / (3 * 32 * 32)``.

        >>> import torch
        >>> from inpaint.losses import InpaintingLoss
        >>> loss = InpaintingLoss(weights={"perceptual": 0, "style_out": 0, "style_comp": 0})
        >>> loss.vgg is None, loss.vgg_source, loss.active_terms
        (True, 'none', ('valid', 'hole', 'tv'))
        >>> target = torch.full((1, 3, 32, 32), 0.5)
        >>> mask = torch.ones(1, 1, 32, 32)
        >>> mask[..., 8:24, 8:24] = 0  # hole
        >>> output = target.clone()
        >>> output[..., 8:24, 8:24] = 0.0
        >>> terms = loss(output, target, mask)
        >>> {k: round(float(v), 6) for k, v in terms.items()}
        {'valid': 0.0, 'hole': 0.125, 'tv': 0.03125, 'total': 0.753125}

        The full loss. Offline (no ImageNet weights can be downloaded here) ``vgg_weights="random"`` builds a VGG16
        with random weights, which is only good for tests: real training needs ``"imagenet"``.

        >>> full = InpaintingLoss(vgg_weights="random")
        >>> full.vgg_source
        'random'
        >>> terms = full(output, target, mask)
        >>> sorted(terms)
        ['hole', 'perceptual', 'style_comp', 'style_out', 'total', 'tv', 'valid']
        >>> weighted = sum(full.weights[k] * terms[k] for k in full.active_terms)
        >>> torch.allclose(terms["total"], weighted)
        True

        A term of your own joins with its weight (here the mean squared error in the hole):

        >>> class HoleMSE(torch.nn.Module):
        ...     def forward(self, output, target, mask):
        ...         return ((1 - mask) * (output - target) ** 2).mean()
        >>> plus = InpaintingLoss(weights={"perceptual": 0, "style_out": 0, "style_comp": 0, "tv": 0, "mse": 2},
        ...                       extra_terms={"mse": HoleMSE()})
        >>> plus.active_terms
        ('valid', 'hole', 'mse')
        >>> {k: round(float(v), 6) for k, v in plus(output, target, mask).items()}
        {'valid': 0.0, 'hole': 0.125, 'mse': 0.0625, 'total': 0.875}
    """

    def __init__(
        self,
        vgg_weights: str | os.PathLike[str] = "imagenet",
        weights: Mapping[str, float] | None = None,
        extra_terms: Mapping[str, nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.extra_terms = nn.ModuleDict(dict(extra_terms or {}))
        names = (*LOSS_TERMS, *self.extra_terms)
        clash = sorted(set(self.extra_terms) & {*LOSS_TERMS, "total"})
        if clash:
            raise ValueError(f"extra loss term(s) {clash} would replace a built-in term; name them otherwise")
        merged = {**PAPER_WEIGHTS, **{str(k): float(v) for k, v in (weights or {}).items()}}
        unknown = sorted(set(merged) - set(names))
        if unknown:
            raise ValueError(f"unknown loss term(s) {unknown} in weights; expected a subset of {list(names)}")
        unweighted = sorted(set(names) - set(merged))
        if unweighted:
            raise ValueError(f"extra loss term(s) {unweighted} have no weight: add one to weights")
        negative = {k: v for k, v in merged.items() if not v >= 0}  # `not >=` also catches NaN
        if negative:
            raise ValueError(f"loss weights must be >= 0, got {negative}")
        self.weights: dict[str, float] = merged
        self.active_terms: tuple[str, ...] = tuple(k for k in names if merged[k] > 0)
        if not self.active_terms:
            raise ValueError("all loss weights are 0: the loss would be a constant with no gradient")

        self.vgg: VGG16FeatureExtractor | None
        if any(merged[k] > 0 for k in VGG_TERMS):
            self.vgg = VGG16FeatureExtractor(vgg_weights)
            self.vgg_source: str = self.vgg.source
        else:
            self.vgg = None
            self.vgg_source = "none"

    def extra_repr(self) -> str:
        active = ", ".join(f"{k}={self.weights[k]:g}" for k in self.active_terms)
        return f"weights=({active}), vgg_source={self.vgg_source!r}"

    @staticmethod
    def _check_inputs(output: Tensor, target: Tensor, mask: Tensor) -> None:
        if output.dim() != 4 or output.shape[1] != 3:
            raise ValueError(f"output must be (B, 3, H, W), got shape {tuple(output.shape)}")
        if target.shape != output.shape:
            raise ValueError(
                f"target shape {tuple(target.shape)} differs from output shape {tuple(output.shape)}"
            )
        b, _, h, w = output.shape
        if mask.dim() != 4 or mask.shape[1] not in (1, 3) or (mask.shape[0], *mask.shape[2:]) != (b, h, w):
            raise ValueError(
                f"mask must be (B, 1, H, W) or (B, 3, H, W) = ({b}, 1|3, {h}, {w}) with 1 = valid and 0 = hole, "
                f"got shape {tuple(mask.shape)}"
            )

    def forward(self, output: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """Loss terms for one batch.

        Args:
            output: (B, 3, H, W) network prediction in [0, 1] (may be bf16/fp16 under autocast).
            target: (B, 3, H, W) ground truth in [0, 1].
            mask: (B, 1, H, W) or (B, 3, H, W) float, 1 = valid pixel, 0 = hole. H, W multiples of 8 keep the
                VGG pools from cropping.

        Returns:
            dict of scalars: one key per active term (unweighted) plus ``total`` = weighted sum. Terms with weight
            0 are absent. Values are float32 (float64 for float64 inputs) whatever the autocast dtype.
        """
        self._check_inputs(output, target, mask)
        w = self.weights
        dtype = _compute_dtype(output)
        # Mask and pixel arithmetic in float32 even under autocast: (1 - M) and the products are exact there.
        output = output.to(dtype)
        target = target.to(dtype)
        mask = mask.to(dtype)

        terms: dict[str, Tensor] = {}
        if w["valid"] > 0:
            terms["valid"] = valid_loss(output, target, mask)
        if w["hole"] > 0:
            terms["hole"] = hole_loss(output, target, mask)

        need_comp = w["perceptual"] > 0 or w["style_comp"] > 0 or w["tv"] > 0
        comp = composite(output, target, mask) if need_comp else None

        if self.vgg is not None:
            self._vgg_terms(output, target, comp, terms)

        if w["tv"] > 0:
            assert comp is not None
            terms["tv"] = total_variation_in_region(comp, dilate_hole(mask))
        for name, term in self.extra_terms.items():
            if w[name] > 0:
                terms[name] = self._extra(name, term, output, target, mask)

        terms["total"] = sum((w[k] * terms[k] for k in self.active_terms), start=output.new_zeros(()))
        return terms

    @staticmethod
    def _extra(name: str, term: nn.Module, output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        """An extra term's value; anything but a scalar tensor is refused (reducing a per-pixel map here by guess
        would silently rescale its weight)."""
        value = term(output, target, mask)
        if not isinstance(value, Tensor) or value.dim() != 0:
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"extra loss term {name!r} must return a scalar tensor, got {shape}")
        return value

    def _vgg_terms(
        self, output: Tensor, target: Tensor, comp: Tensor | None, terms: dict[str, Tensor]
    ) -> None:
        """Perceptual and style terms: target features once without gradient, output and composite in one pass."""
        assert self.vgg is not None
        w = self.weights
        need_out = w["perceptual"] > 0 or w["style_out"] > 0
        need_comp = w["perceptual"] > 0 or w["style_comp"] > 0

        with torch.no_grad():
            feats_gt = self.vgg(target)
        batch = [x for x, needed in ((output, need_out), (comp, need_comp)) if needed]
        assert all(x is not None for x in batch)
        feats = self.vgg(torch.cat(batch, dim=0)) if len(batch) > 1 else self.vgg(batch[0])
        if need_out and need_comp:
            split = [f.chunk(2, dim=0) for f in feats]
            feats_out, feats_comp = [s[0] for s in split], [s[1] for s in split]
        else:
            feats_out = feats if need_out else []
            feats_comp = feats if need_comp else []

        if w["perceptual"] > 0:
            terms["perceptual"] = perceptual_loss(feats_out, feats_gt) + perceptual_loss(feats_comp, feats_gt)
        if w["style_out"] > 0 or w["style_comp"] > 0:
            grams_gt = [gram_matrix(g) for g in feats_gt]
            if w["style_out"] > 0:
                terms["style_out"] = style_loss(feats_out, grams_gt)
            if w["style_comp"] > 0:
                terms["style_comp"] = style_loss(feats_comp, grams_gt)
