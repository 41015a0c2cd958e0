"""Networks. Imports torch (and inpaint.nn) only."""

from inpaint.models.pconv_unet import FrozenBatchNorm2d, LayerSpec, PConvUNet, encoder_channels, layer_table

__all__ = ["FrozenBatchNorm2d", "LayerSpec", "PConvUNet", "encoder_channels", "layer_table"]
