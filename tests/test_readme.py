"""The README's GraphQL is what a newcomer pastes into GraphiQL: every block must validate against the schema.

Each ```graphql block (of the README and of the docs), and each query the README's curl examples send, is
parsed and validated against schema.graphql (which another test keeps equal to the code); a ```json block
right after a block that declares variables must be valid variables for it. The README's links to files in
the repository, and their anchors, must exist, and its command table must name every `hub` command and option.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
from graphql import build_schema, parse, validate
from graphql.error import GraphQLError
from graphql.execution.values import get_variable_values
from graphql.language import OperationDefinitionNode

from hub.cli import parser

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]


def _blocks(name: str = "README.md") -> list[tuple[int, str, str]]:
    text = (ROOT / name).read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def _graphql_blocks(name: str = "README.md") -> list[tuple[int, str, str | None]]:
    """(line, document, the JSON block that follows it, if any)."""
    blocks = _blocks(name)
    found = []
    for i, (line, lang, body) in enumerate(blocks):
        if lang != "graphql":
            continue
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        variables = following[2] if following and following[1] == "json" else None
        found.append((line, body, variables))
    return found


def _curl_documents() -> list[tuple[int, str, str | None]]:
    """The queries the ```sh blocks send with curl: `-d '{"query": ...}'` bodies and `query=` parameters."""
    found = []
    for line, lang, body in _blocks():
        if lang != "sh":
            continue
        for m in re.finditer(r"-d '(\{.*?\})'", body, re.DOTALL):
            request = json.loads(m.group(1))
            variables = json.dumps(request["variables"]) if "variables" in request else None
            found.append((line + body.count("\n", 0, m.start()), request["query"], variables))
        for m in re.finditer(r"--data-urlencode 'query=(.*?)'", body):
            found.append((line + body.count("\n", 0, m.start()), m.group(1), None))
    return found


SCHEMA = build_schema((ROOT / "schema.graphql").read_text())
GRAPHQL_BLOCKS = _graphql_blocks()
CURL_DOCUMENTS = _curl_documents()
CASES = [pytest.param(*block, id=f"README.md:{block[0]}") for block in GRAPHQL_BLOCKS + CURL_DOCUMENTS] + [
    pytest.param(*block, id=f"{name}:{block[0]}") for name in DOCUMENTS[1:] for block in _graphql_blocks(name)
]


def test_the_readme_has_graphql_blocks() -> None:
    # Guards the extraction itself: a changed fence style must not make the checks below vacuous.
    assert len(GRAPHQL_BLOCKS) > 50
    assert len(CURL_DOCUMENTS) >= 3


@pytest.mark.parametrize(("line", "document", "variables"), CASES)
def test_readme_graphql_validates(line: int, document: str, variables: str | None) -> None:
    try:
        ast = parse(document)
    except GraphQLError as error:
        pytest.fail(f"line {line}: {error.message}")
    errors = validate(SCHEMA, ast)
    assert not errors, f"line {line}: " + "; ".join(e.message for e in errors)
    operations = [d for d in ast.definitions if isinstance(d, OperationDefinitionNode)]
    declared = [op for op in operations if op.variable_definitions]
    if variables is None or not declared:
        return
    coerced = get_variable_values(SCHEMA, declared[0].variable_definitions, json.loads(variables))
    assert not isinstance(coerced, list), f"line {line}: " + "; ".join(e.message for e in coerced)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_links_reach_files_and_headings() -> None:
    broken = []
    for link in re.findall(r"\]\(([^)]+)\)", (ROOT / "README.md").read_text()):
        if link.startswith(("http://", "https://", "../")):
            continue  # the web, and the guides beside the repository (shared/)
        path, _, anchor = link.partition("#")
        target = ROOT / (path or "README.md")
        if not target.exists():
            broken.append(link)
        elif anchor and target.is_file():
            headings = re.findall(r"^#+ (.*)$", target.read_text(), re.MULTILINE)
            if anchor not in {_slug(h) for h in headings}:
                broken.append(link)
    assert broken == []


def _commands(p: argparse.ArgumentParser, prefix: str = "hub") -> dict[str, list[str]]:
    """Every `hub` command (`hub keys create`, ...) and its options."""
    found = {}
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= _commands(sub, f"{prefix} {name}")
    if prefix != "hub" and not any(isinstance(a, argparse._SubParsersAction) for a in p._actions):
        found[prefix] = [
            o for a in p._actions for o in a.option_strings if o.startswith("--") and o != "--help"
        ]
    return found


def _command_words(cell: str) -> str:
    """`hub keys rotate ID [--grace SECONDS]` -> `hub keys rotate`."""
    words = []
    for word in cell.split():
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        words.append(word)
    return " ".join(words)


def test_readme_command_table_names_every_command_and_option() -> None:
    cells = re.findall(r"^\| `(hub [^`]+)` \|", (ROOT / "README.md").read_text(), re.MULTILINE)
    rows = {_command_words(cell): cell for cell in cells}
    missing = {
        command: [o for o in options if o not in rows.get(command, "")]
        for command, options in _commands(parser()).items()
    }
    assert {c: o for c, o in missing.items() if o or c not in rows} == {}
