"""Training: the LightningModule, its callbacks and loggers, the atomic checkpoint plugin, and :func:`train`, which
builds all of them from a composed config (``python -m inpaint.train`` is its command line)."""

from inpaint.training.module import InpaintingModule, NonFiniteLossError
from inpaint.training.run import ConfigError, train

__all__ = ["ConfigError", "InpaintingModule", "NonFiniteLossError", "train"]
