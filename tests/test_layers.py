"""Dependencies point one way: the schema imports no ORM model, and models know nothing of GraphQL."""

from __future__ import annotations

import ast
from pathlib import Path

HUB = Path(__file__).resolve().parent.parent / "hub"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _offenders(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in sorted((HUB / folder).rglob("*.py")):
        bad = sorted(
            n for n in _imports(path) if n.startswith(forbidden) or n in {f"hub.{f}" for f in forbidden}
        )
        if bad:
            found[str(path.relative_to(HUB.parent))] = bad
    return found


def test_the_schema_imports_no_orm_model() -> None:
    assert _offenders("schema", ("hub.models", "tortoise")) == {}


def test_models_import_no_graphql() -> None:
    assert _offenders("models", ("strawberry", "graphql", "hub.schema")) == {}
