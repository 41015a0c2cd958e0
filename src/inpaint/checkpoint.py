"""Safe loading of model checkpoints for inference, and the weights-only export format.

A checkpoint from someone else is data, not code. This module therefore

- reads Lightning ``.ckpt`` files only with ``torch.load(weights_only=True)``: a pickle that names any callable or
  class outside torch's tensor/primitive allow-list is refused with :class:`UnsafeCheckpointError` before anything
  in it runs;
- reads the exported ``.safetensors`` files (tensors + JSON metadata, no pickle at all);
- refuses weights with NaN or infinite values (:class:`NonFiniteWeightsError`, checked once in :func:`load_model`),
  naming the first such tensor: such a model fills holes with black;
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
import warnings
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
    "NonFiniteWeightsError",
    "UnsafeCheckpointError",
    "build_model",
    "check_finite_weights",
    "load_checkpoint",
    "load_model",
    "load_net_state_dict",
    "model_config",
    "model_state_dict",
    "save_weights",
    "stored_inference_options",
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


class NonFiniteWeightsError(CheckpointError):
    """A checkpoint's weights hold NaN or infinite values (e.g. saved after training diverged): its fills would be
    black or garbage, so it is refused at load."""


def _is_safetensors(path: Path) -> bool:
    if path.suffix in SAFETENSORS_SUFFIXES:
        return True
    # Also recognise a renamed safetensors file: 8-byte little-endian header length followed by '{'.
    with path.open("rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and not zipfile.is_zipfile(path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint without executing anything stored in it.

    The one reader of checkpoint files for every tool (predict, export, evaluate, the page; training can call it
    before handing a ``ckpt_path`` to Lightning): its :class:`CheckpointError` is one line that names the file, says
    what it holds instead (junk bytes, a truncated or foreign zip archive, a plain pickle, an image ...) and what was
    expected, and never repeats torch's advice to switch the safety check off.

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
        with warnings.catch_warnings():
            # torch's note about a pickle protocol it did not write: the file is refused below with our own words.
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise _unpickling_error(path, str(e)) from None
    except (
        Exception
    ) as e:  # the parser fails in many ways on junk (IndexError, EOFError, RuntimeError, KeyError...)
        raise _unreadable(path, _what_it_is(path, str(e))) from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(ckpt).__name__}, expected a dict")
    return ckpt


EXPECTED = (
    "expected a Lightning .ckpt (a zip archive written by torch.save) or a .safetensors file from "
    "`python -m inpaint.export`"
)
# The first bytes of files that get mistaken for checkpoints, for the error message.
_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "a gzip file",
    b"%PDF": "a PDF document",
    b"<": "an HTML/XML document",
    b"{": "a JSON document",
}


def _unreadable(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"cannot read checkpoint {path}: {what}; {EXPECTED}")


def _what_it_is(path: Path, torch_message: str) -> str:
    """What ``path`` holds, as far as its first bytes tell, for a file that ``torch.load`` could not read."""
    with path.open("rb") as f:
        head = f.read(16)
    if head.startswith(b"PK\x03\x04"):
        if "central directory" in torch_message:
            return (
                "a damaged or truncated zip archive (no central directory: cut short by a full disk, an interrupted "
                "copy or download?)"
            )
        return f"a zip archive that torch.save did not write ({_without_torch_advice(torch_message) or 'no data.pkl'})"
    if head[:1] == b"\x80":
        return "a Python pickle that is not a torch.save checkpoint (inpaint unpickles nothing else)"
    known = next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)
    if known is None and head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        known = "a text file"
    start = " ".join(f"{b:02x}" for b in head[:8])
    return f"{known or 'not a zip archive, pickle or safetensors file'} (it starts with the bytes {start})"


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
        # Junk bytes, or a pickle of a format torch.save does not write: say what the file is, not the opcode.
        return _unreadable(path, _what_it_is(path, message))
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
    inference = json.loads(meta["inference"]) if meta.get("inference") else {}
    return {
        "state_dict": tensors,
        "hyper_parameters": {"net": config},
        "format": EXPORT_FORMAT,
        "inference": inference,
    }


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


def check_finite_weights(state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Refuse weights with a NaN or infinite value, naming the first such tensor (in the state dict's order).

    Args:
        state: name -> tensor (e.g. :func:`model_state_dict`'s result); integer tensors are finite by nature.
        source: the file, for the message.

    Raises:
        NonFiniteWeightsError: one line naming the first non-finite tensor and how many tensors are affected.
    """
    bad = [name for name, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if not bad:
        return
    first = state[bad[0]]
    nans, infs = int(torch.isnan(first).sum()), int(torch.isinf(first).sum())
    raise NonFiniteWeightsError(
        f"{source}: the weights are not finite: tensor {bad[0]!r} holds {nans} NaN and {infs} infinite value(s) of "
        f"{first.numel()} ({len(bad)} of {len(state)} tensors affected); a model saved after its training "
        f"diverged fills holes with black or noise. Use an earlier checkpoint of the run"
    )


def load_net_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """U-Net weights only (prefix removed) from a Lightning checkpoint or an export, read safely and checked to be
    finite (:func:`check_finite_weights`).

    Used to initialise training from a previous run (``InpaintingModule(init_from=...)``).
    """
    state = model_state_dict(load_checkpoint(path), source=str(path))
    check_finite_weights(state, str(path))
    return state


def load_model(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint or export safely and return ``(model in eval mode, model config)``.

    Raises:
        CheckpointError / UnsafeCheckpointError: see :func:`load_checkpoint` and :func:`model_config`; also when the
            tensors do not fit the configured network (the message lists missing/unexpected keys).
        NonFiniteWeightsError: a weight is NaN or infinite (checked once, here, for every tool that loads a model).
    """
    source = str(path)
    ckpt = load_checkpoint(path)
    config = model_config(ckpt, source)
    state = model_state_dict(ckpt, source=source)
    check_finite_weights(state, source)
    model = build_model(config, source)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{source}: weights do not match {config}: {str(e)[:800]}") from None
    return model.to(map_location).eval(), config


def stored_inference_options(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The inference options a checkpoint or export carries (``ckpt["inference"]`` / the ``inference`` metadata),
    ``{}`` for one written before they were stored. Reads no tensor data (memory-mapped or metadata only).

    Raises:
        CheckpointError: the file cannot be read (see :func:`load_checkpoint`) or the options are not a mapping.
    """
    path = Path(path)
    try:
        if _is_safetensors(path):
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                text = (f.metadata() or {}).get("inference")
            value: Any = json.loads(text) if text else {}
        else:
            value = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("inference", {})
    except Exception:  # noqa: BLE001 - the one reader says what is wrong with the file
        value = load_checkpoint(path).get("inference", {})
    if not isinstance(value, Mapping):
        raise CheckpointError(
            f"{path}: its inference options are a {type(value).__name__}, expected a mapping"
        )
    return dict(value)


def save_weights(
    path: str | os.PathLike[str],
    model: nn.Module | Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
    inference: Mapping[str, Any] | None = None,
) -> Path:
    """Write the weights-only export: safetensors of the state dict + the model config (and the inference options
    the model carries) as JSON metadata (atomic).

    Args:
        path: output file, usually ``*.safetensors``.
        model: the network or its state dict (no ``model.`` prefix).
        config: ``{"_target_": ..., **kwargs}``, validated with :func:`model_config`.
        inference: the options chosen for this model (see :class:`inpaint.inference.InferenceOptions`); ``None`` =
            none stored.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OSError: the file cannot be written (full disk, read-only folder ...), naming ``path``; nothing is left
            behind and an existing file is kept.
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    config = model_config({"hyper_parameters": {"net": dict(config)}}, "export config")
    state = model.state_dict() if isinstance(model, nn.Module) else dict(model)
    # safetensors refuses shared or non-contiguous storage; clone makes every tensor standalone.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    meta = {"format": EXPORT_FORMAT, "model": json.dumps(config)}
    if inference:
        meta["inference"] = json.dumps(dict(inference))
    path = Path(path)
    with atomic_output(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=meta)
        except (
            SafetensorError
        ) as e:  # its I/O errors are no OSError: "... No space left on device (os error 28)"
            raise _os_error(str(e), tmp) from e
    return path


def _os_error(message: str, path: Path) -> OSError:
    """The :class:`OSError` that a Rust ``I/O error: ... (os error N)`` message stands for."""
    code = re.search(r"os error (\d+)", message)
    if code is None:
        return OSError(f"cannot write {path}: {message}")
    errno = int(code.group(1))
    return OSError(errno, os.strerror(errno), str(path))
