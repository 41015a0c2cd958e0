"""Frozen VGG16 feature extractor (pool1, pool2, pool3) for the perceptual and style losses.

The network is torchvision's ``vgg16().features[:17]`` (conv1_1 ... pool3), rebuilt layer by layer with the same
module indices so that torchvision state dicts (``features.<i>.weight``) load as they are; the fully connected
classifier and conv4/conv5 are never built, which saves ~130 M parameters of memory and their init time.

Weight sources (one string, ``vgg_weights``):

- ``"imagenet"``: torchvision's IMAGENET1K_V1 weights through its normal mechanism, i.e. the torch hub cache
  (``torch.hub.get_dir()/checkpoints/vgg16-397923af.pth``) or a download where a network exists. Without either,
  :class:`VGGWeightsUnavailableError` is raised at once with the file name, the directory searched and the ways out.
  There is no silent fallback.
- ``"imagenet_or_random"``: ``"imagenet"`` if it can be had, else random weights with a loud warning. Meant for the
  offline demo only; the source actually used is returned so that callers can record it.
- ``"random"``: explicit opt-in to randomly initialised weights (tests, offline smoke runs); logs a loud warning.
- anything else: a path to a local file holding a torchvision vgg16 state dict (full, or only the layers kept).
"""

from __future__ import annotations

import logging
import os
import socket
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGG16_FILENAME",
    "VGG16_URL",
    "VGG16FeatureExtractor",
    "VGGWeightsUnavailableError",
    "build_vgg16_features",
    "load_vgg16_features",
    "vgg16_cache_dir",
]

log = logging.getLogger(__name__)

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# torchvision's VGG16_Weights.IMAGENET1K_V1; kept here so that the error message can name the file without importing
# torchvision's model zoo (and checked against it in the tests).
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
VGG16_FILENAME = "vgg16-397923af.pth"

# torchvision's vgg16 configuration "D" up to and including the third max-pool: features[0:17].
_VGG16_POOL3_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M")
# Indices in features[:17] of pool1, pool2, pool3 (slices [0:5], [5:10], [10:17]).
POOL_INDICES: tuple[int, int, int] = (4, 9, 16)
_N_LAYERS = 17

# How long to wait for a TCP connection to the download host before declaring the machine offline.
_NETWORK_PROBE_TIMEOUT_S = 5.0

_KEYWORDS = ("imagenet", "imagenet_or_random", "random")


class VGGWeightsUnavailableError(RuntimeError):
    """The requested VGG16 weights cannot be obtained (no cached file and no network, or an unreadable file).

    ``str(err)`` is the full explanation with the ways out; ``err.reason`` is one line saying what went wrong, for
    the fallback warning of ``imagenet_or_random``.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = _one_line(reason or message)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def build_vgg16_features() -> nn.Sequential:
    """Randomly initialised ``vgg16().features[:17]`` with torchvision's layout and initialisation.

    Returns:
        ``nn.Sequential`` of 17 modules (7 conv3x3 + ReLU, 3 max-pools) whose state-dict keys are ``<i>.weight`` /
        ``<i>.bias`` with the same indices as torchvision's ``vgg16().features``.
    """
    layers: list[nn.Module] = []
    in_ch = 3
    for v in _VGG16_POOL3_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            assert isinstance(v, int)
            conv = nn.Conv2d(in_ch, v, kernel_size=3, padding=1)
            # Same init as torchvision's VGG (kaiming, fan_out, zero bias), so "random" matches vgg16(weights=None).
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            layers += [conv, nn.ReLU(inplace=True)]
            in_ch = v
    assert len(layers) == _N_LAYERS
    return nn.Sequential(*layers)


def vgg16_cache_dir() -> Path:
    """Directory where torchvision looks for (and downloads) ``vgg16-397923af.pth``: ``torch.hub.get_dir()/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _extract_kept_layers(state: Mapping[str, object], origin: str) -> dict[str, Tensor]:
    """Keep the parameters of features[:17] from a full torchvision vgg16 state dict or a truncated one.

    Accepted key forms: ``features.<i>.<param>`` (torchvision ``vgg16().state_dict()`` and this module's own
    state dict), ``<i>.<param>`` (``vgg16().features[:17].state_dict()``). A ``{"state_dict": ...}`` wrapper is
    unwrapped. Raises :class:`VGGWeightsUnavailableError` naming ``origin`` when parameters are missing.
    """
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, Tensor):
            continue
        parts = key.split(".")
        if parts[0] == "features":
            parts = parts[1:]
        if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) < _N_LAYERS:
            out[".".join(parts)] = value
    if not out:
        sample = ", ".join(str(k) for k in list(state.keys())[:5])
        raise VGGWeightsUnavailableError(
            f"{origin}: no VGG16 feature weights found. Expected a torchvision vgg16 state dict with keys like "
            f"'features.0.weight' (or '0.weight' for features[:17] alone); found keys: {sample or '(none)'}"
        )
    return out


def _load_into(features: nn.Sequential, state: Mapping[str, object], origin: str) -> None:
    """Load the kept layers into ``features`` with a clear error on missing keys or wrong shapes."""
    kept = _extract_kept_layers(state, origin)
    own = features.state_dict()
    missing = sorted(set(own) - set(kept), key=lambda k: (int(k.split(".")[0]), k))
    if missing:
        raise VGGWeightsUnavailableError(
            f"{origin}: VGG16 weights incomplete, missing {missing} (expected the 14 tensors of "
            f"vgg16().features[:17]: conv1_1 ... conv3_3)."
        )
    for key, tensor in own.items():
        if kept[key].shape != tensor.shape:
            raise VGGWeightsUnavailableError(
                f"{origin}: {key} has shape {tuple(kept[key].shape)}, expected {tuple(tensor.shape)} "
                f"(is this really a VGG16 without batch norm?)"
            )
    features.load_state_dict({k: kept[k] for k in own})


def _download_host_reachable(url: str, timeout: float = _NETWORK_PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """Whether a TCP connection to the download host (or the configured proxy) opens within ``timeout`` s.

    torch.hub's download has no timeout of its own; probing first lets an offline machine fail in seconds.
    """
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parsed.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        p = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = p.hostname or "", p.port or (443 if p.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, ""
    except OSError as exc:
        return False, f"cannot connect to {host}:{port} ({exc})"


def _unavailable_message(cache_dir: Path, reason: str) -> str:
    return (
        f"VGG16 ImageNet weights (needed by the perceptual/style losses) are not available: expected the file "
        f"'{VGG16_FILENAME}' in the torch hub cache directory '{cache_dir}' (torch.hub.get_dir()/checkpoints; set "
        f"TORCH_HOME to move it), it is not there, and downloading it from {VGG16_URL} failed: {reason}.\n"
        f"Two ways out:\n"
        f"  1. get the file on a machine with network ({VGG16_URL}) and put it at "
        f"'{cache_dir / VGG16_FILENAME}', or pass its path: loss.vgg_weights=/path/to/{VGG16_FILENAME} "
        f"(InpaintingLoss(vgg_weights=...) in Python);\n"
        f"  2. knowingly use random VGG weights (perceptual and style terms then only act as a random-feature "
        f"regulariser): loss.vgg_weights=random."
    )


def _load_imagenet_state() -> dict[str, Tensor]:
    """torchvision's IMAGENET1K_V1 vgg16 state dict from the hub cache or a download; fails fast offline."""
    from torchvision.models import VGG16_Weights

    weights = VGG16_Weights.IMAGENET1K_V1
    cache_dir = vgg16_cache_dir()
    cached = cache_dir / VGG16_FILENAME
    # torchvision's own mechanism (torch.hub.load_state_dict_from_url): the cached file if present, else a download
    # into the cache, checked against the hash prefix in the file name as torchvision does.
    kwargs = {"progress": False, "check_hash": True, "weights_only": True}
    if cached.is_file():
        try:
            return weights.get_state_dict(**kwargs)
        except Exception as exc:  # a truncated or foreign file: unpickling errors come in many types
            why = f"the cached file '{cached}' could not be read ({type(exc).__name__}: {str(exc).splitlines()[0]})"
            raise VGGWeightsUnavailableError(
                f"the cached VGG16 weights '{cached}' could not be read ({type(exc).__name__}: {exc}). Delete or "
                f"replace the file (it should be {VGG16_URL}), pass another copy with "
                f"loss.vgg_weights=/path/to/{VGG16_FILENAME}, or use loss.vgg_weights=random knowingly.",
                reason=why,
            ) from exc

    ok, reason = _download_host_reachable(weights.url)
    if not ok:
        raise _unavailable(cache_dir, reason)
    log.info("Downloading VGG16 ImageNet weights from %s into %s", weights.url, cache_dir)
    try:
        return weights.get_state_dict(**kwargs)
    except Exception as exc:  # URLError/HTTPError (OSError), http.client errors, hash mismatch (RuntimeError)
        raise _unavailable(cache_dir, f"{type(exc).__name__}: {exc}") from exc


def _unavailable(cache_dir: Path, reason: str) -> VGGWeightsUnavailableError:
    return VGGWeightsUnavailableError(
        _unavailable_message(cache_dir, reason),
        reason=f"{VGG16_FILENAME} is not in {cache_dir} and downloading it failed: {reason}",
    )


def _warn_random(spec: str, why: str = "") -> None:
    # One line: it lands in training logs, where a multi-line block inside another message is unreadable.
    log.warning(
        "VGG16 uses RANDOM weights (vgg_weights=%s)%s. The perceptual and style losses then do not measure ImageNet "
        "features: fine for tests, smoke runs and the offline demo; for real experiments put %s into %s or pass "
        "loss.vgg_weights=/path/to/%s.",
        spec,
        f": {_one_line(why)}" if why else "",
        VGG16_FILENAME,
        vgg16_cache_dir(),
        VGG16_FILENAME,
    )


def load_vgg16_features(vgg_weights: str | os.PathLike[str] = "imagenet") -> tuple[nn.Sequential, str]:
    """Build ``vgg16().features[:17]`` and fill it from the chosen weight source.

    Args:
        vgg_weights: ``"imagenet"``, ``"imagenet_or_random"``, ``"random"``, or a path to a ``torch.save``-d
            torchvision vgg16 state dict (full, or only features[:17]).

    Returns:
        ``(features, source)`` where ``source`` says which weights were actually used: ``"imagenet"``,
        ``"random"`` or ``"file:<absolute path>"``.

    Raises:
        VGGWeightsUnavailableError: ``"imagenet"`` requested but neither cached nor downloadable, or the file is not
            a usable VGG16 state dict.
        FileNotFoundError: the path does not exist.
    """
    features = build_vgg16_features()
    spec = os.fspath(vgg_weights)
    if spec == "random":
        _warn_random(spec)
        return features, "random"
    if spec in ("imagenet", "imagenet_or_random"):
        try:
            state = _load_imagenet_state()
        except VGGWeightsUnavailableError as exc:
            if spec == "imagenet":
                raise
            _warn_random(spec, exc.reason)
            return features, "random"
        _load_into(
            features, state, f"torchvision VGG16_Weights.IMAGENET1K_V1 ({vgg16_cache_dir() / VGG16_FILENAME})"
        )
        log.info("VGG16 loss network: ImageNet weights (IMAGENET1K_V1)")
        return features, "imagenet"

    path = Path(spec).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(
            f"vgg_weights={spec!r}: no such file '{path}'. Expected one of {', '.join(_KEYWORDS)} or a path to a "
            f"torchvision vgg16 state dict (e.g. {VGG16_FILENAME})."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types; all mean the same to the user
        raise VGGWeightsUnavailableError(
            f"vgg_weights file '{path}' could not be read as a torch state dict: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(state, Mapping):
        raise VGGWeightsUnavailableError(
            f"vgg_weights file '{path}' holds a {type(state).__name__}, expected a state dict (mapping name->tensor)"
        )
    _load_into(features, state, f"vgg_weights file '{path}'")
    log.info("VGG16 loss network: weights from %s", path)
    return features, f"file:{path}"


class VGG16FeatureExtractor(nn.Module):
    """Frozen VGG16 returning the pool1, pool2 and pool3 activations of ImageNet-normalised [0, 1] images.

    The module is always in eval mode (``.train()`` is ignored) and its parameters never require gradients;
    gradients still flow to the input. Normalisation buffers are not persistent, so ``state_dict()`` holds exactly
    torchvision's ``features.<i>.weight/bias`` keys.

    Args:
        vgg_weights: see :func:`load_vgg16_features`.

    Attributes:
        source: which weights were actually loaded (``"imagenet"``, ``"random"``, ``"file:<path>"``).
    """

    def __init__(self, vgg_weights: str | os.PathLike[str] = "imagenet") -> None:
        super().__init__()
        self.features, self.source = load_vgg16_features(vgg_weights)
        self.features.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        super().train(False)

    def train(self, mode: bool = True) -> VGG16FeatureExtractor:
        """Ignore ``mode``: the loss network stays in eval mode whatever the parent does."""
        return super().train(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Pool activations of images in [0, 1].

        Args:
            x: (B, 3, H, W) images in [0, 1] (H, W multiples of 8 avoid cropping by the pools).

        Returns:
            ``[pool1 (B, 64, H/2, W/2), pool2 (B, 128, H/4, W/4), pool3 (B, 256, H/8, W/8)]``.
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"VGG16FeatureExtractor expects (B, 3, H, W) images, got shape {tuple(x.shape)}")
        # Follow the module dtype (a module cast to bf16/fp16 wholesale, e.g. "true" half precision); under
        # autocast the weights stay float32 and the convolutions are downcast by autocast itself.
        x = x.to(self.mean.dtype)
        h = (x - self.mean) / self.std
        feats: list[Tensor] = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in POOL_INDICES:
                feats.append(h)
        return feats
