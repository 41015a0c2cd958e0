"""Write webdataset tar shards from any supported image source.

Example::

    python -m inpaint.data.pack --source places2 --root /data/places365 --split train --out /data/places-shards \\
        --max-count 10000 --max-size 1GB
    python -m inpaint.data.pack --source samples --split val --out shards/

Writes ``<out>/<prefix>-000000.tar``... (prefix defaults to the split) and updates ``<out>/index.json`` with the
sample count of each shard, which :class:`inpaint.data.shards.ShardStream` uses for epoch lengths. Images that fail
to decode are skipped with a warning and counted.

Splits are those of ``data=<source>``: for ``--source folder`` without ``val_root`` the same stable hash-based
hold-out as training uses (:func:`inpaint.data.sources.holdout_split`, ``--val-fraction``, default 0.05), so train
and val shards never share an image as long as every split is packed with the same ``--val-fraction``. ``index.json``
records how each prefix was split, and packing another split of the same folder with a different fraction into the
same ``--out`` is refused. Bad arguments, a split that holds no image and existing shards are one ``error:`` line,
exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inpaint.cli import console_logging
from inpaint.data.shards import read_index, write_shards
from inpaint.data.sources import DEFAULT_VAL_FRACTION, SOURCES, DatasetLayoutError, build_records
from inpaint.io import describe_os_error

log = logging.getLogger("inpaint.data.pack")

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(text: str) -> int:
    """``"1GB"``, ``"500MiB"``, ``"1e9"`` -> bytes."""
    m = re.fullmatch(r"\s*([0-9.eE+]+)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).upper() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 1GB, 500MiB, 1e9)")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def _parse_option(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option expects key=value, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m inpaint.data.pack", description=__doc__.split("\n\n")[0])
    p.add_argument("--source", required=True, choices=SOURCES, help="dataset layout to read")
    p.add_argument("--root", default=None, help="dataset root (not needed for 'samples')")
    p.add_argument("--split", default="train", choices=("train", "val", "test"))
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--prefix", default=None, help="shard name prefix (default: the split)")
    p.add_argument("--max-count", type=int, default=10_000, help="samples per shard at most (default 10000)")
    p.add_argument(
        "--max-size", type=parse_size, default=parse_size("1GB"), help="bytes per shard at most (1GB)"
    )
    p.add_argument("--limit", type=int, default=None, help="pack only the first N images")
    p.add_argument("--no-verify", action="store_true", help="do not decode images before packing")
    p.add_argument("--overwrite", action="store_true", help="replace existing <prefix>-*.tar in --out")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help=f"folder source without val_root: share of the images held out for val/test by a stable hash of "
        f"each path, as data=folder does (default {DEFAULT_VAL_FRACTION}); use the same value for every split",
    )
    p.add_argument(
        "--option",
        action="append",
        type=_parse_option,
        default=[],
        metavar="KEY=VALUE",
        help="source-specific data config key (e.g. variant=challenge, resolution=large, file_list=list.txt)",
    )
    return p


class PackError(ValueError):
    """The requested split cannot be packed as asked (it would overlap another split already in --out)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 packed, 1 error)."""
    args = build_parser().parse_args(argv)
    console_logging()
    try:
        summary = _pack(args)
    except (DatasetLayoutError, PackError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: cannot write shards to {args.out}: {describe_os_error(e)}", file=sys.stderr)
        return 1
    log.info(
        "wrote %d samples into %d shards in %s; skipped %d unreadable images",
        summary.written,
        len(summary.shards),
        args.out,
        summary.skipped,
    )
    return 0


def _pack(args: argparse.Namespace) -> Any:
    cfg: dict[str, Any] = {"source": args.source, "root": args.root, **dict(args.option)}
    if args.val_fraction is not None:
        cfg["val_fraction"] = args.val_fraction
    prefix = args.prefix or args.split
    info = split_info(cfg, args.split)
    check_no_overlap(args.out, prefix, info)
    records = build_records(cfg, args.split)
    if args.limit is not None:
        records = records[: args.limit]
    return write_shards(
        records,
        args.out,
        prefix=prefix,
        max_count=args.max_count,
        max_size=args.max_size,
        verify=not args.no_verify,
        overwrite=args.overwrite,
        split_info=info,
    )


def split_info(cfg: dict[str, Any], split: str) -> dict[str, Any]:
    """What decides which images a split holds: source, root, split and, for a folder hold-out, the fraction."""
    info: dict[str, Any] = {"source": cfg["source"], "root": _abs(cfg.get("root")), "split": split}
    if cfg["source"] == "folder" and not cfg.get("val_root"):
        fraction = float(cfg.get("val_fraction", DEFAULT_VAL_FRACTION))
        if not 0.0 < fraction < 1.0:
            raise PackError(f"--val-fraction must be in (0, 1), got {fraction}")
        info["val_fraction"] = fraction
    return info


def check_no_overlap(out: str, prefix: str, info: dict[str, Any]) -> None:
    """Refuse a hold-out split whose fraction differs from that of another split of the same folder in ``out``:
    hash-based splits with different fractions share images."""
    if "val_fraction" not in info:
        return
    for other_prefix, other in read_index(out).get("splits", {}).items():
        same_data = other.get("source") == info["source"] and other.get("root") == info["root"]
        if other_prefix == prefix or not same_data or "val_fraction" not in other:
            continue
        one_is_train = (other.get("split") == "train") != (info["split"] == "train")
        if one_is_train and other["val_fraction"] != info["val_fraction"]:
            raise PackError(
                f"{out} holds {other_prefix} shards of {info['root']} packed with --val-fraction "
                f"{other['val_fraction']}; packing {info['split']} with {info['val_fraction']} would put some images "
                f"in both splits. Pack every split with the same --val-fraction (repack {other_prefix} with "
                f"--val-fraction {info['val_fraction']} --overwrite, or pack {info['split']} with "
                f"{other['val_fraction']})."
            )


def _abs(root: Any) -> str | None:
    return None if root in (None, "") else str(Path(str(root)).expanduser().resolve())


if __name__ == "__main__":
    sys.exit(main())
