"""inpaint: image inpainting with partial convolutions (Liu et al., 2018).

Conventions: inside the library images are float (B, 3, H, W) in [0, 1] and masks are float with 1 = valid pixel,
0 = hole. User-facing files, CLI and the :class:`Inpainter` API take masks where nonzero (white) = hole to fill.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Inpainter", "__version__"]

if TYPE_CHECKING:
    from inpaint.inference import Inpainter


def __getattr__(name: str) -> Any:
    # Lazy, so `import inpaint.nn` stays torch-only and cheap.
    if name == "Inpainter":
        from inpaint.inference import Inpainter

        return Inpainter
    raise AttributeError(f"module 'inpaint' has no attribute {name!r}")
