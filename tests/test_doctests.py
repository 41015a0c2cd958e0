"""The docstring examples: every module's run in ``make test``, the main public classes must have some, and the core
modules' run without any framework package.

``make test`` (plain ``pytest``) collects ``src/inpaint`` with ``--doctest-modules`` (``pyproject.toml``), so every
example in the package runs and a failing one fails the suite; the tests here check that this stays so, that the
listed public classes keep examples, and that the core modules' examples run in a fresh interpreter that must not
import any framework package: ``inpaint.nn``, ``inpaint.models`` and ``inpaint.losses`` need torch and torchvision only.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# module -> the public classes whose docstrings must hold runnable examples
DOCTESTED = {
    "inpaint.nn.partial_conv": ["PartialConv2d"],
    "inpaint.models.pconv_unet": ["PConvUNet"],
    "inpaint.losses.inpainting": ["InpaintingLoss"],
    "inpaint.inference": ["Inpainter"],
}
CORE = ("inpaint.nn.partial_conv", "inpaint.models.pconv_unet", "inpaint.losses.inpainting")
FRAMEWORK_PACKAGES = (
    "hydra",
    "omegaconf",
    "kornia",
    "pytorch_lightning",
    "lightning",
    "wandb",
    "albumentations",
)


def test_make_test_runs_every_docstring_example() -> None:
    """``make test`` runs plain ``pytest``: its configuration must collect the package's examples, with the option
    flags the examples are written for."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "src/inpaint" in config["testpaths"] and "tests" in config["testpaths"]
    assert "--doctest-modules" in config["addopts"].split()
    assert {doctest.OPTIONFLAGS_BY_NAME[f] for f in config["doctest_optionflags"]} == {
        doctest.ELLIPSIS,
        doctest.NORMALIZE_WHITESPACE,
    }
    makefile = (ROOT / "Makefile").read_text()
    assert "pytest $(PARALLEL) $(PYTEST_ARGS)" in makefile  # no paths that would bypass testpaths
    (parallel,) = [line for line in makefile.splitlines() if line.startswith("PARALLEL ?=")]
    assert "/" not in parallel and ".py" not in parallel  # workers and their grouping, no paths either


def _package_modules() -> list[str]:
    package = ROOT / "src" / "inpaint"
    return sorted(
        ".".join(p.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__")
        for p in package.rglob("*.py")
    )


def test_every_example_in_the_package_is_found() -> None:
    """A module whose source shows ``>>>`` has examples that doctest finds (not, say, in a comment or a nested
    function it never reaches), and it imports here, as pytest's collection imports it: without that, ``make test``
    would skip them without a word or stop at collection."""
    unfound = []
    for name in _package_modules():
        source = Path(importlib.util.find_spec(name).origin).read_text(encoding="utf-8")
        if ">>>" in source:
            found = doctest.DocTestFinder().find(importlib.import_module(name))
            if not any(t.examples for t in found):
                unfound.append(name)
    assert unfound == []


@pytest.mark.parametrize(("module_name", "cls"), [(m, c) for m, names in DOCTESTED.items() for c in names])
def test_public_class_has_examples(module_name: str, cls: str) -> None:
    module = importlib.import_module(module_name)
    tests = {t.name: t for t in doctest.DocTestFinder().find(module)}
    found = tests.get(f"{module_name}.{cls}")
    assert found is not None and found.examples, f"{module_name}.{cls} has no docstring examples"


def test_core_examples_need_no_framework_packages() -> None:
    code = (
        "import doctest, importlib, sys\n"
        f"for name in {CORE!r}:\n"
        f"    r = doctest.testmod(importlib.import_module(name), optionflags={int(OPTIONFLAGS)})\n"
        "    assert r.attempted > 0 and r.failed == 0, (name, r)\n"
        f"bad = [m for m in {FRAMEWORK_PACKAGES!r} if m in sys.modules]\n"
        "assert not bad, f'framework packages imported: {bad}'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
