"""What the command-line tools share (predict, export, the page, pack, make_eval_masks): their console logging,
and argument types that turn a bad value into argparse's one-line usage error (the Inpainter's option flags:
:meth:`inpaint.inference.InferenceOptions.add_arguments`).

The tools themselves only parse their arguments and call the library; nothing here reads or writes a file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["console_logging", "path_argument", "pixels", "strength"]


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not the stream of the first call.

    ``main()`` may run many times in one process (tests, notebooks) with ``sys.stderr`` swapped in between.
    """

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # noqa: ANN201 - logging's own attribute
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # noqa: ANN001 - set by StreamHandler.__init__, ignored
        pass


class _PlainFormatter(logging.Formatter):
    """``message`` for progress, ``warning: message`` (``error: ...``) for what a user must notice."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


def console_logging() -> None:
    """Plain lines at INFO on the current stderr, for the tools' progress and warnings (once per process)."""
    root = logging.getLogger()
    if not any(isinstance(h, _CurrentStderr) for h in root.handlers):
        handler = _CurrentStderr()
        handler.setFormatter(_PlainFormatter("%(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def path_argument(text: str) -> Path:
    """argparse type of the tools' paths: a non-empty path (``Path("")`` would be the working directory).

    >>> path_argument("photos/a.png").parts
    ('photos', 'a.png')
    >>> path_argument(" ")
    Traceback (most recent call last):
        ...
    argparse.ArgumentTypeError: must not be empty
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return Path(text)


def pixels(text: str) -> int:
    """argparse type: a positive whole number of pixels.

    >>> pixels("12")
    12
    >>> pixels("0")
    Traceback (most recent call last):
        ...
    argparse.ArgumentTypeError: must be a positive number of pixels, got '0'
    """
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of pixels, got {text!r}")
    return int(text)


def strength(text: str) -> float:
    """argparse type: a number from 0 to 1.

    >>> strength("0.75")
    0.75
    >>> strength("nan")
    Traceback (most recent call last):
        ...
    argparse.ArgumentTypeError: must be a number from 0 to 1, got 'nan'
    """
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}")
    return value
