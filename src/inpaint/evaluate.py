"""Evaluate a checkpoint: ``python -m inpaint.evaluate ckpt_path=... [data=... masks=...]`` (console script
``inpaint-evaluate``), a Hydra app over ``conf/evaluate.yaml``. Only the command line lives here; from Python the same
is :mod:`inpaint.evaluation`::

    from inpaint import Inpainter
    from inpaint.evaluation import evaluate

    report = evaluate(Inpainter.from_checkpoint("last.ckpt"), batches)  # batches: (image, mask) or dicts
    report.save("eval/")          # metrics.json, metrics.csv, per_image.csv, metrics.md, examples_*.png
    print(report.to_markdown())
"""

from __future__ import annotations

import logging
import os
import sys

from inpaint.config import CONF_DIR

log = logging.getLogger("inpaint.evaluate")


def main() -> None:
    """Console entry point: evaluate, print the Markdown table; a user error is one line and exit status 1
    (``HYDRA_FULL_ERROR=1`` shows the traceback instead)."""
    import hydra
    from omegaconf import DictConfig
    from omegaconf.errors import OmegaConfBaseException

    from inpaint.checkpoint import CheckpointError
    from inpaint.evaluation import OutputDirError, run

    user_errors = (CheckpointError, FileNotFoundError, OutputDirError, ValueError, OmegaConfBaseException)

    def app(cfg: DictConfig) -> None:
        try:
            print(run(cfg).to_markdown())
        except user_errors as e:
            if _full_error():
                raise
            log.error(
                "%s", _one_line(e)
            )  # a user error, not a bug: one clear line instead of Hydra's traceback
            raise SystemExit(1) from None

    try:
        sys.argv[1:] = run_dir_follows_output_dir(sys.argv[1:])
    except (OutputDirError, OverrideError) as e:
        if _full_error():
            raise
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")(app)()


class OverrideError(ValueError):
    """A ``key=value`` argument that Hydra's override grammar cannot read (unquoted non-ASCII letters, brackets...)."""


def run_dir_follows_output_dir(args: list[str]) -> list[str]:
    """The command line with ``hydra.run.dir`` set to the ``output_dir=...`` override, if there is one and no run
    directory is given: Hydra's log and config then go where the report goes, and nothing is created under
    ``outputs/evaluate/`` in the working directory. The folder is checked first, so that an unwritable one is one
    line (:class:`~inpaint.evaluation.OutputDirError`), not Hydra's traceback.

    Raises:
        OverrideError: an argument Hydra cannot parse; the message shows it quoted the way Hydra reads it.
        OutputDirError: ``output_dir`` cannot be created or written.
    """
    found = _parse_overrides(args)
    if "output_dir" not in found or "hydra.run.dir" in found:
        return args
    text, value = found["output_dir"]
    if isinstance(value, str) and "${" not in value:
        from inpaint.evaluation.cli import _output_error
        from inpaint.io import ensure_writable_dir

        try:
            ensure_writable_dir(value)
        except OSError as e:
            raise _output_error(value, e) from None
    return [*args, f"hydra.run.dir={text}"]


def _parse_overrides(args: list[str]) -> dict[str, tuple[str, object]]:
    """``key -> (value as typed, parsed value)`` of the ``key=value`` arguments (Hydra's flags are skipped)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    found: dict[str, tuple[str, object]] = {}
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue  # --multirun, --cfg job ...: Hydra's own flags and their values
        try:
            (override,) = parser.parse_overrides([arg])
        except Exception:  # Hydra's grammar errors are of several types, all with a lexer's message
            key, _, value = arg.partition("=")
            quoted = value.replace("\\", "\\\\").replace("'", "\\'")
            raise OverrideError(
                f"cannot read the argument {arg!r}: Hydra's override grammar reads values with non-ASCII letters "
                f"or special characters (quotes, brackets, ...) only in quotes; write it as \"{key}='{quoted}'\""
            ) from None
        found[override.key_or_group] = (arg.split("=", 1)[1], override.value())
    return found


def _full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")


def _one_line(err: BaseException) -> str:
    """The message of a user error as one line."""
    from omegaconf.errors import MissingMandatoryValue

    key = getattr(err, "full_key", None)
    if isinstance(err, MissingMandatoryValue) and key:
        return f"{key} is required and has no value: set it on the command line ({key}=...)"
    # OmegaConf appends "full_key: ... object_type=..." lines to its messages; the first line says it all.
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


if __name__ == "__main__":
    main()
