"""Networks. Imports torch (and inpaint.nn) only."""

from inpaint.models.pconv_unet import FreezableBatchNorm2d, LayerSpec, PConvUNet, layer_table

__all__ = ["FreezableBatchNorm2d", "LayerSpec", "PConvUNet", "layer_table"]
