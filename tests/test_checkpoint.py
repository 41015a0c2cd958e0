"""Safe checkpoint loading: weights-only unpickling, the `_target_` allow-list, the safetensors export."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
import torch

from inpaint.checkpoint import (
    CheckpointError,
    UnsafeCheckpointError,
    build_model,
    load_checkpoint,
    load_model,
    load_net_state_dict,
    save_weights,
)
from inpaint.models import PConvUNet


class _CreatesFile:
    """Pickles to a call of ``open(path, "w")``: unpickling it with plain pickle creates ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def test_malicious_pickle_payload_is_refused_and_never_runs(tmp_path: Path, tiny) -> None:
    ckpt = tmp_path / "evil.ckpt"
    tiny.checkpoint(ckpt)
    data = torch.load(ckpt, weights_only=True)
    marker = tmp_path / "pwned.txt"
    data["hyper_parameters"]["payload"] = _CreatesFile(marker)
    torch.save(data, ckpt)
    assert not marker.exists()

    with pytest.raises(UnsafeCheckpointError, match=r"refusing to load .*evil\.ckpt.*weights_only=True"):
        load_checkpoint(ckpt)
    with pytest.raises(UnsafeCheckpointError):
        load_model(ckpt)
    from inpaint import Inpainter

    with pytest.raises(UnsafeCheckpointError):
        Inpainter.from_checkpoint(ckpt)
    assert not marker.exists()

    # The payload is real: an unsafe loader would have created the file.
    with open(tmp_path / "payload.pkl", "wb") as f:
        pickle.dump(_CreatesFile(marker), f)
    with open(tmp_path / "payload.pkl", "rb") as f:
        pickle.load(f).close()
    assert marker.exists()


@pytest.mark.parametrize("target", ["os.system", "builtins.eval", "inpaint.models.pconv_unet.nn.Module", ""])
def test_target_outside_allow_list_is_refused(tmp_path: Path, target: str, tiny) -> None:
    ckpt = tiny.checkpoint(tmp_path / "t.ckpt")
    data = torch.load(ckpt, weights_only=True)
    data["hyper_parameters"]["net"]["_target_"] = target
    torch.save(data, ckpt)
    with pytest.raises(UnsafeCheckpointError, match="allow-list"):
        load_model(ckpt)


def test_nested_config_is_not_followed(tmp_path: Path, tiny) -> None:
    ckpt = tiny.checkpoint(tmp_path / "t.ckpt")
    data = torch.load(ckpt, weights_only=True)
    data["hyper_parameters"]["net"]["levels"] = {"_target_": "os.getpid"}
    torch.save(data, ckpt)
    with pytest.raises(CheckpointError, match="not followed"):
        load_model(ckpt)


def test_load_lightning_checkpoint_matches_weights(tmp_path: Path, tiny) -> None:
    ckpt = tiny.checkpoint(tmp_path / "t.ckpt", levels=3, seed=3)
    model, config = load_model(ckpt)
    assert isinstance(model, PConvUNet) and model.levels == 3 and not model.training
    assert config == {"_target_": "inpaint.models.PConvUNet", "levels": 3}
    stored = torch.load(ckpt, weights_only=True)["state_dict"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, stored[f"net.{k}"])
    # The `loss.` tensors are ignored, not loaded.
    assert set(load_net_state_dict(ckpt)) == set(model.state_dict())


def test_model_prefix_layout_is_accepted(tmp_path: Path, tiny) -> None:
    ckpt = tiny.checkpoint(tmp_path / "t.ckpt")
    data = torch.load(ckpt, weights_only=True)
    data["state_dict"] = {k.replace("net.", "model.", 1): v for k, v in data["state_dict"].items()}
    data["hyper_parameters"]["model"] = data["hyper_parameters"].pop("net")
    torch.save(data, ckpt)
    model, _ = load_model(ckpt)
    assert model.levels == 3


def test_safetensors_export_round_trip(tmp_path: Path, tiny) -> None:
    model, config = load_model(tiny.checkpoint(tmp_path / "t.ckpt", seed=5))
    out = save_weights(tmp_path / "w.safetensors", model, config)
    again, config2 = load_model(out)
    assert config2 == config
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    # Recognised by content too, whatever the suffix.
    renamed = out.rename(tmp_path / "weights.bin")
    assert load_model(renamed)[1] == config


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found: .*missing.ckpt"):
        load_checkpoint(tmp_path / "missing.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.ckpt"):
        load_checkpoint(junk)
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.ckpt"):
        load_checkpoint(empty)
    no_config = tmp_path / "noconf.ckpt"
    torch.save({"state_dict": {}}, no_config)
    with pytest.raises(CheckpointError, match="no model configuration"):
        load_model(no_config)


def test_mismatched_weights_are_reported(tmp_path: Path, tiny) -> None:
    ckpt = tiny.checkpoint(tmp_path / "t.ckpt", levels=3)
    data = torch.load(ckpt, weights_only=True)
    data["hyper_parameters"]["net"]["levels"] = 4
    torch.save(data, ckpt)
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(ckpt)


def test_unknown_model_argument(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no argument"):
        build_model({"_target_": "inpaint.models.PConvUNet", "levels": 3, "bogus": 1})


class _RunsCommand:
    """Pickles to ``os.system(...)``: torch's message for it differs from the one for ``open`` (module blocked)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("true",))


@pytest.mark.parametrize(
    "payload", [_CreatesFile(Path("never-created.txt")), _RunsCommand()], ids=["open", "system"]
)
def test_refusal_names_the_global_and_gives_only_our_advice(tmp_path: Path, payload: object, tiny) -> None:
    ckpt = tiny.checkpoint(tmp_path / "evil.ckpt")
    data = torch.load(ckpt, weights_only=True)
    data["hyper_parameters"]["payload"] = payload
    torch.save(data, ckpt)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint(ckpt)
    msg = str(info.value)
    func = payload.__reduce__()[0]  # type: ignore[attr-defined]
    assert f"{func.__module__}.{func.__name__}" in msg  # the disallowed global: io.open, posix.system
    assert "weights_only=False" not in msg and "safe_globals" not in msg and "trusted source" not in msg
    assert "python -m inpaint.export" in msg and msg.rstrip().endswith(".")
    assert "\n" not in msg and not Path("never-created.txt").exists()


def test_empty_file_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.ckpt: empty file \(0 bytes\)"):
        load_checkpoint(empty)


@pytest.mark.slow
def test_torch_export_program_is_pointed_to_the_right_loader(tmp_path: Path, tiny) -> None:
    from inpaint import Inpainter
    from inpaint.export import export_program

    program = export_program(tiny.checkpoint(tmp_path / "t.ckpt"), tmp_path / "model.pt2")
    for name in ("model.pt2", "renamed.bin"):  # recognised by suffix, and by content
        path = program.rename(tmp_path / name)
        with pytest.raises(CheckpointError) as info:
            Inpainter.from_checkpoint(path)
        msg = str(info.value)
        assert "torch.export.load" in msg and ".safetensors" in msg and "corrupted" not in msg
        program = path


# ------------------------------------------------------------------------------ what the file is, finite weights


def _what(tmp_path: Path, content: bytes) -> str:
    path = tmp_path / "model.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert msg.startswith(f"cannot read checkpoint {path}: ") and "\n" not in msg
    assert msg.endswith("a .safetensors file from `python -m inpaint.export`")
    for advice in ("weights_only=False", "mmap", "trusted source", "Unsupported operand", "file an issue"):
        assert advice not in msg
    return msg


def test_unreadable_files_say_what_they_are(tmp_path: Path, tiny) -> None:
    import io
    import os
    import zipfile

    import numpy as np
    from PIL import Image

    msg = _what(tmp_path, bytes([0x53, 0x45, 0x88, 0x1B]) + os.urandom(4000))  # random bytes
    assert "not a zip archive, pickle or safetensors file (it starts with the bytes 53 45 88 1b" in msg
    real = tiny.checkpoint(tmp_path / "real.ckpt").read_bytes()
    assert "damaged or truncated zip archive" in _what(tmp_path, real[: len(real) // 2])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("notes.txt", "hello")
    assert "a zip archive that torch.save did not write" in _what(tmp_path, archive.getvalue())
    assert "a Python pickle that is not a torch.save checkpoint" in _what(tmp_path, pickle.dumps({"a": 1}))
    png = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(png, format="PNG")
    assert "a PNG image" in _what(tmp_path, png.getvalue())
    assert "a text file" in _what(tmp_path, b"version https://git-lfs.github.com/spec/v1\n")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_the_first_tensor(tmp_path: Path, tiny, value: float) -> None:
    from inpaint.checkpoint import NonFiniteWeightsError

    ckpt = tiny.checkpoint(tmp_path / "t.ckpt")
    data = torch.load(ckpt, weights_only=True)
    names = [
        k for k in data["state_dict"] if k.startswith("net.") and data["state_dict"][k].is_floating_point()
    ]
    for name in (names[5], names[2]):  # the first in the state dict's order is named
        data["state_dict"][name].view(-1)[:3] = value
    torch.save(data, ckpt)
    nans, infs = (3, 0) if value != value else (0, 3)
    expected = f"tensor '{names[2].removeprefix('net.')}' holds {nans} NaN and {infs} infinite value(s)"
    for load in (load_model, load_net_state_dict):
        with pytest.raises(NonFiniteWeightsError, match=re.escape(expected)) as info:
            load(ckpt)
        assert "2 of " in str(info.value) and "\n" not in str(info.value)
    model, config = load_model(tiny.checkpoint(tmp_path / "ok.ckpt"))
    out = save_weights(
        tmp_path / "bad.safetensors",
        {k.removeprefix("net."): v for k, v in data["state_dict"].items() if k.startswith("net.")},
        config,
    )
    with pytest.raises(NonFiniteWeightsError):
        load_model(out)  # an export is checked the same way


def test_save_weights_on_a_full_disk_is_an_os_error_naming_the_file(tmp_path: Path, tiny) -> None:
    import errno

    from tests.disks import full_disk

    model, config = load_model(tiny.checkpoint(tmp_path / "t.ckpt"))
    with full_disk(tmp_path / "disk") as disk:
        target = disk / "w.safetensors"
        with pytest.raises(OSError) as info:
            save_weights(target, model, config)
        assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]
