"""Write a fixed, seeded evaluation mask set: N masks per NVIDIA hole-ratio bin, PNG (white = hole) + index.csv.

Example::

    python -m inpaint.data.make_eval_masks --out masks/eval256 --per-bin 100 --size 256 --seed 0
    python -m inpaint.data.make_eval_masks --out m --per-bin 10 --size 512 --generator lama_thick
    python -m inpaint.data.make_eval_masks --out m --per-bin 10 --size 256 --config conf/masks/mixed.yaml

Read the set back with :func:`inpaint.data.load_eval_masks`. The same arguments always give the same files.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from inpaint.data.mask_factory import PRESETS, build_mask_sampler
from inpaint.data.mask_sets import write_eval_mask_set
from inpaint.hole_ratio import BIN_NAMES

log = logging.getLogger("inpaint.data.make_eval_masks")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m inpaint.data.make_eval_masks", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--per-bin", type=int, required=True, help="masks per hole-ratio bin")
    p.add_argument("--size", type=int, required=True, help="square mask side in pixels")
    p.add_argument("--seed", type=int, default=0)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--generator", default="mixed", choices=sorted(PRESETS), help="built-in generator (mixed)")
    g.add_argument(
        "--config", default=None, help="a conf/masks YAML file; its 'train' generator spec is used"
    )
    p.add_argument(
        "--bins", nargs="*", default=None, help=f"subset of bins (names {', '.join(BIN_NAMES)} or 0..5)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.config:
        from omegaconf import OmegaConf

        cfg = OmegaConf.load(args.config)
        if "train" not in cfg:
            raise SystemExit(f"{args.config}: expected a masks config with a 'train' generator spec")
        sampler = build_mask_sampler(cfg.train)
    else:
        sampler = build_mask_sampler(args.generator)
    index = write_eval_mask_set(
        args.out, sampler, per_bin=args.per_bin, size=args.size, seed=args.seed, bins=args.bins
    )
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
