"""Configuration helpers shared by the entry points: where the configs are, plain containers, the config tree, and
objects built from config groups.

Every object of a run comes from a group in ``conf/`` (shipped inside the package as ``inpaint/conf``), composed by
Hydra; these helpers are the only place that touches OmegaConf containers directly.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from inpaint.io import write_text_atomic

__all__ = [
    "CONF_DIR",
    "ConfigError",
    "check_arg_types",
    "compose",
    "instantiate_list",
    "print_config_tree",
    "to_plain",
]

log = logging.getLogger(__name__)

# Absolute, so that console scripts and any working directory find the configs (a relative config path would be
# resolved as a Python package, which conf/ is not).
CONF_DIR = Path(__file__).resolve().parent / "conf"


# Config nodes whose values the Python code owns, offered to Hydra (its ConfigStore) so that the YAML files include
# them by name instead of restating them: `loss/weights: paper` in conf/loss/*.yaml is inpaint.losses.PAPER_WEIGHTS.
# Stored on import: every composition (compose below, the hydra.main apps, the tests) imports this module for CONF_DIR.
def _store_python_defaults() -> None:
    from hydra.core.config_store import ConfigStore

    from inpaint.losses.inpainting import PAPER_WEIGHTS

    ConfigStore.instance().store(group="loss/weights", name="paper", node=dict(PAPER_WEIGHTS))


def cpu_precision() -> str:
    """``${cpu_precision:}`` in a config: ``bf16-mixed`` where the CPU computes bfloat16 natively (AVX512-BF16 or AMX,
    about 2x faster steps than float32), else ``32`` (emulated bfloat16 measured 8x slower than float32 on an
    AVX2-only CPU)."""
    import torch

    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return "bf16-mixed" if native else "32"


_store_python_defaults()
OmegaConf.register_new_resolver("cpu_precision", cpu_precision, replace=True)


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key and what is expected."""


def import_target(target: str, what: str) -> Any:
    """The object a ``_target_`` names (``package.module.Name``), or a ConfigError saying what could not be found."""
    module_name, _, name = str(target).rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(
            f"{what}: cannot import _target_ {target!r} ({e}); is its module on PYTHONPATH?"
        ) from None


def accepted_keys(cls: type[Any]) -> set[str] | None:
    """The keyword arguments ``cls`` takes (None: any, it has ``**kwargs``, or Python cannot tell, as for some
    built-in types: their constructor then checks its arguments itself)."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return {n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL}


def construct(cls: type[Any], keys: Mapping[str, Any], what: str, reserved: Collection[str] = ()) -> Any:
    """``cls(**keys)`` with lists as tuples: the one way a ``_target_`` of a source or generator is built. A key
    that ``cls`` does not take, or one of ``reserved`` (arguments that are set otherwise), is a ConfigError naming
    the ones it takes, as is an error of its constructor."""
    allowed = accepted_keys(cls)
    if allowed is not None:
        allowed -= set(reserved)
    unknown = set(keys) - allowed if allowed is not None else set(keys) & set(reserved)
    if unknown:
        raise ConfigError(f"{what} has unknown fields {sorted(unknown)}; allowed: {sorted(allowed or ())}")
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in keys.items()})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what}: {e}") from None


def check_arg_types(fn: Any, values: Mapping[str, Any], prefix: str) -> None:
    """Check the simple-typed values of a config group against ``fn``'s type hints (a constructor), so that e.g.
    ``trainer.max_steps=abc`` or ``model.lr=abc`` fails with one line naming the key instead of a ``TypeError`` from
    deep inside. Keys without a plain ``int | float | bool | str | None`` hint are left to ``fn``.

    >>> def f(lr: float, steps: int | None = None): ...
    >>> check_arg_types(f, {"lr": "abc"}, "model")
    Traceback (most recent call last):
    ...
    inpaint.config.ConfigError: model.lr must be float, got 'abc'
    """
    import typing

    hints = typing.get_type_hints(fn)
    simple = {int, float, bool, str, type(None)}
    for key, value in values.items():
        hint = hints.get(str(key))
        union = typing.get_origin(hint) in (typing.Union, type(int | None))
        allowed = set(typing.get_args(hint)) if union else {hint}
        if hint is None or not allowed <= simple:
            continue
        if not any(_is_a(value, t) for t in allowed):
            names = " or ".join(sorted("null" if t is type(None) else t.__name__ for t in allowed))
            raise ConfigError(f"{prefix}.{key} must be {names}, got {value!r}")


def _is_a(value: Any, t: type) -> bool:
    if t is float:  # an integer is a fine float; a bool is neither
        return isinstance(value, int | float) and not isinstance(value, bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, t)


def to_plain(cfg: Any, what: str = "config") -> Any:
    """OmegaConf containers, mappings and sequences as plain dicts and lists (interpolations resolved, Hydra's own
    ``hydra`` node left out); anything else is returned as a deep copy.

    Plain containers keep checkpoints loadable with ``torch.load(weights_only=True)`` and let constructors see what
    they were given.

    Raises:
        ValueError: a required value (``???``) is referenced but unset, naming the key (e.g. ``masks.root``).

    >>> to_plain({"a": {"b": [1, 2]}})
    {'a': {'b': [1, 2]}}
    """
    from omegaconf import DictConfig, ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(cfg, DictConfig) and "hydra" in cfg:  # a composed run config: its Hydra node is not ours
        return {str(k): to_plain(cfg[k], what) for k in cfg if k != "hydra"}
    if isinstance(cfg, DictConfig | ListConfig):
        try:
            cfg = OmegaConf.to_container(cfg, resolve=True)
        except OmegaConfBaseException as err:
            raise ValueError(f"{what}: {err} (set the missing value, e.g. on the command line)") from err
    if isinstance(cfg, Mapping):
        return {str(k): to_plain(v, what) for k, v in cfg.items() if k != "hydra"}
    if isinstance(cfg, list | tuple):
        return [to_plain(v, what) for v in cfg]
    return copy.deepcopy(cfg)


def compose(config_name: str, overrides: Sequence[str] = ()) -> Any:
    """``conf/<config_name>.yaml`` composed with Hydra overrides, outside a Hydra app (notebooks, scripts, tests)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def print_config_tree(cfg: Any, save_to: Path | None = None) -> str:
    """Print the resolved config as a tree (rich) and optionally save it as YAML text; returns the text."""
    from omegaconf import DictConfig, OmegaConf
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.tree import Tree

    # Long values (paths) wrap instead of being cut with an ellipsis: the console is often narrower than a path.
    tree = Tree("config", guide_style="dim")
    first = ["data", "masks", "model", "loss", "trainer", "callbacks", "logger", "paths"]
    keys = [k for k in first if k in cfg] + [k for k in cfg if k not in first and k != "hydra"]
    scalars = {}
    for key in keys:
        node = cfg[key]
        if isinstance(node, DictConfig):
            tree.add(str(key)).add(
                Syntax(OmegaConf.to_yaml(node, resolve=True), "yaml", theme="ansi_dark", word_wrap=True)
            )
        else:
            scalars[key] = node
    if scalars:
        tree.add("run").add(
            Syntax(OmegaConf.to_yaml(OmegaConf.create(scalars)), "yaml", theme="ansi_dark", word_wrap=True)
        )
    Console().print(tree)
    text = OmegaConf.to_yaml(to_plain(cfg))
    if save_to is not None:
        write_text_atomic(save_to, text)
    return text


def instantiate_list(group: Mapping[str, Any] | None) -> list[Any]:
    """Instantiate every entry of a config group that has a ``_target_`` (null entries switch one off)."""
    import hydra

    objects: list[Any] = []
    for name, node in (group or {}).items():
        if isinstance(node, Mapping) and "_target_" in node:
            log.info("Instantiating %s <%s>", name, node["_target_"])
            objects.append(hydra.utils.instantiate(node))
    return objects
