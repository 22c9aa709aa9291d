"""Kubernetes resource quantities, compared as numbers.

The API server canonicalises quantities (``"10000000000"`` comes back as ``"10G"``), so two
quantities are equal when their values are, never when their strings are.
"""

from __future__ import annotations

import re
from decimal import Decimal

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([A-Za-z]*)$")


class InvalidQuantity(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(value: str | int | float) -> Decimal:
    """The numeric value of a quantity such as ``"2Gi"``, ``"1500m"`` or ``2147483648``."""
    if isinstance(value, bool):
        raise InvalidQuantity(f"not a quantity: {value!r}")
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.match(value.strip())
    if not match:
        raise InvalidQuantity(f"not a quantity: {value!r}")
    number, suffix = match.groups()
    if suffix not in _SUFFIXES:
        raise InvalidQuantity(f"unknown quantity suffix {suffix!r} in {value!r}")
    if "e" in number.lower() and suffix:
        raise InvalidQuantity(f"exponent and suffix together in {value!r}")
    try:
        result = Decimal(number) * _SUFFIXES[suffix]
    except ArithmeticError as exc:  # e.g. "12e45678": a hex digest, not a size
        raise InvalidQuantity(f"not a quantity: {value!r}") from exc
    if abs(result.adjusted()) > 40:
        raise InvalidQuantity(f"quantity out of range: {value!r}")
    return result


def quantity_bytes(value: str | int | float) -> int:
    """A byte quantity as a whole number of bytes (rounded up, as the API server does)."""
    exact = parse_quantity(value)
    whole = int(exact)
    return whole if whole == exact else whole + 1


def same_quantity(a: str | int | float, b: str | int | float) -> bool:
    """Whether two quantities have the same value; unparseable ones compare as strings."""
    try:
        return parse_quantity(a) == parse_quantity(b)
    except InvalidQuantity:
        return str(a) == str(b)


def format_bytes(count: int) -> str:
    """A byte count as the shortest exact binary quantity (``2147483648`` -> ``"2Gi"``)."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = int(_SUFFIXES[suffix])
        if count and count % unit == 0:
            return f"{count // unit}{suffix}"
    return str(count)
