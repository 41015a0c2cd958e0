"""The docstring examples of the main public classes run and give what they show (part of ``make test``).

Each module's examples run with :func:`doctest.testmod`; a module whose examples disappeared fails too, as does a
listed class without any. The core modules' examples are also run in a fresh interpreter that must not import any
framework package: ``inpaint.nn``, ``inpaint.models`` and ``inpaint.losses`` need torch and torchvision only.
"""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import pytest

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


@pytest.mark.parametrize("module_name", sorted(DOCTESTED))
def test_docstring_examples_pass(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=OPTIONFLAGS, verbose=False, report=True)
    assert result.attempted > 0, f"{module_name} has no docstring examples"
    assert result.failed == 0, (
        f"{result.failed} of {result.attempted} examples failed in {module_name} (see stdout)"
    )


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
