"""Request validation errors as sentences a person can act on.

Query, path and header parameters get a sentence naming the parameter, what it must be and
what was given; errors in a body keep their location and pydantic's message, which already
point into the document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_PATTERNS = {"^[0-9a-f]{32}$": "32 hexadecimal characters"}
_PARAMETER_PLACES = ("query", "path", "header", "cookie")
_SHOWN_INPUT = 60


def _given(value: Any) -> str:
    text = repr(value if isinstance(value, str) else str(value))
    return text if len(text) <= _SHOWN_INPUT else text[: _SHOWN_INPUT - 4] + "...'"


def _parameter_sentence(place: str, name: str, error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    given = _given(error.get("input"))
    if kind == "missing":
        return f"the {place} parameter {name} is required"
    if kind == "string_pattern_mismatch":
        form = _PATTERNS.get(str(ctx.get("pattern")), f"text matching {ctx.get('pattern')}")
        if name.endswith("_id"):
            noun = name.removesuffix("_id").replace("_", " ")
            return f"no {noun} with id {given}: {noun} ids are {form}"
        return f"{name} must be {form}, not {given}"
    if kind in ("literal_error", "enum"):
        return f"{name} must be {ctx.get('expected')}, not {given}"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "less_than_equal": ("at most", "le"),
        "greater_than": ("more than", "gt"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"{name} must be {words} {ctx.get(key)}, not {error.get('input')}"
    if kind == "int_parsing":
        return f"{name} must be a whole number, not {given}"
    if kind == "float_parsing":
        return f"{name} must be a number, not {given}"
    if kind == "bool_parsing":
        return f"{name} must be true or false, not {given}"
    if kind == "string_too_long":
        return f"{name} must be at most {ctx.get('max_length')} characters long"
    if kind == "string_too_short":
        return f"{name} must be at least {ctx.get('min_length')} characters long"
    return f"{name}: {error.get('msg', 'is not valid')}"


def sentence(error: Mapping[str, Any]) -> str:
    """One validation error (as pydantic reports it) in words."""
    loc = [str(p) for p in error.get("loc", ())]
    if len(loc) == 2 and loc[0] in _PARAMETER_PLACES:
        return _parameter_sentence(loc[0], loc[1], error)
    return f"{'.'.join(loc)}: {error.get('msg', '')}"
