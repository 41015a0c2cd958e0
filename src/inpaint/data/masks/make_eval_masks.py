"""Write a fixed, seeded evaluation mask set: N masks per NVIDIA hole-ratio bin, PNG (white = hole) + index.csv.

Example::

    python -m inpaint.data.masks.make_eval_masks --out masks/eval256 --per-bin 100 --size 256 --seed 0
    python -m inpaint.data.masks.make_eval_masks --out m --per-bin 10 --size 512 --generator lama_thick
    python -m inpaint.data.masks.make_eval_masks --out m --per-bin 10 --size 256 --config conf/masks/mixed.yaml

Read the set back with :func:`inpaint.data.masks.sets.load_mask_set`. The same arguments always give the same files.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from inpaint.cli import console_logging
from inpaint.data.masks.factory import PRESET_NAMES, build_mask_sampler
from inpaint.data.masks.generators import MaskSampler
from inpaint.data.masks.ratio import BIN_NAMES
from inpaint.data.masks.sets import write_eval_mask_set
from inpaint.io import describe_os_error, ensure_writable_dir

log = logging.getLogger("inpaint.data.masks.make_eval_masks")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m inpaint.data.masks.make_eval_masks", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--per-bin", type=int, required=True, help="masks per hole-ratio bin")
    p.add_argument("--size", type=int, required=True, help="square mask side in pixels")
    p.add_argument("--seed", type=int, default=0)
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--generator", default="mixed", choices=sorted(PRESET_NAMES), help="built-in generator (mixed)"
    )
    g.add_argument(
        "--config", default=None, help="a conf/masks YAML file; its 'train' generator spec is used"
    )
    p.add_argument(
        "--bins", nargs="*", default=None, help=f"subset of bins (names {', '.join(BIN_NAMES)} or 0..5)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 written, 1 bad input or unwritable output)."""
    args = build_parser().parse_args(argv)
    console_logging()
    try:
        sampler = _sampler(args.config, args.generator)
        ensure_writable_dir(args.out)  # fail before drawing hundreds of masks
        index = write_eval_mask_set(
            args.out, sampler, per_bin=args.per_bin, size=args.size, seed=args.seed, bins=args.bins
        )
    except OSError as e:
        print(f"error: cannot write the mask set to {args.out}: {describe_os_error(e)}", file=sys.stderr)
        return 1
    except (ValueError, RuntimeError) as e:  # bad sizes, bins or config; a bin the generator cannot reach
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(index)
    return 0


def _sampler(config: str | None, generator: str) -> MaskSampler:
    if not config:
        return build_mask_sampler(generator)
    from omegaconf import OmegaConf

    try:
        cfg = OmegaConf.load(config)
    except OSError as e:
        raise ValueError(f"cannot read --config {config}: {describe_os_error(e)}") from None
    if "train" not in cfg:
        raise ValueError(f"{config}: expected a masks config with a 'train' generator spec")
    return build_mask_sampler(cfg.train)


if __name__ == "__main__":
    sys.exit(main())
