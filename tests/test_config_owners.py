"""Each default has one owner, and a config file states only what differs from what its defaults give.

- The experiments: no key of an experiment file (or of the blocks they share, ``experiment/common/``) can be deleted
  without changing the composed config (checked key by key on a copy of ``conf/``); the phase-2 settings of the paper
  live in ``experiment/common/finetune.yaml`` alone.
- The loss: the paper's weights are ``inpaint.losses.PAPER_WEIGHTS``, included by name (``loss/weights: paper``),
  never restated in YAML, and still overridden as ``loss.weights.<term>=...``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from inpaint.config import CONF_DIR
from inpaint.losses import PAPER_WEIGHTS

EXPERIMENT_DIR = CONF_DIR / "experiment"
EXPERIMENTS = sorted(p.stem for p in EXPERIMENT_DIR.glob("*.yaml"))
# Values every experiment needs to run (no other file gives them) or that are its identity.
REQUIRED = {"task_name"}


def _compose(conf_dir: Path, overrides: list[str]) -> dict:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    plain = OmegaConf.to_container(cfg, resolve=False)
    plain.pop("hydra", None)
    return plain


def _leaves(node: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        out += _leaves(value, f"{path}.") if isinstance(value, dict) and value else [path]
    return out


def _without(node: dict, dotted: str) -> dict:
    """A copy of ``node`` without the leaf ``dotted`` (and without mappings it leaves empty)."""
    head, _, rest = dotted.partition(".")
    copy = dict(node)
    if rest:
        copy[head] = _without(copy[head], rest)
        if not copy[head]:
            del copy[head]
    else:
        del copy[head]
    return copy


def _experiment_overrides(name: str) -> list[str]:
    overrides = [f"+experiment={name}", "data.root=/x"]
    return overrides + (["masks.root=/x"] if "paper" in name else [])


# Each experiment file, and each shared block with an experiment that includes it.
CASES = [(f"{name}.yaml", name) for name in EXPERIMENTS] + [
    ("common/paper.yaml", "places2"),
    ("common/finetune.yaml", "places2_finetune"),
]


@pytest.mark.parametrize(("file", "experiment"), CASES)
def test_experiment_states_only_what_differs(file: str, experiment: str, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    path = conf / "experiment" / file
    text = path.read_text()
    raw = yaml.safe_load(text)
    own = {k: v for k, v in raw.items() if k != "defaults"}
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("# @package"))
    defaults = {"defaults": raw["defaults"]} if "defaults" in raw else {}
    reference = _compose(conf, _experiment_overrides(experiment))
    redundant = []
    for leaf in _leaves(own):
        if leaf in REQUIRED:
            continue
        path.write_text(header + yaml.safe_dump({**defaults, **_without(own, leaf)}, sort_keys=False))
        if _compose(conf, _experiment_overrides(experiment)) == reference:
            redundant.append(leaf)
    assert not redundant, f"experiment/{file} restates what its defaults give: {', '.join(redundant)}"


def test_phase_two_is_stated_once() -> None:
    for name in EXPERIMENTS:
        raw = yaml.safe_load((EXPERIMENT_DIR / f"{name}.yaml").read_text())
        assert "finetune" not in (raw.get("model") or {}), f"{name}.yaml restates the phase-2 block"
        assert ("common/finetune" in raw["defaults"]) == name.endswith("_finetune"), name
    for name in (n for n in EXPERIMENTS if n.endswith("_finetune")):
        model = _compose(CONF_DIR, _experiment_overrides(name))["model"]
        assert (model["lr"], model["finetune"], model["init_from"]) == (5.0e-5, True, None), name


def test_loss_configs_do_not_restate_the_paper_weights() -> None:
    default = yaml.safe_load((CONF_DIR / "loss" / "default.yaml").read_text())
    assert "weights" not in default and {"weights": "paper"} in default["defaults"]
    l1 = yaml.safe_load((CONF_DIR / "loss" / "l1.yaml").read_text())
    assert set(l1["weights"].values()) == {0.0}  # only the terms it switches off
    composed = _compose(CONF_DIR, ["loss=default"])["loss"]["weights"]
    assert composed == PAPER_WEIGHTS and list(composed) == list(PAPER_WEIGHTS)
    l1_weights = _compose(CONF_DIR, ["loss=l1"])["loss"]["weights"]
    assert {k: v for k, v in l1_weights.items() if v} == {"valid": 1.0, "hole": 6.0}


def test_a_paper_weight_is_overridden_without_a_plus() -> None:
    # The documented override (and the sweeps' search space) addresses an existing key, not a new one.
    weights = _compose(CONF_DIR, ["loss=default", "loss.weights.tv=0", "loss.weights.hole=3"])["loss"][
        "weights"
    ]
    assert weights == {**PAPER_WEIGHTS, "tv": 0, "hole": 3}
