"""JSON request bodies that cannot hurt: bounded nesting, and no string that the database or the
encoder would choke on later (NUL, which PostgreSQL refuses in text; a lone UTF-16 surrogate, which no
UTF-8 encoder accepts).

The standard library parser recurses once per nesting level; at 100,000 levels it raises
``RecursionError``, which would surface as a 500. Here that and every other problem is a ``BadJSON``:
a ``JSONDecodeError``, so Strawberry's websocket handler closes with 4400 as for any unparsable
message, and the HTTP view answers 400.
"""

from __future__ import annotations

import json
import re
from typing import Any

_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")


class BadJSON(json.JSONDecodeError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "", 0)
        self.message = message


def bad_string_reason(value: str) -> str | None:
    match = _BAD_CHARACTER.search(value)
    if match is None:
        return None
    if match.group() == "\x00":
        return "Strings must not contain NUL characters."
    return "Strings must not contain unpaired UTF-16 surrogates."


def decode(data: str | bytes, max_depth: int) -> Any:
    try:
        value = json.loads(data)
    except RecursionError:
        raise BadJSON(f"JSON nested deeper than {max_depth} levels.") from None
    except UnicodeDecodeError:
        raise BadJSON("The body is not UTF-8.") from None
    check(value, max_depth)
    return value


def check(value: Any, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth`` and bad strings (keys too); iterative, linear."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if reason := bad_string_reason(item):
                raise BadJSON(reason)
        elif isinstance(item, (dict, list)):
            if depth > max_depth:
                raise BadJSON(f"JSON nested deeper than {max_depth} levels.")
            if isinstance(item, dict):
                for key, child in item.items():
                    if reason := bad_string_reason(key):
                        raise BadJSON(reason)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
