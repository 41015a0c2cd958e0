"""Logger factories that keep training alive without a network or an API key."""

from __future__ import annotations

import logging
import os
from typing import Any

from pytorch_lightning.loggers import WandbLogger

log = logging.getLogger(__name__)


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
    return WandbLogger(
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
