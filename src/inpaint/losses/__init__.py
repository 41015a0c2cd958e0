"""Losses for partial-convolution inpainting (torch + torchvision only).

:class:`InpaintingLoss` is the composite loss of Liu et al. (2018); :class:`VGG16FeatureExtractor` the frozen
VGG16 (pool1-pool3) it uses for the perceptual and style terms. Masks are float, 1 = valid pixel, 0 = hole.
"""

from inpaint.losses.inpainting import (
    LOSS_TERMS,
    PAPER_WEIGHTS,
    VGG_TERMS,
    InpaintingLoss,
    composite,
    dilate_hole,
    gram_matrix,
    hole_loss,
    perceptual_loss,
    style_loss,
    total_variation_in_region,
    valid_loss,
)
from inpaint.losses.vgg import (
    VGG16_FILENAME,
    VGG16FeatureExtractor,
    VGGWeightsUnavailableError,
    load_vgg16_features,
    vgg16_cache_dir,
)

__all__ = [
    "LOSS_TERMS",
    "PAPER_WEIGHTS",
    "VGG16_FILENAME",
    "VGG_TERMS",
    "InpaintingLoss",
    "VGG16FeatureExtractor",
    "VGGWeightsUnavailableError",
    "composite",
    "dilate_hole",
    "gram_matrix",
    "hole_loss",
    "load_vgg16_features",
    "perceptual_loss",
    "style_loss",
    "total_variation_in_region",
    "valid_loss",
    "vgg16_cache_dir",
]
