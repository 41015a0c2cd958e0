"""Every public name and command the README and the manual (docs/*.md) show exists.

They are parsed at test time, so a renamed class or module fails here instead of in a user's shell:

- every ``from inpaint... import X, Y`` imports;
- every ``python -m inpaint.X`` module imports and has a ``main`` or an ``if __name__ == "__main__":`` block;
- every dotted name in backquotes (```inpaint.models.PConvUNet```) resolves to a module or an attribute.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
# Packages of optional extras (pyproject's `app`): a module that needs one is skipped where it is missing.
OPTIONAL_PACKAGES = {"gradio"}

_FROM_IMPORT = re.compile(
    r"^\s*from\s+(inpaint(?:\.\w+)*)\s+import\s+([\w\s,()]+?)\s*(?:#.*)?$", re.MULTILINE
)
_PYTHON_M = re.compile(r"python\s+-m\s+(inpaint(?:\.\w+)*)")
_DOTTED = re.compile(r"`(inpaint(?:\.\w+)+)(?:\(\))?`")


def _readme() -> str:
    """The README and every page of docs/, one text."""
    pages = [README, *sorted((README.parent / "docs").glob("*.md"))]
    return "\n".join(p.read_text(encoding="utf-8") for p in pages)


def readme_imports() -> list[tuple[str, str]]:
    """``(module, name)`` for every ``from inpaint... import name`` in the README, in order, without repeats."""
    found: dict[tuple[str, str], None] = {}
    for module, names in _FROM_IMPORT.findall(_readme()):
        for name in names.replace("(", " ").replace(")", " ").split(","):
            name = name.split(" as ")[0].strip()
            if name:
                found[(module, name)] = None
    return list(found)


def readme_commands() -> list[str]:
    """Every module run as ``python -m inpaint...`` in the README."""
    return list(dict.fromkeys(_PYTHON_M.findall(_readme())))


def readme_dotted_names() -> list[str]:
    """Every ```inpaint.x.y``` the README names in backquotes."""
    return list(dict.fromkeys(_DOTTED.findall(_readme())))


def _import(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name in OPTIONAL_PACKAGES:
            pytest.skip(f"{module_name} needs the optional package {e.name}")
        raise


def _resolve(dotted: str) -> object:
    """The module, or the attribute of the longest importable module prefix, that ``dotted`` names."""
    parts = dotted.split(".")
    obj = _import(parts[0])
    for i, attr in enumerate(parts[1:], start=2):
        # An attribute, or a submodule not imported yet; neither is the failure (ModuleNotFoundError).
        obj = getattr(obj, attr) if hasattr(obj, attr) else _import(".".join(parts[:i]))
    return obj


def test_readme_lists_imports_and_commands() -> None:
    assert readme_imports(), "no `from inpaint... import ...` found in README.md"
    assert readme_commands(), "no `python -m inpaint...` found in README.md"
    assert readme_dotted_names(), "no `inpaint.x` names found in README.md"
    # The two the README's examples rely on.
    assert ("inpaint", "Inpainter") in readme_imports()
    assert "inpaint.train" in readme_commands()


@pytest.mark.parametrize(("module_name", "name"), readme_imports())
def test_readme_import(module_name: str, name: str) -> None:
    module = _import(module_name)
    assert hasattr(module, name), f"`from {module_name} import {name}` (README.md) fails"


@pytest.mark.parametrize("module_name", readme_commands())
def test_readme_command_module(module_name: str) -> None:
    module = _import(module_name)
    source = Path(module.__file__).read_text(encoding="utf-8")
    runnable = callable(getattr(module, "main", None)) or re.search(
        r"""^if __name__ == ["']__main__["']:""", source, re.MULTILINE
    )
    assert runnable, f"`python -m {module_name}` (README.md) has neither main() nor a __main__ block"


@pytest.mark.parametrize("dotted", readme_dotted_names())
def test_readme_dotted_name(dotted: str) -> None:
    _resolve(dotted)


def test_evaluate_is_the_command_line_and_evaluation_the_library() -> None:
    import inpaint.evaluate as command
    from inpaint.evaluation import evaluate

    assert callable(evaluate) and callable(command.main)
    # The command line re-exports nothing: the library's names have one home, inpaint.evaluation.
    assert not {"evaluate", "run", "EvaluationReport", "find_latest_checkpoint"} & set(vars(command))


def test_the_distribution_is_not_the_unrelated_inpaint_on_the_index() -> None:
    """``pip install inpaint`` installs someone else's project; ours is ``pconv-inpaint`` and provides ``inpaint``."""
    import tomllib
    from importlib.metadata import PackageNotFoundError, distribution

    pyproject = tomllib.loads((README.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "pconv-inpaint"
    assert "pip install -e '.[dev]'" in _readme() or "pip install -e ." in _readme()
    try:
        dist = distribution("pconv-inpaint")
    except PackageNotFoundError:
        pytest.skip("pconv-inpaint is not installed in this environment (running from a source tree)")
    assert dist.metadata["Name"] == "pconv-inpaint"
