"""Weights-only export (safetensors) and the optional torch.export program."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inpaint import Inpainter
from inpaint.checkpoint import load_model
from inpaint.export import export_program, export_weights, main


def test_cli_writes_safetensors_that_inpainter_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny
) -> None:
    ckpt = tiny.checkpoint(tmp_path / "run" / "last.ckpt", seed=7)
    assert main([str(ckpt)]) == 0
    out = tmp_path / "run" / "last.safetensors"
    assert out.is_file() and f"wrote {out}" in capsys.readouterr().out
    # No pickle inside: safetensors is a JSON header + raw tensor bytes.
    assert b"\x80\x04" not in out.read_bytes()[:64]
    image = np.random.default_rng(0).integers(0, 256, (33, 47, 3), dtype=np.uint8)
    hole = tiny.hole_mask(33, 47, 0.3, seed=1)
    assert np.array_equal(
        Inpainter.from_checkpoint(out)(image, hole), Inpainter.from_checkpoint(ckpt)(image, hole)
    )


def test_cli_output_path_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny) -> None:
    ckpt = tiny.checkpoint(tmp_path / "t.ckpt")
    assert main([str(ckpt), "-o", str(tmp_path / "w" / "model.safetensors")]) == 0
    assert (tmp_path / "w" / "model.safetensors").is_file()
    assert main([str(tmp_path / "missing.ckpt")]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
    assert main([str(ckpt), "-o", str(ckpt)]) == 1
    assert "overwrite the checkpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_torch_export_program_has_dynamic_shapes(tmp_path: Path, tiny) -> None:
    ckpt = tiny.checkpoint(tmp_path / "t.ckpt", levels=3)
    path = export_program(ckpt, tmp_path / "m.pt2")
    program = torch.export.load(path).module()
    model, _ = load_model(ckpt)
    for shape in [(1, 3, 16, 24), (3, 3, 40, 64)]:
        x = torch.rand(shape)
        m = (torch.rand(shape[0], 1, *shape[2:]) > 0.3).float()
        with torch.no_grad():
            assert torch.allclose(program(x, m), model(x, m), atol=1e-5)


def test_a_membrane_residual_network_exports_its_weights_but_not_a_program(tmp_path: Path, tiny) -> None:
    ckpt = tiny.checkpoint(tmp_path / "t.ckpt", membrane_residual=True)
    model, config = load_model(export_weights(ckpt, tmp_path / "m.safetensors"))
    assert model.membrane_residual and config["membrane_residual"] is True
    with pytest.raises(ValueError, match="t.ckpt: --pt2 exports only networks without membrane_residual"):
        export_program(ckpt, tmp_path / "m.pt2")
    assert not (tmp_path / "m.pt2").exists()


def test_export_has_normal_permissions(tmp_path: Path, tiny) -> None:
    import os

    umask = os.umask(0o022)
    os.umask(umask)
    out = tmp_path / "model.safetensors"
    assert main([str(tiny.checkpoint(tmp_path / "t.ckpt")), "-o", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # safetensors alone writes 0600


@pytest.mark.parametrize("how", ["file_in_path", "read_only"])
def test_unwritable_output_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str, tiny
) -> None:
    import os

    from tests.disks import read_only_dir

    ckpt = tiny.checkpoint(tmp_path / "t.ckpt")
    (tmp_path / "a_file").write_text("x")
    with read_only_dir(tmp_path / "ro") as ro:
        if how == "read_only":
            out = ro / "model.safetensors"
            reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
        else:
            out = tmp_path / "a_file" / "sub" / "model.safetensors"
            reason = f"{tmp_path / 'a_file'} is a file, not a folder"
        assert main([str(ckpt), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert (
        err.strip() == f"error: cannot write the export: {out}: {reason}"
    )  # the target, not a temporary file


# ------------------------------------------------------------------------------------- disks, NaN (issue 22)


def test_full_disk_is_one_line_naming_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny
) -> None:
    from tests.disks import full_disk

    ckpt = tiny.checkpoint(tmp_path / "t.ckpt")
    with full_disk(tmp_path / "disk") as disk:
        out = disk / "model.safetensors"
        assert main([str(ckpt), "-o", str(out)]) == 1
        err = capsys.readouterr().err
        assert err.strip() == f"error: cannot write the export: {out}: No space left on device"
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # nothing half-written left behind
        assert main([str(ckpt), "-o", str(out), "--debug"]) == 1
        assert "Traceback" in capsys.readouterr().err


def test_non_finite_checkpoint_is_one_line_naming_the_tensor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny
) -> None:
    ckpt = tiny.checkpoint(tmp_path / "t.ckpt")
    data = torch.load(ckpt, weights_only=True)
    name = [k for k in data["state_dict"] if k.startswith("net.")][1]
    data["state_dict"][name].fill_(float("nan"))
    torch.save(data, ckpt)
    assert main([str(ckpt), "-o", str(tmp_path / "m.safetensors")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {ckpt}: the weights are not finite: tensor '{name.removeprefix('net.')}'")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "m.safetensors").exists()


def test_empty_paths_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny) -> None:
    ckpt = tiny.checkpoint(tmp_path / "t.ckpt")
    for args in ([str(ckpt), "-o", ""], [""]):
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 2 and "must not be empty" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.ckpt"]
