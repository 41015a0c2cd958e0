"""Write webdataset tar shards from any supported image source.

Example::

    python -m inpaint.data.pack --source places2 --root /data/places365 --split train --out /data/places-shards \\
        --max-count 10000 --max-size 1GB
    python -m inpaint.data.pack --source samples --split val --out shards/

Writes ``<out>/<prefix>-000000.tar``... (prefix defaults to the split) and updates ``<out>/index.json`` with the
sample count of each shard, which :class:`inpaint.data.shards.ShardStream` uses for epoch lengths. Images that fail
to decode are skipped with a warning and counted.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any

from inpaint.data.shards import write_shards
from inpaint.data.sources import SOURCES, build_records

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
        "--option",
        action="append",
        type=_parse_option,
        default=[],
        metavar="KEY=VALUE",
        help="source-specific data config key (e.g. variant=challenge, resolution=large, file_list=list.txt)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg: dict[str, Any] = {"source": args.source, "root": args.root, **dict(args.option)}
    records = build_records(cfg, args.split)
    if args.limit is not None:
        records = records[: args.limit]
    summary = write_shards(
        records,
        args.out,
        prefix=args.prefix or args.split,
        max_count=args.max_count,
        max_size=args.max_size,
        verify=not args.no_verify,
        overwrite=args.overwrite,
    )
    log.info(
        "wrote %d samples into %d shards in %s; skipped %d unreadable images",
        summary.written,
        len(summary.shards),
        args.out,
        summary.skipped,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
