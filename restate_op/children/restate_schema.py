"""Restate's own configuration rules, checked without running Restate.

The operator image has no Restate binary and never calls out, yet a configuration Restate
would refuse should stop the operator before any pod rolls, with the words Restate itself
would print. The rules in ``restate_schema_data`` were probed from a real restate-server
(``e2e/restate_schema_probe.py`` runs ``--dump-config`` on one wrong value per key and type
and records Restate's exact error), and this module applies them: for a value Restate would
refuse it renders the same text Restate prints after ``configuration loading error:``.

Conservative by construction: keys Restate does not know are accepted (Restate ignores
them too), keys whose errors do not follow a predictable pattern (untagged enums, tagged
sections such as ``[metadata-client]``, replication properties, the contents of duration
strings) are not checked, and keys set by an environment variable are skipped, because
Restate lets ``RESTATE_*`` variables replace file values before it reads them.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Collection, Iterator, Mapping
from decimal import Decimal
from typing import Any, Final

from restate_op.children.restate_schema_data import KEYS, RESTATE_VERSION, SECTIONS

ENV_PREFIX: Final = "RESTATE_"

_INT_TYPE = re.compile(r"(?:a nonzero )?(?P<sign>[ui])(?P<bits>8|16|32|64|128|size)$")
_VARIANT = re.compile(r"`([^`]*)`")
# bytesize units, matched case-insensitively (probed against restate-server; see e2e tests).
_BYTE_UNITS: Final = {
    "b": 1,
    **{p: 1000**i for i, p in enumerate("kmgtpe", start=1)},
    **{f"{p}b": 1000**i for i, p in enumerate("kmgtpe", start=1)},
    **{f"{p}i": 1024**i for i, p in enumerate("kmgtpe", start=1)},
    **{f"{p}ib": 1024**i for i, p in enumerate("kmgtpe", start=1)},
}
_U64_MAX: Final = 2**64 - 1


def restate_version() -> str:
    """The Restate release the rules were probed from (e.g. ``restate-server 1.7.12``)."""
    return RESTATE_VERSION


def env_key(name: str) -> str | None:
    """The configuration key a ``RESTATE_*`` variable sets (``__`` nests, ``_`` is ``-``)."""
    if not name.upper().startswith(ENV_PREFIX) or len(name) == len(ENV_PREFIX):
        return None
    parts = name[len(ENV_PREFIX) :].lower().split("__")
    return ".".join(part.replace("_", "-") for part in parts)


def check_config(doc: Mapping[str, Any], env_names: Collection[str] = ()) -> list[tuple[str, str]]:
    """(key, Restate's error text) for each value Restate would refuse; [] if none.

    ``doc`` is the parsed TOML file, ``env_names`` the container's variable names: a key set
    by one of them (or inside a table set by one) is never read from the file.
    """
    overridden = {key for key in map(env_key, env_names) if key is not None}
    return list(_walk(doc, (), overridden))


def _walk(
    table: Mapping[str, Any], prefix: tuple[str, ...], overridden: set[str]
) -> Iterator[tuple[str, str]]:
    for name, value in table.items():
        path = (*prefix, name)
        key = ".".join(path)
        if key in overridden:
            continue
        if key in SECTIONS:
            if isinstance(value, dict):
                yield from _walk(value, path, overridden)
            else:
                found = _found(value)
                if found is not None:
                    yield key, f"invalid type: found {found}, expected {SECTIONS[key]}"
            continue
        rules = KEYS.get(key)
        if rules is not None:
            error = _check_value(_expand(rules), value)
            if error is not None:
                yield key, error


def _expand(rules: Mapping[str, str]) -> dict[str, str]:
    return {name: value for names, value in rules.items() for name in names.split(",")}


def _toml_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict | datetime.date | datetime.time):
        return "table"  # Restate's TOML reader hands dates and times over as maps
    return None


def _check_value(rules: Mapping[str, str], value: Any) -> str | None:
    toml_type = _toml_type(value)
    found = _found(value)
    if toml_type is None or found is None:
        return None
    rule = rules.get(toml_type, "")
    if rule.startswith("type:"):
        return f"invalid type: found {found}, expected {rule.removeprefix('type:')}"
    if isinstance(value, str):
        return _check_string(rules, value, found)
    if toml_type == "integer":
        return _check_integer(rules, value, found)
    if isinstance(value, list):
        for item in value:
            error = _check_item(rules, item)
            if error is not None:
                return error
    return None


def _check_item(rules: Mapping[str, str], item: Any) -> str | None:
    found = _found(item)
    if found is None:
        return None
    if isinstance(item, str):
        rule = rules.get("items-string", "")
        if rule.startswith("enum:"):
            return _check_enum(rule, item)
        if rule.startswith("type:"):
            return f"invalid type: found {found}, expected {rule.removeprefix('type:')}"
    elif _toml_type(item) == "integer":
        rule = rules.get("items-integer", "")
        if rule.startswith("type:"):
            return f"invalid type: found {found}, expected {rule.removeprefix('type:')}"
    return None


def _check_enum(rule: str, value: str) -> str | None:
    one_of = rule.removeprefix("enum:")
    if value in _VARIANT.findall(one_of):
        return None
    return f"unknown variant: found `{value}`, expected `{one_of}`"


def _check_string(rules: Mapping[str, str], value: str, found: str) -> str | None:
    rule = rules.get("string", "")
    if rule.startswith("enum:"):
        return _check_enum(rule, value)
    if rule.startswith("bytes:"):
        size = parse_byte_count(value)
        if size is None:
            return f"invalid value {found}, expected {rule.removeprefix('bytes:')}"
        if size == 0 and "zero" in rules:
            return f"invalid value {found}, expected {rules['zero']}"
    return None


def _check_integer(rules: Mapping[str, str], value: int, found: str) -> str | None:
    if value == 0 and "zero" in rules:
        return f"invalid value {found}, expected {rules['zero']}"
    if value < 0 and "negative" in rules:
        return f"invalid value {found}, expected {rules['negative']}"
    huge = rules.get("huge")
    if huge is not None:
        match = _INT_TYPE.search(huge)
        if match is not None:
            bits = 64 if match["bits"] == "size" else int(match["bits"])
            maximum = 2**bits - 1 if match["sign"] == "u" else 2 ** (bits - 1) - 1
            if value > maximum:
                return f"invalid value {found}, expected {huge}"
    return None


def parse_byte_count(text: str) -> int | None:
    """Bytes in a human-readable count (``512MiB``, ``2 GB``, ``1024``), as Restate parses it.

    None when Restate would refuse the string. Restate's parser (the ``bytesize`` crate)
    first tries a plain unsigned integer, then a decimal number made of digits and dots
    followed by optional whitespace and a unit (case-insensitive, SI or binary).
    """
    digits = text.removeprefix("+")
    if digits and digits.isascii() and digits.isdigit():
        number = int(digits)
        return number if number <= _U64_MAX else None
    end = 0
    while end < len(text) and (text[end] in "0123456789."):
        end += 1
    literal = text[:end]
    if literal.count(".") > 1 or not any(c.isdigit() for c in literal):
        return None
    unit = text[end:].lstrip()
    multiplier = _BYTE_UNITS.get(unit.lower())
    if multiplier is None:
        return None
    return min(int(Decimal(literal) * multiplier), _U64_MAX)


def _found(value: Any) -> str | None:
    """How Restate's configuration loader names a value in its errors (figment ``Actual``)."""
    if isinstance(value, bool):
        return f"bool {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"signed int `{value}`"
    if isinstance(value, float):
        return f"float `{_rust_float(value)}`"
    if isinstance(value, str):
        return f"string {_rust_debug(value)}"
    if isinstance(value, list):
        return "sequence"
    if isinstance(value, dict | datetime.date | datetime.time):
        return "map"
    return None


def _rust_float(value: float) -> str:
    """Rust's ``Display`` of an f64: shortest round-trip digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("0", "-0"):
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    return text


_ESCAPES: Final = {"\t": "\\t", "\r": "\\r", "\n": "\\n", "\\": "\\\\", '"': '\\"', "\0": "\\0"}


def _rust_debug(text: str) -> str:
    """Rust's ``Debug`` of a str: quoted, with escapes for quotes and unprintable characters."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char == " " or char.isprintable():
            out.append(char)
        else:
            out.append(f"\\u{{{ord(char):x}}}")
    return '"' + "".join(out) + '"'
