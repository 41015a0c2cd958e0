"""Fixed evaluation mask sets: the make_eval_masks command, its index file, reproducibility and reading back."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from inpaint.data.masks.factory import build_mask_sampler
from inpaint.data.masks.make_eval_masks import main as make_eval_masks
from inpaint.data.masks.nvidia import MaskLayoutError
from inpaint.data.masks.ratio import BIN_NAMES, hole_ratio_bin
from inpaint.data.masks.sets import load_mask_set, write_eval_mask_set


def _rows(index):
    with open(index, newline="") as fh:
        return list(csv.DictReader(fh))


def test_cli_writes_pngs_and_index_in_bins(tmp_path):
    out = tmp_path / "eval"
    assert make_eval_masks(["--out", str(out), "--per-bin", "3", "--size", "64", "--seed", "5"]) == 0
    rows = _rows(out / "index.csv")
    assert len(rows) == 3 * len(BIN_NAMES)
    assert {r["bin_name"] for r in rows} == set(BIN_NAMES)
    for r in rows:
        png = np.asarray(Image.open(out / r["file"]))
        assert png.shape == (64, 64) and set(np.unique(png)) <= {0, 255}
        ratio = float((png == 255).mean())  # user-facing polarity on disk: white = hole
        assert abs(ratio - float(r["hole_ratio"])) < 1e-6
        assert int(hole_ratio_bin(ratio)) == int(r["bin"])


def test_same_arguments_same_files_other_seed_other_files(tmp_path):
    sampler = build_mask_sampler("lama_medium")
    a = write_eval_mask_set(tmp_path / "a", sampler, per_bin=2, size=48, seed=1, bins=[0, 5])
    b = write_eval_mask_set(tmp_path / "b", sampler, per_bin=2, size=48, seed=1, bins=["01-10", "50-60"])
    write_eval_mask_set(tmp_path / "c", sampler, per_bin=2, size=48, seed=2, bins=[0, 5])
    files = [r["file"] for r in _rows(a)]
    assert files == [r["file"] for r in _rows(b)]
    same = [(tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files]
    other = [(tmp_path / "a" / f).read_bytes() == (tmp_path / "c" / f).read_bytes() for f in files]
    assert all(same) and not all(other)


def test_load_back_in_internal_polarity(tmp_path):
    write_eval_mask_set(tmp_path, build_mask_sampler("mixed"), per_bin=2, size=32, seed=0)
    full = load_mask_set(tmp_path)
    assert len(full) == 12 and full.polarity == "white_hole"
    item = full[0]
    assert item["mask"].shape == (1, 32, 32)
    assert abs((1.0 - float(item["mask"].mean())) - item["hole_ratio"]) < 1e-6  # 0 = hole inside
    sub = load_mask_set(tmp_path / "index.csv", bins=["20-30"])
    assert len(sub) == 2 and {e.bin for e in sub.entries} == {2}
    with pytest.raises(MaskLayoutError, match="index.csv"):
        load_mask_set(tmp_path / "20-30")


@pytest.mark.slow  # a fresh interpreter importing torch: ~5 s on a busy 2-core machine
def test_module_runs_as_a_command(tmp_path):
    out = tmp_path / "m"
    cmd = [
        sys.executable,
        "-m",
        "inpaint.data.masks.make_eval_masks",
        "--out",
        str(out),
        "--per-bin",
        "1",
        "--size",
        "32",
    ]
    cmd += ["--generator", "lama_thick", "--bins", "0", "50-60"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    assert [r["bin_name"] for r in _rows(out / "index.csv")] == ["01-10", "50-60"]


def _unwritable(tmp_path, how):
    import os

    if how == "read_only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        folder = tmp_path / "ro"
        folder.mkdir(mode=0o555)
        return folder / "masks"
    (tmp_path / "a_file").write_text("x")
    return tmp_path / "a_file" / "masks"


@pytest.mark.parametrize("how", ["file_in_path", "read_only"])
def test_cli_unwritable_output_is_one_clear_line(tmp_path, capsys, how):
    out = _unwritable(tmp_path, how)
    assert make_eval_masks(["--out", str(out), "--per-bin", "1", "--size", "32"]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: cannot write the mask set to {out}: ") and len(err.strip().splitlines()) == 1
    )


def test_cli_bad_config_and_sizes_are_one_clear_line(tmp_path, capsys):
    out = str(tmp_path / "m")
    assert make_eval_masks(["--out", out, "--per-bin", "1", "--size", "32", "--config", "missing.yaml"]) == 1
    assert "cannot read --config missing.yaml" in capsys.readouterr().err
    assert make_eval_masks(["--out", out, "--per-bin", "0", "--size", "32"]) == 1
    assert "need per_bin >= 1" in capsys.readouterr().err


def test_written_set_leaves_no_temporary_files(tmp_path):
    out = tmp_path / "m"
    assert make_eval_masks(["--out", str(out), "--per-bin", "2", "--size", "32", "--bins", "0"]) == 0
    assert sorted(p.name for p in out.rglob("*")) == [
        "01-10",
        "01-10_00000.png",
        "01-10_00001.png",
        "index.csv",
    ]
