"""The policy is declared once and used everywhere: every root field names an action of the table,
and docs/security.md shows the table as it is."""

from __future__ import annotations

from pathlib import Path

from hub import policy
from hub.schema.authorize import Authorize
from hub.schema.schema import build_schema

ROOT = Path(__file__).resolve().parents[2]


def _root_fields() -> dict[str, list[object]]:
    schema = build_schema()
    fields: dict[str, list[object]] = {}
    for root in ("Query", "Mutation", "Subscription"):
        definition = schema.get_type_by_name(root)
        for field in definition.fields:  # type: ignore[union-attr]
            fields[f"{root}.{field.graphql_name or field.name}"] = list(field.extensions)
    return fields


def test_every_root_field_declares_an_action_of_the_policy() -> None:
    undeclared = []
    for name, extensions in _root_fields().items():
        actions = [e.action for e in extensions if isinstance(e, Authorize)]
        if len(actions) != 1 or policy.POLICY.get(actions[0].name) is not actions[0]:
            undeclared.append(name)
    assert undeclared == [], "add Authorize(policy.<ACTION>) to these fields"


def test_the_security_page_shows_the_policy_table() -> None:
    page = (ROOT / "docs" / "security.md").read_text()
    assert policy.markdown_table() in page, "paste `python -m hub.policy` into docs/security.md"
