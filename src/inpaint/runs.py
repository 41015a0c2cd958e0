"""Where training runs live, and which checkpoint a tool uses when none is named.

Every run writes ``<run dir>/checkpoints/last.ckpt``; runs of one task are sibling folders (``outputs/<task>/runs/<time>``).
:func:`last_checkpoints` is the one search over them, newest first. Two policies are built on it:

- the default model of evaluation, the page and the notebook: :func:`find_latest_checkpoint`, the newest run of the
  default experiment (``outputs/train/runs``), found from wherever the tool starts (:func:`project_root`);
- resuming with ``ckpt_path=last``: the newest sibling run of the new run (``inpaint.training.run.resolve_ckpt_path``).

Only the file system is read here: no torch, nothing is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DEFAULT_RUNS",
    "LAST_CHECKPOINT",
    "PROJECT_DIR_ENV",
    "find_latest_checkpoint",
    "last_checkpoints",
    "project_root",
]

LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"  # inside a run's directory, as training writes it
PROJECT_DIR_ENV = "INPAINT_PROJECT_DIR"
# Where `python -m inpaint.train` (the default experiment, task_name=train) keeps its runs, relative to outputs/. The
# installation check (+experiment=smoke) and sweeps write elsewhere, so their models never become the default.
DEFAULT_RUNS = "train/runs"


def last_checkpoints(
    runs: str | os.PathLike[str], *, nested: bool = False, exclude: str | os.PathLike[str] | None = None
) -> list[Path]:
    """The ``last.ckpt`` of every run in the folder ``runs``, newest (by the time it was written) first.

    Args:
        runs: a folder of run directories (``<runs>/<run>/checkpoints/last.ckpt``).
        nested: search run directories at any depth below ``runs`` instead (every experiment under ``outputs/``).
        exclude: leave out the checkpoints inside this run directory (the run that is searching).

    >>> import os, tempfile
    >>> runs = Path(tempfile.mkdtemp())
    >>> for age, run in enumerate(["b", "a", "c"]):
    ...     (runs / run / "checkpoints").mkdir(parents=True)
    ...     (runs / run / LAST_CHECKPOINT).touch()
    ...     os.utime(runs / run / LAST_CHECKPOINT, (1000 - age, 1000 - age))  # b newest, c oldest
    >>> [p.parts[-3] for p in last_checkpoints(runs)]
    ['b', 'a', 'c']
    >>> [p.parts[-3] for p in last_checkpoints(runs, exclude=runs / "b")]
    ['a', 'c']
    >>> last_checkpoints(runs / "missing")
    []
    """
    pattern = f"{'**' if nested else '*'}/{LAST_CHECKPOINT.as_posix()}"
    skip = Path(exclude).resolve() if exclude is not None else None
    found = [
        p
        for p in Path(runs).glob(pattern)
        if p.is_file() and (skip is None or skip not in p.resolve().parents)
    ]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The project directory whose ``outputs/`` holds the runs, wherever the caller runs (a notebook's kernel runs
    in ``notebooks/``): ``$INPAINT_PROJECT_DIR`` if set, else the nearest directory at or above ``start`` (default:
    the working directory) that holds ``pyproject.toml`` and ``conf/``, else ``start`` itself."""
    if os.environ.get(PROJECT_DIR_ENV):
        return Path(os.environ[PROJECT_DIR_ENV]).expanduser().resolve()
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "conf").is_dir():
            return folder
    return here


def find_latest_checkpoint(root: str | os.PathLike[str] | None = None) -> Path:
    """The newest ``last.ckpt`` of the default experiment: ``<root>/train/runs/*/checkpoints/last.ckpt``, with
    ``root`` the :func:`project_root`'s ``outputs/`` by default (what ``make train`` writes).

    The default model of ``python -m inpaint.evaluate`` without ``ckpt_path``, ``python -m inpaint.app`` without
    ``--ckpt`` and the notebook. Other experiments (``+experiment=smoke``: the installation check) and multiruns are
    never picked: name them.

    Raises:
        FileNotFoundError: no such checkpoint; the message says where it looked, names a checkpoint of another
            experiment if there is one, and how to get or choose one.
    """
    outputs = Path(root) if root is not None else project_root() / "outputs"
    found = last_checkpoints(outputs / DEFAULT_RUNS)
    if found:
        return found[0]
    others = last_checkpoints(outputs, nested=True)
    other = (
        f"; {len(others)} checkpoint(s) of other experiments are not used by default, the newest: {others[0]} "
        "(name it to use it)"
        if others
        else ""
    )
    raise FileNotFoundError(
        f"no checkpoint of the default experiment ({DEFAULT_RUNS}/*/{LAST_CHECKPOINT.as_posix()}) under "
        f"{outputs.resolve()}{other}. Train one with `make train`, or name one (evaluate ckpt_path=<file>, "
        f"app --ckpt <file>), or set ${PROJECT_DIR_ENV} to the project directory"
    )
