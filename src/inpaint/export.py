"""Export a checkpoint to a weights-only file: ``python -m inpaint.export`` (console script ``inpaint-export``).

::

    python -m inpaint.export outputs/train/runs/<run>/checkpoints/last.ckpt -o pconv.safetensors [--pt2]

The ``.safetensors`` file holds the U-Net's tensors and its config as JSON metadata: no pickle, nothing executable;
:meth:`inpaint.Inpainter.from_checkpoint` loads it. The checkpoint itself is read safely
(``torch.load(weights_only=True)``, allow-listed model class), so exporting a stranger's checkpoint is as safe as
loading it.

``--pt2`` additionally writes a ``torch.export`` program (``.pt2``) with dynamic batch size, height and width
(multiples of ``2**levels``, at least ``2**(levels+1)`` in one of the two), for deployment without this package.
TorchScript is not offered: ``torch.jit.script`` cannot compile the model and is deprecated; ONNX needs packages
that are not dependencies of inpaint.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import torch

from inpaint.checkpoint import CheckpointError, load_model, save_weights, stored_inference_options
from inpaint.cli import path_argument
from inpaint.io import atomic_output, describe_os_error

__all__ = ["export_program", "export_weights", "main"]


def export_weights(checkpoint: str | Path, output: str | Path | None = None) -> Path:
    """Write ``output`` (default: the checkpoint path with suffix ``.safetensors``) and verify it loads back with
    identical tensors. Returns the written path."""
    checkpoint = Path(checkpoint)
    output = Path(output) if output is not None else checkpoint.with_suffix(".safetensors")
    if output.resolve() == checkpoint.resolve():
        raise ValueError(f"output {output} would overwrite the checkpoint")
    model, config = load_model(checkpoint)
    save_weights(output, model, config, stored_inference_options(checkpoint))
    again, config2 = load_model(output)
    same = config2 == config and all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    )
    if not same:  # would mean a bug in save/load; never leave a wrong export behind
        output.unlink()
        raise RuntimeError(f"export check failed: {output} does not reproduce {checkpoint}")
    return output


def export_program(checkpoint: str | Path, output: str | Path) -> Path:
    """Write a ``torch.export`` program of the U-Net with dynamic batch, height and width; returns ``output``.

    Inputs of the program: image (B, 3, H, W) in [0, 1] and mask (B, 1, H, W), 1 = valid, H and W multiples of
    ``2**levels``; output: the raw prediction (composite it with the known pixels yourself).
    """
    from torch.export import Dim, export

    model, config = load_model(checkpoint)
    if getattr(model, "membrane_residual", False):
        # Its solver stops and recurses on the data and the size, which torch.export cannot capture.
        raise ValueError(
            f"{checkpoint}: --pt2 exports only networks without membrane_residual (the smooth fill it adds is "
            "solved iteratively); use the .safetensors file with inpaint.Inpainter"
        )
    m = 2 ** int(config.get("levels", model.levels))
    # Batch 2 and an uneven size, so that torch.export does not specialise batch or H == W.
    image = torch.rand(2, 3, 2 * m, 3 * m)
    mask = (torch.rand(2, 1, 2 * m, 3 * m) > 0.3).float()
    batch, h, w = Dim("batch", min=1, max=4096), Dim("h", min=1, max=64), Dim("w", min=1, max=64)
    shape = {0: batch, 2: m * h, 3: m * w}
    program = export(model, (image, mask), dynamic_shapes=(shape, shape))
    output = Path(output)
    # Through a file object: given a path, torch names the archive's inner folder after the temporary file.
    with atomic_output(output) as tmp, open(tmp, "wb") as f:
        torch.export.save(program, f)
    return output


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status: 0, or 1 with one ``error:`` line (``--debug`` adds the traceback)."""
    p = argparse.ArgumentParser(prog="inpaint-export", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=path_argument, help="Lightning .ckpt (or an earlier export)")
    p.add_argument(
        "-o", "--output", type=path_argument, help="output .safetensors (default: next to the checkpoint)"
    )
    p.add_argument("--pt2", action="store_true", help="also write a torch.export program next to the output")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = p.parse_args(argv)
    try:
        out = export_weights(args.checkpoint, args.output)
        print(f"wrote {out}")
        if args.pt2:
            print(f"wrote {export_program(args.checkpoint, out.with_suffix('.pt2'))}")
    except (
        CheckpointError,
        ValueError,
    ) as e:  # unreadable, unsafe or non-finite checkpoint, a bad output path
        return _fail(str(e), args.debug)
    except (
        OSError
    ) as e:  # the output cannot be written: read-only folder, full disk, a file where a folder should be
        return _fail(f"cannot write the export: {describe_os_error(e)}", args.debug)
    return 0


def _fail(message: str, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
