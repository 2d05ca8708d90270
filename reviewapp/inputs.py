"""Checks of numbers and JSON that come from outside (URLs, query strings, request bodies), shared by every
layer so that each kind of input is bounded in one place.

* Integers: every integer column of every supported database (SQLite, PostgreSQL) holds ``DB_INT_MIN ..
  DB_INT_MAX`` (PostgreSQL's ``integer``); ids (``BigAutoField``) go up to ``ID_MAX``. A number outside is
  not a row: URL converters make the URL not match (404), :func:`query_int` / :func:`query_ints` raise
  ``BadRequest`` (400), form and serializer fields refuse it (400). Without these checks a value such as
  10**20 reaches the database driver, which raises ``OverflowError`` on SQLite.
* JSON: at most ``MAX_JSON_DEPTH`` levels of nesting and no NUL characters (:func:`json_problem`); deeper
  documents are refused before the recursive parts of the stack (the ``json`` module, validators, the
  database) can overflow.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import BadRequest

DB_INT_MIN = -(2**31)
DB_INT_MAX = 2**31 - 1
ID_MAX = 2**63 - 1
#: Largest integer a URL may carry: a positive id of a BigAutoField, far above any position or number.
URL_INT_MAX = ID_MAX
MAX_JSON_DEPTH = 32
#: At most this many digits in an integer read from a URL or a query string (more cannot be in range).
MAX_INT_DIGITS = 19


class BoundedIntConverter:
    """``<id:pk>``: a non-negative integer of at most 19 digits that fits a 64-bit id (else: no match, 404)."""

    regex = f"[0-9]{{1,{MAX_INT_DIGITS}}}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > URL_INT_MAX:
            raise ValueError(f"{value} is out of range")
        return number

    def to_url(self, value: int | str) -> str:
        return str(int(value))


def parse_int(value: Any, *, min_value: int = 0, max_value: int = ID_MAX) -> int | None:
    """``value`` (a string or an int) as an int in ``min_value .. max_value``, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        digits = text.lstrip("+-")
        if not digits.isascii() or not digits.isdigit() or len(digits) > MAX_INT_DIGITS:
            return None
        number = int(text)
    else:
        return None
    return number if min_value <= number <= max_value else None


def query_int(
    params, name: str, *, default: int | None = None, min_value: int = 0, max_value: int = ID_MAX
) -> int | None:
    """The integer query parameter ``name`` of a ``QueryDict`` (``default`` when absent or empty); raises
    ``BadRequest`` (400) when it is not an integer in range."""
    raw = params.get(name, "")
    if raw == "":
        return default
    number = parse_int(raw, min_value=min_value, max_value=max_value)
    if number is None:
        raise BadRequest(f"?{name}= must be an integer from {min_value} to {max_value}.")
    return number


def query_ints(params, name: str, *, min_value: int = 0, max_value: int = ID_MAX) -> list[int]:
    """Every value of the repeated integer query parameter ``name`` (empty ones skipped); raises
    ``BadRequest`` (400) when one is not an integer in range."""
    numbers = []
    for raw in params.getlist(name):
        if raw == "":
            continue
        number = parse_int(raw, min_value=min_value, max_value=max_value)
        if number is None:
            raise BadRequest(f"?{name}= must be an integer from {min_value} to {max_value}.")
        numbers.append(number)
    return numbers


def json_problem(value: Any) -> str | None:
    """Why a parsed JSON value cannot be taken (nested more than ``MAX_JSON_DEPTH`` levels, or a string
    with a NUL character, which no text column of PostgreSQL holds), or None; walks it without recursion."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "JSON strings must not contain NUL characters"
            continue
        if isinstance(item, dict):
            children = [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple):
            children = list(item)
        else:
            continue
        if depth + 1 > MAX_JSON_DEPTH:
            return f"JSON nested more than {MAX_JSON_DEPTH} levels deep"
        stack.extend((child, depth + 1) for child in children)
    return None


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def json_loads(text: str | bytes) -> Any:
    """``json.loads`` for untrusted text: no NaN or Infinity, at most ``MAX_JSON_DEPTH`` levels of nesting.
    Raises ``ValueError`` (``json.JSONDecodeError`` for syntax errors) with the reason."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
    problem = json_problem(value)
    if problem:
        raise ValueError(problem)
    return value
