"""Layers. Imports torch only."""

from inpaint.nn.partial_conv import PartialConv2d

__all__ = ["PartialConv2d"]
