"""Small Hydra helpers shared by the entry points: config tree, callbacks and loggers from config groups."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from inpaint.checkpoint import atomic_output

log = logging.getLogger(__name__)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def print_config_tree(cfg: DictConfig, save_to: Path | None = None) -> str:
    """Print the resolved config as a tree (rich) and optionally save it as text; returns the text."""
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("config", guide_style="dim")
    first = ["data", "masks", "model", "loss", "trainer", "callbacks", "logger", "paths"]
    # A composed config (tests, the compose API) may carry Hydra's own node; runs under @hydra.main do not.
    keys = [k for k in first if k in cfg] + [k for k in cfg if k not in first and k != "hydra"]
    scalars = {}
    for key in keys:
        node = cfg[key]
        if isinstance(node, DictConfig):
            tree.add(str(key)).add(Syntax(OmegaConf.to_yaml(node, resolve=True), "yaml", theme="ansi_dark"))
        else:
            scalars[key] = node
    if scalars:
        tree.add("run").add(Syntax(OmegaConf.to_yaml(OmegaConf.create(scalars)), "yaml", theme="ansi_dark"))
    Console().print(tree)
    text = OmegaConf.to_yaml(run_config(cfg))
    if save_to is not None:
        write_text_atomic(save_to, text)
    return text


def run_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain containers, without Hydra's own node."""
    out: dict[str, Any] = {}
    for key in cfg:
        if key != "hydra":
            node = cfg[key]
            out[str(key)] = (
                OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
            )
    return out


def instantiate_list(group: Mapping[str, Any] | None) -> list[Any]:
    """Instantiate every entry of a config group that has a ``_target_`` (null entries switch one off)."""
    objects: list[Any] = []
    for name, node in (group or {}).items():
        if isinstance(node, Mapping) and "_target_" in node:
            log.info("Instantiating %s <%s>", name, node["_target_"])
            objects.append(hydra.utils.instantiate(node))
    return objects
