"""inpaint.runs: the one search for run checkpoints, and the two policies on it (the default model; ``ckpt_path=last``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from inpaint.runs import find_latest_checkpoint, last_checkpoints, project_root


def _ckpt(path: Path, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, (mtime, mtime))
    return path


def test_last_checkpoints_newest_first_excluding_a_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    a = _ckpt(runs / "a" / "checkpoints" / "last.ckpt", 1000)
    b = _ckpt(runs / "b" / "checkpoints" / "last.ckpt", 3000)
    c = _ckpt(runs / "c" / "checkpoints" / "last.ckpt", 2000)
    _ckpt(runs / "c" / "checkpoints" / "epoch=1.ckpt", 9000)  # not a run's last checkpoint
    (runs / "d" / "checkpoints" / "last.ckpt").mkdir(parents=True)  # a folder of that name is no checkpoint
    assert last_checkpoints(runs) == [b, c, a]  # by the time written, not by name
    assert last_checkpoints(runs, exclude=runs / "b") == [c, a]
    assert last_checkpoints(tmp_path) == []  # runs/<run>/... is one level too deep without nested
    assert last_checkpoints(tmp_path, nested=True) == [b, c, a]
    assert last_checkpoints(tmp_path / "missing") == []


def test_find_latest_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make train"):
        find_latest_checkpoint(tmp_path)
    for i, run in enumerate(["b", "a"]):
        _ckpt(tmp_path / "train" / "runs" / run / "checkpoints" / "last.ckpt", 1000 + i)
    assert find_latest_checkpoint(tmp_path).parts[-3] == "a"


def test_find_latest_checkpoint_names_other_experiments_but_never_picks_them(tmp_path: Path) -> None:
    smoke = _ckpt(tmp_path / "smoke" / "runs" / "x" / "checkpoints" / "last.ckpt", 2000)
    _ckpt(tmp_path / "multirun" / "s" / "0" / "checkpoints" / "last.ckpt", 1000)
    with pytest.raises(
        FileNotFoundError, match=r"2 checkpoint\(s\) of other experiments .* the newest: "
    ) as e:
        find_latest_checkpoint(tmp_path)
    assert str(smoke) in str(e.value)


def test_project_root_is_found_from_a_subdirectory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny
) -> None:
    project = tmp_path / "proj"
    (project / "conf").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (project / "notebooks").mkdir()
    monkeypatch.delenv("INPAINT_PROJECT_DIR", raising=False)
    monkeypatch.chdir(project / "notebooks")  # where a notebook's kernel runs
    assert project_root() == project.resolve()
    ckpt = tiny.checkpoint(project / "outputs" / "train" / "runs" / "a" / "checkpoints" / "last.ckpt")
    assert find_latest_checkpoint().samefile(ckpt)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("INPAINT_PROJECT_DIR", str(elsewhere))
    assert project_root() == elsewhere.resolve()
    with pytest.raises(FileNotFoundError, match="INPAINT_PROJECT_DIR"):
        find_latest_checkpoint()


def test_every_tool_finds_checkpoints_through_the_one_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The evaluation, the page and ``ckpt_path=last`` all search with :func:`last_checkpoints`: with it replaced,
    each of them finds what the replacement says."""
    import inpaint.runs
    from inpaint.app import resolve_checkpoint
    from inpaint.evaluation.cli import chosen_checkpoint
    from inpaint.training import run

    planted = tmp_path / "planted.ckpt"
    searched: list[Path] = []

    def search(runs: str | os.PathLike[str], **kwargs: object) -> list[Path]:
        searched.append(Path(runs))
        return [planted]

    monkeypatch.setattr(inpaint.runs, "last_checkpoints", search)
    monkeypatch.setattr(run, "last_checkpoints", search)
    monkeypatch.setenv("INPAINT_PROJECT_DIR", str(tmp_path))
    assert chosen_checkpoint(None) == planted
    assert resolve_checkpoint(None, tmp_path / "outputs") == planted
    assert run.resolve_ckpt_path("last", tmp_path / "runs" / "new") == str(planted)
    assert searched == [tmp_path / "outputs" / "train" / "runs"] * 2 + [tmp_path / "runs"]
