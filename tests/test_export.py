"""Weights-only export (safetensors) and the optional torch.export program."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inpaint import Inpainter
from inpaint.checkpoint import load_model
from inpaint.export import export_program, main


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

    ckpt = tiny.checkpoint(tmp_path / "t.ckpt")
    if how == "read_only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        folder = tmp_path / "ro"
        folder.mkdir(mode=0o555)
        out = folder / "model.safetensors"
    else:
        (tmp_path / "a_file").write_text("x")
        out = tmp_path / "a_file" / "sub" / "model.safetensors"
    assert main([str(ckpt), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write the export: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
