"""Safe loading of model checkpoints for inference, and the weights-only export format.

A checkpoint from someone else is data, not code. This module therefore

- reads Lightning ``.ckpt`` files only with ``torch.load(weights_only=True)``: a pickle that names any callable or
  class outside torch's tensor/primitive allow-list is refused with :class:`UnsafeCheckpointError` before anything
  in it runs;
- reads the exported ``.safetensors`` files (tensors + JSON metadata, no pickle at all);
- never imports or instantiates a class named inside a checkpoint: the model's Hydra-style ``_target_`` string is
  looked up in :data:`ALLOWED_MODEL_TARGETS` (this package's own network classes) and everything else is refused.
  Constructor arguments must be plain numbers, strings, booleans or lists of them.

Expected layouts:

- Lightning: ``ckpt["state_dict"]`` holds the U-Net under the prefix ``net.`` (or ``model.``; other prefixes such
  as ``loss.`` are ignored) and ``ckpt["hyper_parameters"]["net"]`` (or ``["model"]``) is its config
  ``{"_target_": "inpaint.models.PConvUNet", "levels": 7, ...}``; a missing ``_target_`` means PConvUNet.
- Export (:func:`save_weights`): safetensors of the U-Net state dict (no prefix) with metadata
  ``{"format": "inpaint-weights/1", "model": "<JSON of the model config>"}``.
"""

from __future__ import annotations

import inspect
import json
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inpaint.io import atomic_output

__all__ = [
    "ALLOWED_MODEL_TARGETS",
    "EXPORT_FORMAT",
    "CheckpointError",
    "UnsafeCheckpointError",
    "build_model",
    "load_checkpoint",
    "load_model",
    "load_net_state_dict",
    "model_config",
    "model_state_dict",
    "save_weights",
]

EXPORT_FORMAT = "inpaint-weights/1"
SAFETENSORS_SUFFIXES = (".safetensors", ".st")

# The only `_target_` strings a checkpoint may name; each maps to (module, attribute) of this package. Strings are
# compared exactly: nothing else is imported, whatever the checkpoint says.
ALLOWED_MODEL_TARGETS: Mapping[str, tuple[str, str]] = {
    "inpaint.models.PConvUNet": ("inpaint.models", "PConvUNet"),
    "inpaint.models.pconv_unet.PConvUNet": ("inpaint.models", "PConvUNet"),
}

_PRIMITIVES = (bool, int, float, str, type(None))
# Phrases of torch's weights-only unpickler that mean "this pickle names code or a class" (as opposed to junk bytes).
_REFUSALS = ("GLOBAL", "global", "Can only create new object", "Can only build", "reduce")
# Where a Lightning checkpoint keeps the U-Net: hyper-parameter key and the matching state-dict prefix, in the order
# tried. `inpaint.training.module.InpaintingModule` stores it as `net`; `model` is accepted as well.
NET_KEYS: tuple[str, ...] = ("net", "model")


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or lacks what inference needs."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint tries to run code on load or names a class outside the allow-list; it was not loaded."""


def _is_safetensors(path: Path) -> bool:
    if path.suffix in SAFETENSORS_SUFFIXES:
        return True
    # Also recognise a renamed safetensors file: 8-byte little-endian header length followed by '{'.
    with path.open("rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and not zipfile.is_zipfile(path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint without executing anything stored in it.

    Args:
        path: a Lightning ``.ckpt`` / torch file (read with ``weights_only=True``) or an exported ``.safetensors``.

    Returns:
        For torch files, the stored dict. For safetensors, ``{"state_dict": tensors, "hyper_parameters": {"net":
        config}, "format": ...}`` so both kinds go through :func:`model_config` / :func:`model_state_dict`.

    Raises:
        CheckpointError: missing file, not a checkpoint, truncated, or not a dict.
        UnsafeCheckpointError: the pickle references a global that is not a tensor/primitive type.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"cannot read checkpoint {path}: empty file (0 bytes)")
    if _is_safetensors(path):
        return _load_safetensors(path)
    if _is_export_program(path):
        raise CheckpointError(
            f"{path} is a torch.export program (.pt2), not a checkpoint: run it with "
            f"torch.export.load('{path}').module()(image, mask), or give Inpainter.from_checkpoint / inpaint.predict the "
            f".safetensors export that `python -m inpaint.export` writes next to it"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise _unpickling_error(path, str(e)) from None
    except Exception as e:  # the parser fails in many ways on junk (IndexError, EOFError, RuntimeError, ...)
        raise CheckpointError(
            f"cannot read checkpoint {path} (not a torch/Lightning checkpoint, or truncated?): "
            f"{type(e).__name__}: {_without_torch_advice(str(e))}"
        ) from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(ckpt).__name__}, expected a dict")
    return ckpt


# torch's weights-only refusal names the blocked object as "GLOBAL <module>.<name>".
_GLOBAL_RE = re.compile(r"GLOBAL\s+([A-Za-z_][\w.]*\w)")
# Sentences of torch's messages that tell the reader how to switch the safety check off; never shown.
_TORCH_ADVICE = (
    "weights_only",
    "safe_globals",
    "allowlist",
    "trusted source",
    "trust the source",
    "two options",
)


def _without_torch_advice(message: str) -> str:
    """The sentences of a torch error message that say what happened, without its advice to bypass the check."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", " ".join(message.split()))  # one line, no terminal colours
    sentences = re.split(r"(?<=[.!?])\s+", text)
    kept = [s for s in sentences if s and not any(a in s for a in _TORCH_ADVICE) and "http" not in s]
    return " ".join(kept)[:500]


def _unpickling_error(path: Path, message: str) -> CheckpointError:
    found = _GLOBAL_RE.search(message)
    detail = (
        message.split("WeightsUnpickler error:", 1)[-1] if "WeightsUnpickler error:" in message else message
    )
    detail = _without_torch_advice(detail)
    if found is None and not any(word in detail for word in _REFUSALS):
        return CheckpointError(f"cannot read checkpoint {path} (not a torch/Lightning checkpoint?): {detail}")
    what = f"the Python object {found.group(1)}" if found else f"an object torch refused ({detail})"
    return UnsafeCheckpointError(
        f"refusing to load {path}: its pickle names {what}, which is neither a tensor nor plain data and could run "
        f"code when unpickled. inpaint loads checkpoints only with torch.load(weights_only=True) and offers no way "
        f"around that. If the file is your own, load it once in a trusted environment, save only its tensors and "
        f"plain hyper-parameters ({{'state_dict': ..., 'hyper_parameters': ...}}) with torch.save, and use that "
        f"file (or its `python -m inpaint.export` .safetensors) instead."
    )


def _is_export_program(path: Path) -> bool:
    if path.suffix == ".pt2":
        return True
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/archive_format") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _load_safetensors(path: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read safetensors file {path}: {e}") from None
    if meta.get("format") != EXPORT_FORMAT or "model" not in meta:
        raise CheckpointError(
            f"{path} is a safetensors file but not an inpaint export (metadata format={meta.get('format')!r}, "
            f"expected {EXPORT_FORMAT!r} with a 'model' entry); write one with `python -m inpaint.export`"
        )
    try:
        config = json.loads(meta["model"])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: the 'model' metadata is not valid JSON: {e}") from None
    return {"state_dict": tensors, "hyper_parameters": {"net": config}, "format": EXPORT_FORMAT}


def _net_key(ckpt: Mapping[str, Any]) -> str | None:
    hp = ckpt.get("hyper_parameters")
    if not isinstance(hp, Mapping):
        return None
    return next((k for k in NET_KEYS if isinstance(hp.get(k), Mapping)), None)


def model_config(ckpt: Mapping[str, Any], source: str = "checkpoint") -> dict[str, Any]:
    """The validated model config ``{"_target_": ..., **kwargs}`` from ``ckpt["hyper_parameters"]["net"|"model"]``.

    Raises:
        CheckpointError: no model config, or a kwarg that is not a primitive (nested configs are not followed).
        UnsafeCheckpointError: ``_target_`` not in :data:`ALLOWED_MODEL_TARGETS`.
    """
    key = _net_key(ckpt)
    if key is None:
        raise CheckpointError(
            f"{source} has no model configuration: expected ckpt['hyper_parameters'][{' or '.join(map(repr, NET_KEYS))}]"
            f" to be a dict like {{'_target_': 'inpaint.models.PConvUNet', 'levels': 7}}"
        )
    config = ckpt["hyper_parameters"][key]
    target = config.get("_target_", "inpaint.models.PConvUNet")
    if target not in ALLOWED_MODEL_TARGETS:
        raise UnsafeCheckpointError(
            f"{source} asks for model class {target!r}, which is not on the allow-list of inpaint's own models "
            f"({', '.join(sorted(ALLOWED_MODEL_TARGETS))}); refusing to import or instantiate it"
        )
    out: dict[str, Any] = {"_target_": target}
    for key, value in config.items():
        if key == "_target_":
            continue
        ok = isinstance(value, _PRIMITIVES) or (
            isinstance(value, list | tuple) and all(isinstance(v, _PRIMITIVES) for v in value)
        )
        if not ok or not isinstance(key, str):
            raise CheckpointError(
                f"{source}: model argument {key!r} is a {type(value).__name__}; only numbers, strings, booleans and "
                f"lists of them are accepted (nested configs and `_target_`s are not followed)"
            )
        out[key] = value
    return out


def _model_class(target: str) -> type[nn.Module]:
    import importlib

    module_name, attr = ALLOWED_MODEL_TARGETS[target]
    cls = getattr(importlib.import_module(module_name), attr)
    assert isinstance(cls, type) and issubclass(cls, nn.Module)
    return cls


def build_model(config: Mapping[str, Any], source: str = "checkpoint") -> nn.Module:
    """Instantiate the allow-listed model class of a config returned by :func:`model_config` (random weights)."""
    config = model_config({"hyper_parameters": {"net": dict(config)}}, source)
    cls = _model_class(config["_target_"])
    kwargs = {k: v for k, v in config.items() if k != "_target_"}
    params = inspect.signature(cls).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise CheckpointError(
            f"{source}: {config['_target_']} has no argument(s) {unknown}; accepted: {sorted(params)}"
        )
    return cls(**kwargs)


def model_state_dict(ckpt: Mapping[str, Any], source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The U-Net's tensors from ``ckpt["state_dict"]`` with the ``net.`` (or ``model.``) prefix removed; tensors
    under other prefixes (``loss.`` ...) are dropped. An exported file stores the tensors without prefix.
    """
    state = ckpt.get("state_dict")
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source} has no 'state_dict' dict (keys: {sorted(map(str, ckpt))[:10]})")
    if ckpt.get("format") == EXPORT_FORMAT:
        return dict(state)
    # The prefix that matches the hyper-parameter key holding the config, else the first one present.
    key = _net_key(ckpt)
    for prefix in [f"{k}." for k in ((key,) if key else ()) + NET_KEYS]:
        out = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if out:
            return out
    sample = ", ".join(list(state)[:5])
    raise CheckpointError(
        f"{source}: no tensors under the prefixes {[k + '.' for k in NET_KEYS]} in its state_dict (first keys: {sample})"
    )


def load_net_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """U-Net weights only (prefix removed) from a Lightning checkpoint or an export, read safely.

    Used to initialise training from a previous run (``InpaintingModule(init_from=...)``).
    """
    return model_state_dict(load_checkpoint(path), source=str(path))


def load_model(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint or export safely and return ``(model in eval mode, model config)``.

    Raises:
        CheckpointError / UnsafeCheckpointError: see :func:`load_checkpoint` and :func:`model_config`; also when the
            tensors do not fit the configured network (the message lists missing/unexpected keys).
    """
    source = str(path)
    ckpt = load_checkpoint(path)
    config = model_config(ckpt, source)
    state = model_state_dict(ckpt, source=source)
    model = build_model(config, source)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{source}: weights do not match {config}: {str(e)[:800]}") from None
    return model.to(map_location).eval(), config


def save_weights(
    path: str | os.PathLike[str], model: nn.Module | Mapping[str, torch.Tensor], config: Mapping[str, Any]
) -> Path:
    """Write the weights-only export: safetensors of the state dict + the model config as JSON metadata (atomic).

    Args:
        path: output file, usually ``*.safetensors``.
        model: the network or its state dict (no ``model.`` prefix).
        config: ``{"_target_": ..., **kwargs}``, validated with :func:`model_config`.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    from safetensors.torch import save_file

    config = model_config({"hyper_parameters": {"net": dict(config)}}, "export config")
    state = model.state_dict() if isinstance(model, nn.Module) else dict(model)
    # safetensors refuses shared or non-contiguous storage; clone makes every tensor standalone.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    meta = {"format": EXPORT_FORMAT, "model": json.dumps(config)}
    path = Path(path)
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path
