"""The install CI and the README run: every dependency pinned in ``constraints.txt``, within the
range ``pyproject.toml`` allows, so that a fresh machine installs what the suite passed with."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
#: Pinned by pyproject.toml itself: the CPU build on this project's machines.
PINNED_IN_PROJECT = {"torch"}


def pins(text: str) -> dict[str, Version]:
    """``name==version`` lines of a constraints file, by canonical name."""
    out: dict[str, Version] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert match, f"not a pin: {line!r}"
        out[canonicalize_name(match[1])] = Version(match[2])
    return out


def requirements() -> list[Requirement]:
    """What the project and its extras ask for, the project's own extras left out."""
    asked = [*PROJECT["dependencies"]]
    for extra in PROJECT["optional-dependencies"].values():
        asked += extra
    found = [Requirement(text) for text in asked]
    return [r for r in found if canonicalize_name(r.name) != canonicalize_name(PROJECT["name"])]


def test_every_dependency_is_pinned_within_its_range() -> None:
    pinned = pins((ROOT / "constraints.txt").read_text(encoding="utf-8"))
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        if name in PINNED_IN_PROJECT:
            assert str(requirement.specifier).startswith("=="), requirement
            assert name not in pinned, f"{name} is pinned in pyproject.toml; one place only"
            continue
        assert name in pinned, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {requirement.name} {pinned[name]}, outside {requirement}"
        )


def test_a_constraints_file_line_that_is_not_a_pin_is_refused() -> None:
    assert pins("# header\nnumpy==2.4.6  # why\n\n") == {"numpy": Version("2.4.6")}
    for bad in ("numpy>=2", "-e .", "numpy"):
        with pytest.raises(AssertionError, match="not a pin"):
            pins(bad)


def test_ci_and_readme_install_with_the_constraints() -> None:
    command = 'pip install -c constraints.txt -e ".[dev]" && pytest -n 2'
    assert command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert command in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_shipped_model_is_package_data() -> None:
    # An installed wheel holds only the files package-data names: a model missing there
    # would be found by editable installs and nowhere else.
    from fnmatch import fnmatch

    from qa_bot import settings

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["qa_bot"]
    package = ROOT / "src" / "qa_bot"
    shipped = [getattr(settings, n) for n in dir(settings) if n.startswith("PACKAGED_")]
    files = [f for p in shipped for f in (sorted(p.iterdir()) if p.is_dir() else [p])]
    assert len(files) >= 5
    for file in files:
        name = file.relative_to(package).as_posix()
        assert any(fnmatch(name, pattern) for pattern in patterns), name
