"""Loggers that keep a run's history across resumes and keep training alive without a network or an API key."""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from pathlib import Path
from typing import Any

from pytorch_lightning import loggers as pl_loggers
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities import rank_zero_only

from inpaint.io import write_text_atomic

log = logging.getLogger(__name__)


class _ContinuingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing ``metrics.csv`` is continued (its header adopted, new rows
    appended) where Lightning's deletes it: a run resumed in its own directory keeps the rows of its first part."""

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if path.is_file():
            with open(path, newline="") as f:
                self.metrics_keys = next(csv.reader(f), [])

    def discard_from(self, step: int) -> int:
        """Drop the rows logged at optimiser step ``step`` or later (the steps a resumed run trains again), in one
        atomic rewrite. Returns how many rows were dropped."""
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return 0
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        kept = [r for r in rows if not r.get("step") or int(float(r["step"])) < step]
        if len(kept) < len(rows):
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=self.metrics_keys, lineterminator="\n")
            writer.writeheader()
            writer.writerows(kept)
            write_text_atomic(path, buf.getvalue())
        return len(rows) - len(kept)


class CSVLogger(pl_loggers.CSVLogger):
    """Lightning's ``CSVLogger`` whose ``metrics.csv`` survives a resume in the same directory.

    Lightning's deletes an existing ``metrics.csv`` when a logger starts in a non-empty directory, so every preempted
    and resumed run would lose its curves. This one appends; :meth:`continue_from` first drops rows from the steps the
    resumed run repeats (those logged after its checkpoint was written), so each step appears once.
    """

    @property
    @rank_zero_experiment
    def experiment(self) -> _ContinuingWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment

    @rank_zero_only
    def continue_from(self, step: int) -> None:
        """Prepare ``metrics.csv`` for a run resumed at optimiser step ``step``."""
        dropped = self.experiment.discard_from(step)
        if dropped:
            log.info(
                "%s: dropped %d rows logged after the checkpoint (step >= %d)", self.log_dir, dropped, step
            )


def _wandb_has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        import netrc

        rc = netrc.netrc(os.environ.get("NETRC") or os.path.expanduser("~/.netrc"))
        host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
        return rc.authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


# W&B names each run's folder <save_dir>/wandb/[offline-]run-<YYYYmmdd_HHMMSS>-<run id>.
_WANDB_RUN_DIR = re.compile(r"^(?:offline-)?run-(\d{8}_\d{6})-([a-z0-9]+)$")


def _earlier_run_id(save_dir: str) -> str | None:
    """The id of the newest W&B run already logged under ``save_dir``, if any."""
    root = Path(save_dir) / "wandb"
    found = [m for p in root.glob("*run-*") if p.is_dir() and (m := _WANDB_RUN_DIR.match(p.name))]
    return max(found, key=lambda m: m.group(1)).group(2) if found else None


def wandb_logger(
    project: str = "inpaint",
    group: str | None = None,
    name: str | None = None,
    save_dir: str = ".",
    mode: str | None = None,
    log_model: bool | str = False,
    tags: list[str] | None = None,
    init_timeout: float = 60.0,
    **kwargs: Any,
) -> WandbLogger:
    """A :class:`WandbLogger` that never blocks training on W&B's server.

    ``mode`` is ``online``, ``offline`` or ``disabled``; ``None`` means ``$WANDB_MODE`` or, when unset, online if an API
    key is configured and offline (with a warning; ``wandb sync <save_dir>/wandb/offline-run-*`` uploads later)
    otherwise. ``log_model`` uploads checkpoints as artifacts (``all`` / ``True``; needs online mode).

    A run directory that already holds a W&B run (a preempted run, resumed or requeued in its own directory) continues
    that W&B run (same id; Lightning asks W&B to resume a known id) instead of starting a second one.
    """
    chosen = mode or os.environ.get("WANDB_MODE")
    if chosen is None:
        if _wandb_has_api_key():
            chosen = "online"
        else:
            chosen = "offline"
            log.warning(
                "W&B: no API key found (WANDB_API_KEY or ~/.netrc): logging OFFLINE to %s/wandb; "
                "upload later with `wandb sync`.",
                save_dir,
            )
    if chosen != "online" and log_model:
        log.warning("W&B: log_model=%r needs online mode; checkpoints stay local only.", log_model)
        log_model = False
    os.makedirs(save_dir, exist_ok=True)
    import wandb

    settings = wandb.Settings(init_timeout=init_timeout, silent=True)
    earlier = _earlier_run_id(save_dir)
    if earlier and "id" not in kwargs:
        log.info("W&B: continuing run %s of %s", earlier, save_dir)
        kwargs["id"] = earlier
    logger = WandbLogger(
        project=project,
        group=group,
        name=name,
        save_dir=save_dir,
        mode=chosen,
        log_model=log_model,
        tags=tags,
        settings=settings,
        **kwargs,
    )
    # Lightning always passes W&B an `anonymous` setting, which W&B has retired and warns about at every run.
    logger._wandb_init.pop("anonymous", None)
    return logger
