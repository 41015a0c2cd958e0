"""``python -m inpaint.evaluate`` as a user runs it: which checkpoint it picks, one clear line for every ordinary
mistake (exit status 1, no traceback), nothing written where it was not asked, and the full trace for developers with
``HYDRA_FULL_ERROR=1``.

Most cases call the module's ``main()`` in this process (Hydra composes afresh each time, so a case costs well under a
second); the ones about the process itself (the working directory, the environment variable) run it as a subprocess.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# A tiny, fast evaluation: two images, no baselines or perceptual metrics.
FAST = ["max_images=2", "baselines=[]", "lpips=off", "fid=off", "progress=false", "num_examples=1"]


def _evaluate(
    args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """Run ``inpaint.evaluate.main()`` with ``args`` in ``cwd``; returns (exit status, stdout + stderr)."""
    from inpaint.evaluate import main

    monkeypatch.chdir(cwd)
    monkeypatch.setenv("INPAINT_PROJECT_DIR", str(cwd))
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr(sys, "argv", ["inpaint-evaluate", *args])
    try:
        main()
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capfd.readouterr()
    return code, out + err


def _error_line(output: str) -> str:
    """The one error line of a failed run (the log's ERROR line, or an ``error:`` line)."""
    lines = [line for line in output.splitlines() if "[ERROR]" in line or line.startswith("error: ")]
    assert len(lines) == 1, output
    return lines[0]


def _no_traceback(output: str) -> None:
    assert "Traceback" not in output and "Set the environment variable HYDRA_FULL_ERROR" not in output, output


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project directory (as after a fresh clone) that the run treats as its root."""
    root = tmp_path / "my project"
    root.mkdir()
    return root


def test_without_ckpt_path_and_without_a_trained_model_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tiny
) -> None:
    # The installation check's model exists, the default experiment's does not: it is named, not used.
    smoke = tiny.checkpoint(project / "outputs/smoke/runs/2026-01-01/checkpoints/last.ckpt")
    code, output = _evaluate([f"output_dir={project / 'eval'}", *FAST], project, monkeypatch, capfd)
    assert code == 1
    _no_traceback(output)
    line = _error_line(output)
    assert "no checkpoint of the default experiment (train/runs/*/checkpoints/last.ckpt)" in line
    assert str(smoke) in line and "make train" in line and "ckpt_path=" in line
    assert "MissingMandatoryValue" not in output


def test_without_ckpt_path_the_newest_default_run_is_used_and_named(
    project: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tiny
) -> None:
    older = tiny.checkpoint(project / "outputs/train/runs/a/checkpoints/last.ckpt", seed=1)
    newer = tiny.checkpoint(project / "outputs/train/runs/b/checkpoints/last.ckpt", seed=2)
    smoke = tiny.checkpoint(project / "outputs/smoke/runs/c/checkpoints/last.ckpt", seed=3)
    for i, path in enumerate((older, newer, smoke)):  # the smoke run is the newest of all
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    out_dir = project / "eval"
    code, output = _evaluate([f"output_dir={out_dir}", *FAST], project, monkeypatch, capfd)
    assert code == 0, output
    assert f"checkpoint: {newer} (the newest run of the default experiment" in output
    assert str(smoke) not in output
    assert str(newer) in (out_dir / "metrics.json").read_text()


def test_random_bytes_as_checkpoint_one_line_with_a_reason(
    project: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    junk = project / "model.ckpt"
    junk.write_bytes(os.urandom(4096))
    code, output = _evaluate(
        [f"ckpt_path={junk}", f"output_dir={project / 'eval'}"], project, monkeypatch, capfd
    )
    assert code == 1
    _no_traceback(output)
    line = _error_line(output)
    assert f"cannot read checkpoint {junk}: not a zip archive, pickle or safetensors file" in line
    assert "expected a Lightning .ckpt" in line and not line.rstrip().endswith(":")
    assert "mmap" not in output and "weights_only=False" not in output and "Unsupported operand" not in output


class _Payload:
    """Unpickles to a call of ``open(path, "w")``: it would create ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


@pytest.mark.parametrize("how", ["pickle_dump", "torch_save"])
def test_pickle_payload_as_checkpoint_is_refused_in_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], how: str
) -> None:
    marker = project / "pwned.txt"
    evil = project / "evil.ckpt"
    if how == "pickle_dump":
        evil.write_bytes(pickle.dumps(_Payload(marker)))
    else:
        torch.save({"state_dict": {}, "payload": _Payload(marker)}, evil)
    code, output = _evaluate(
        [f"ckpt_path={evil}", f"output_dir={project / 'eval'}"], project, monkeypatch, capfd
    )
    assert code == 1 and not marker.exists()
    _no_traceback(output)
    line = _error_line(output)
    assert str(evil) in line
    assert "refusing to load" in line or "a Python pickle that is not a torch.save checkpoint" in line
    assert "weights_only=False" not in output and "trusted source" not in output


def test_non_finite_weights_no_nan_table(
    project: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tiny
) -> None:
    ckpt = tiny.checkpoint(project / "nan.ckpt")
    data = torch.load(ckpt, weights_only=True)
    name = next(k for k in data["state_dict"] if k.endswith("conv.weight"))
    data["state_dict"][name].view(-1)[0] = float("nan")
    torch.save(data, ckpt)
    code, output = _evaluate(
        [f"ckpt_path={ckpt}", f"output_dir={project / 'eval'}", *FAST], project, monkeypatch, capfd
    )
    assert code == 1
    _no_traceback(output)
    line = _error_line(output)
    assert f"the weights are not finite: tensor '{name.removeprefix('net.')}' holds 1 NaN" in line
    assert "| PConv" not in output and "nan" not in output.replace(str(ckpt), "")
    assert not (project / "eval" / "metrics.json").exists()


@pytest.mark.parametrize(
    "override, expected",
    [
        ("batch_size=0", "batch_size=0: expected a whole number of at least 1"),
        ("num_workers=-1", "num_workers=-1: expected a whole number of at least 0"),
        ("split=train", "split=train: expected one of test, val"),
        ("device=gpu0", "device=gpu0:"),
        ("device=cuda:7", "device=cuda:7: this machine has"),
        ("data=places2", "places2: no root given"),
    ],
)
def test_ordinary_mistakes_are_one_line(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    tiny,
    override: str,
    expected: str,
) -> None:
    ckpt = tiny.checkpoint(project / "t.ckpt")
    code, output = _evaluate(
        [f"ckpt_path={ckpt}", f"output_dir={project / 'eval'}", override], project, monkeypatch, capfd
    )
    assert code == 1
    _no_traceback(output)
    assert expected in _error_line(output)


def test_output_dir_with_spaces_and_non_ascii_quoted_for_hydra(
    project: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tiny
) -> None:
    """The quoting docs/evaluation.md gives works, and the run writes only there (not under outputs/evaluate/)."""
    ckpt = tiny.checkpoint(project / "t.ckpt")
    out_dir = project / "résultats d'essai"
    quoted = "'" + str(out_dir).replace("'", "\\'") + "'"
    code, output = _evaluate(
        [f"ckpt_path={ckpt}", f"output_dir={quoted}", *FAST], project, monkeypatch, capfd
    )
    assert code == 0, output
    assert (out_dir / "metrics.md").is_file() and (out_dir / "evaluate.log").is_file()
    assert not (project / "outputs").exists()


def test_unquoted_non_ascii_path_says_how_to_quote_it(
    project: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    out_dir = project / "été"
    code, output = _evaluate([f"output_dir={out_dir}"], project, monkeypatch, capfd)
    assert code == 1
    _no_traceback(output)
    line = _error_line(output)
    assert f"cannot read the argument 'output_dir={out_dir}'" in line
    assert f"write it as \"output_dir='{out_dir}'\"" in line  # what the test above shows to work
    assert not out_dir.exists() and not (project / "outputs").exists()


def test_unwritable_output_dir_is_one_line_and_creates_nothing_here(
    project: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tiny
) -> None:
    from tests.disks import read_only_dir

    ckpt = tiny.checkpoint(project / "t.ckpt")
    (project / "photo.jpg").write_bytes(b"x")
    with read_only_dir(project / "ro") as ro:
        for out_dir, reason in (
            (project / "photo.jpg" / "eval", "photo.jpg is a file, not a folder"),
            (ro / "eval", "Read-only file system" if os.geteuid() == 0 else "Permission denied"),
        ):
            code, output = _evaluate(
                [f"ckpt_path={ckpt}", f"output_dir={out_dir}"], project, monkeypatch, capfd
            )
            assert code == 1
            _no_traceback(output)
            line = _error_line(output)
            assert f"cannot write the report to output_dir={out_dir}" in line and reason in line
    assert sorted(p.name for p in project.iterdir()) == ["photo.jpg", "ro", "t.ckpt"]


@pytest.mark.slow
def test_subprocess_failure_leaves_no_run_dir_in_cwd_and_full_error_shows_the_trace(
    project: Path, tiny
) -> None:
    ckpt = tiny.checkpoint(project / "nan.ckpt")
    data = torch.load(ckpt, weights_only=True)
    next(iter(data["state_dict"].values())).view(-1)[0] = float("inf")
    torch.save(data, ckpt)
    cmd = [sys.executable, "-m", "inpaint.evaluate", f"ckpt_path={ckpt}", f"output_dir={project / 'eval'}"]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    _no_traceback(proc.stdout + proc.stderr)
    assert "the weights are not finite" in _error_line(proc.stdout + proc.stderr)
    assert not (project / "outputs").exists()  # Hydra's run directory is the output_dir, also on failure

    proc = subprocess.run(
        cmd, cwd=project, env={**env, "HYDRA_FULL_ERROR": "1"}, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "NonFiniteWeightsError" in proc.stderr
