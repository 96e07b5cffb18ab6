"""A non-editable install (pip install ., the Dockerfile) must run: every third-party module the hub imports is
a declared runtime dependency (not only a dev one), and every file the hub serves is package data."""

from __future__ import annotations

import ast
import fnmatch
import sys
import tomllib
from importlib.metadata import packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
HUB = ROOT / "hub"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _imported_top_level_modules() -> set[str]:
    names: set[str] = set()
    for path in HUB.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "hub"}


def _runtime_closure() -> set[str]:
    """The distributions `pip install .` brings: the declared dependencies and theirs, extras included."""
    pending = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for line in requires(requirement.name) or []:
            sub = Requirement(line)
            active = sub.marker is None or any(
                sub.marker.evaluate({"extra": extra}) for extra in requirement.extras or {""}
            )
            if active:
                pending.append(sub)
    return seen


def test_every_imported_module_is_a_runtime_dependency() -> None:
    providers = packages_distributions()
    closure = _runtime_closure()
    missing = {
        module: providers.get(module, ["?"])
        for module in _imported_top_level_modules()
        if not any(canonicalize_name(d) in closure for d in providers.get(module, []))
    }
    assert missing == {}, "imported by hub/ but not installed by `pip install .`"


def test_time_zone_data_is_a_dependency() -> None:
    # Brands' days are computed with zoneinfo; slim images (python:3.11-slim) have no /usr/share/zoneinfo.
    declared = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    assert "tzdata" in declared


def test_every_served_file_is_package_data() -> None:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["hub"]
    files = [p.relative_to(HUB).as_posix() for p in (HUB / "console" / "static").rglob("*") if p.is_file()]
    assert len(files) > 20
    # setuptools globs like these do not cross "/" for "*", as fnmatch's does; compare segment counts too.
    unmatched = [
        f for f in files if not any(fnmatch.fnmatch(f, p) and f.count("/") == p.count("/") for p in patterns)
    ]
    assert unmatched == []


def test_migrations_are_a_package() -> None:
    # Tortoise loads hub.migrations by module name: without __init__.py, find_packages would leave them out.
    assert (HUB / "migrations" / "__init__.py").exists()
    assert PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"] == ["hub*"]
