"""Tests of inpaint.losses.vgg: architecture, weight sources, offline behaviour, frozen eval mode."""

from __future__ import annotations

import logging
import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from inpaint.losses import vgg as vgg_mod
from inpaint.losses.vgg import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGG16_FILENAME,
    VGG16FeatureExtractor,
    VGGWeightsUnavailableError,
    build_vgg16_features,
    load_vgg16_features,
    vgg16_cache_dir,
)


@pytest.fixture(scope="module")
def tv_vgg16_features() -> nn.Sequential:
    """torchvision's own vgg16().features[:17], randomly initialised (built once: the classifier is large)."""
    torch.manual_seed(123)
    return torchvision.models.vgg16(weights=None).features[:17].eval()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every outgoing connection fail at once, as on a machine without network."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def empty_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A TORCH_HOME without any cached checkpoint; returns the checkpoints directory torchvision would use."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    cache = vgg16_cache_dir()
    assert cache == tmp_path / "torch_home" / "hub" / "checkpoints"
    return cache


def _tv_pools(features: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    h = (x - mean) / std
    out = []
    for sl in (slice(0, 5), slice(5, 10), slice(10, 17)):
        h = features[sl](h)
        out.append(h)
    return out


def test_constants_match_torchvision() -> None:
    url = torchvision.models.VGG16_Weights.IMAGENET1K_V1.url
    assert url == vgg_mod.VGG16_URL
    assert os.path.basename(url) == VGG16_FILENAME == "vgg16-397923af.pth"
    assert vgg16_cache_dir() == Path(torch.hub.get_dir()) / "checkpoints"


def test_architecture_matches_torchvision(tv_vgg16_features: nn.Sequential) -> None:
    ours = build_vgg16_features()
    assert [type(m) for m in ours] == [type(m) for m in tv_vgg16_features]
    ours_sd, tv_sd = ours.state_dict(), tv_vgg16_features.state_dict()
    assert list(ours_sd) == list(tv_sd)
    assert all(ours_sd[k].shape == tv_sd[k].shape for k in tv_sd)
    for a, b in zip(ours, tv_vgg16_features, strict=True):
        if isinstance(a, nn.Conv2d):
            assert (a.kernel_size, a.padding, a.stride) == (b.kernel_size, b.padding, b.stride)
        if isinstance(a, nn.MaxPool2d):
            assert (a.kernel_size, a.stride, a.ceil_mode) == (b.kernel_size, b.stride, b.ceil_mode)


def test_random_init_statistics_match_torchvision(tv_vgg16_features: nn.Sequential) -> None:
    # Same init scheme (kaiming fan_out): the weight std of each conv agrees within sampling noise; bias zero.
    torch.manual_seed(0)
    ours = build_vgg16_features()
    for a, b in zip(ours, tv_vgg16_features, strict=True):
        if isinstance(a, nn.Conv2d):
            assert a.weight.std().item() == pytest.approx(b.weight.std().item(), rel=0.1)
            assert torch.count_nonzero(a.bias) == 0


def test_full_torchvision_state_dict_file_gives_torchvision_features(
    tv_vgg16_features: nn.Sequential, tmp_path: Path
) -> None:
    # A full vgg16 state dict has 'features.<i>.*' and 'classifier.*' keys; the classifier must be ignored.
    full = {f"features.{k}": v for k, v in tv_vgg16_features.state_dict().items()}
    full["classifier.0.weight"] = torch.zeros(4, 4)
    full["classifier.0.bias"] = torch.zeros(4)
    path = tmp_path / "vgg16_full.pth"
    torch.save(full, path)

    extractor = VGG16FeatureExtractor(str(path))
    assert extractor.source == f"file:{path.resolve()}"
    torch.manual_seed(1)
    x = torch.rand(2, 3, 32, 24)
    feats = extractor(x)
    expected = _tv_pools(tv_vgg16_features, x)
    assert [tuple(f.shape) for f in feats] == [(2, 64, 16, 12), (2, 128, 8, 6), (2, 256, 4, 3)]
    for f, e in zip(feats, expected, strict=True):
        torch.testing.assert_close(f, e, rtol=0, atol=0)


def test_truncated_state_dict_file_loads(tv_vgg16_features: nn.Sequential, tmp_path: Path) -> None:
    path = tmp_path / "vgg16_pool3.pt"
    torch.save(tv_vgg16_features.state_dict(), path)  # keys '0.weight', ...
    features, source = load_vgg16_features(path)
    assert source == f"file:{path.resolve()}"
    for k, v in tv_vgg16_features.state_dict().items():
        assert torch.equal(features.state_dict()[k], v)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth") as info:
        load_vgg16_features(str(missing))
    assert "imagenet" in str(info.value) and "random" in str(info.value)


def test_unusable_files_give_clear_errors(tv_vgg16_features: nn.Sequential, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(VGGWeightsUnavailableError, match="garbage.pth"):
        load_vgg16_features(str(garbage))

    wrong = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, wrong)
    with pytest.raises(VGGWeightsUnavailableError, match="no VGG16 feature weights"):
        load_vgg16_features(str(wrong))

    partial = tmp_path / "partial.pth"
    sd = tv_vgg16_features.state_dict()
    del sd["14.weight"]
    torch.save(sd, partial)
    with pytest.raises(VGGWeightsUnavailableError, match=r"missing \['14.weight'\]"):
        load_vgg16_features(str(partial))

    bad_shape = tmp_path / "bad_shape.pth"
    sd = tv_vgg16_features.state_dict()
    sd["0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(sd, bad_shape)
    with pytest.raises(VGGWeightsUnavailableError, match="0.weight has shape"):
        load_vgg16_features(str(bad_shape))


@pytest.mark.usefixtures("no_network")
def test_offline_imagenet_fails_fast_with_clear_message(empty_torch_home: Path) -> None:
    start = time.monotonic()
    with pytest.raises(VGGWeightsUnavailableError) as info:
        VGG16FeatureExtractor("imagenet")
    assert time.monotonic() - start < 10.0
    msg = str(info.value)
    assert VGG16_FILENAME in msg
    assert str(empty_torch_home) in msg  # where it was looked for
    assert "loss.vgg_weights=/path/to/" in msg  # way out 1: provide the file
    assert "loss.vgg_weights=random" in msg  # way out 2: random, knowingly
    assert not (empty_torch_home / VGG16_FILENAME).exists()


def test_failed_download_gives_the_same_message(
    empty_torch_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The host looks reachable, but the download itself fails (proxy refusal, firewall, 403...).
    monkeypatch.setattr(vgg_mod, "_download_host_reachable", lambda url, timeout=5.0: (True, ""))

    def fail(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("blocked by the test")

    monkeypatch.setattr(torch.hub, "urlopen", fail)  # torch.hub imported it by name
    with pytest.raises(VGGWeightsUnavailableError, match="blocked by the test") as info:
        load_vgg16_features("imagenet")
    assert str(empty_torch_home) in str(info.value) and VGG16_FILENAME in str(info.value)


@pytest.mark.usefixtures("no_network")
def test_imagenet_loads_from_hub_cache_without_network(
    tv_vgg16_features: nn.Sequential, empty_torch_home: Path
) -> None:
    # Stand-in for the real file (same format as torchvision's, features only to keep the test small).
    empty_torch_home.mkdir(parents=True)
    torch.save(
        {f"features.{k}": v for k, v in tv_vgg16_features.state_dict().items()},
        empty_torch_home / VGG16_FILENAME,
    )
    features, source = load_vgg16_features("imagenet")
    assert source == "imagenet"
    for k, v in tv_vgg16_features.state_dict().items():
        assert torch.equal(features.state_dict()[k], v)
    # imagenet_or_random takes the ImageNet weights too when they are there.
    assert load_vgg16_features("imagenet_or_random")[1] == "imagenet"


@pytest.mark.usefixtures("no_network")
def test_corrupt_cached_file_is_named(empty_torch_home: Path) -> None:
    empty_torch_home.mkdir(parents=True)
    (empty_torch_home / VGG16_FILENAME).write_bytes(b"truncated download")
    with pytest.raises(VGGWeightsUnavailableError, match="could not be read") as info:
        load_vgg16_features("imagenet")
    assert str(empty_torch_home / VGG16_FILENAME) in str(info.value)
    assert "loss.vgg_weights=random" in str(info.value)


@pytest.mark.usefixtures("no_network", "empty_torch_home")
def test_imagenet_or_random_falls_back_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="inpaint.losses.vgg"):
        extractor = VGG16FeatureExtractor("imagenet_or_random")
    assert extractor.source == "random"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("RANDOM" in r.getMessage() and VGG16_FILENAME in r.getMessage() for r in warnings)


def test_random_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="inpaint.losses.vgg"):
        _, source = load_vgg16_features("random")
    assert source == "random"
    assert any("RANDOM" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_frozen_eval_mode_and_input_gradients() -> None:
    torch.manual_seed(0)
    extractor = VGG16FeatureExtractor("random")
    parent = nn.Sequential(extractor)
    parent.train()
    assert not extractor.training and not any(m.training for m in extractor.modules())
    extractor.train(True)
    assert not extractor.training
    assert all(not p.requires_grad for p in extractor.parameters())

    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    sum(f.sum() for f in extractor(x)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in extractor.parameters())


def test_state_dict_holds_only_vgg_weights() -> None:
    extractor = VGG16FeatureExtractor("random")
    keys = list(extractor.state_dict())
    assert keys == [f"features.{k}" for k in build_vgg16_features().state_dict()]


def test_normalisation_is_imagenet() -> None:
    # With the layers replaced by identities, every "pool" output is the normalised input itself.
    extractor = VGG16FeatureExtractor("random")
    extractor.features = nn.Sequential(*[nn.Identity() for _ in range(17)])
    x = torch.rand(2, 3, 4, 4)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    for f in extractor(x):
        torch.testing.assert_close(f, (x - mean) / std)


def test_rejects_bad_input_shape() -> None:
    extractor = VGG16FeatureExtractor("random")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        extractor(torch.rand(1, 1, 16, 16))


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("cache", ["missing", "corrupt"])
def test_fallback_warning_is_one_clean_line(
    caplog: pytest.LogCaptureFixture, empty_torch_home: Path, cache: str
) -> None:
    if cache == "corrupt":
        empty_torch_home.mkdir(parents=True)
        (empty_torch_home / VGG16_FILENAME).write_bytes(b"truncated download")
    with caplog.at_level(logging.WARNING, logger="inpaint.losses.vgg"):
        assert load_vgg16_features("imagenet_or_random")[1] == "random"
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    msg = record.getMessage()
    assert "\n" not in msg and "!!!" not in msg and msg.count("RANDOM") == 1
    assert msg.startswith("VGG16 uses RANDOM weights (vgg_weights=imagenet_or_random): ")
    assert str(empty_torch_home) in msg and "loss.vgg_weights=/path/to/" in msg
    assert ("could not be read" if cache == "corrupt" else "downloading it failed") in msg
    assert "Two ways out" not in msg  # the error's long explanation is for errors, not for this warning
