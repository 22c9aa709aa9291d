from decimal import Decimal

import pytest

from restate_op.quantity import (
    InvalidQuantity,
    format_bytes,
    parse_quantity,
    quantity_bytes,
    same_quantity,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2147483648", Decimal(2147483648)),
        ("2Gi", Decimal(2**31)),
        ("10G", Decimal(10**10)),
        ("1500m", Decimal("1.5")),
        ("1.5Gi", Decimal(3 * 2**29)),
        ("1e3", Decimal(1000)),
        ("100Ki", Decimal(102400)),
        (".5", Decimal("0.5")),
    ],
)
def test_parse_quantity(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Gi", "2GB", "1e3Gi", "abc", "2 Gi x", "12e45678", "9e999"])
def test_invalid_quantities_are_refused(text: str) -> None:
    with pytest.raises(InvalidQuantity):
        parse_quantity(text)


def test_canonicalised_quantities_compare_equal() -> None:
    # The API server turns "10000000000" into "10G": the same size, a different string.
    assert same_quantity("10000000000", "10G")
    assert same_quantity(2147483648, "2Gi")
    assert not same_quantity("2Gi", "2G")


def test_quantity_bytes_rounds_up() -> None:
    assert quantity_bytes("1500m") == 2
    assert quantity_bytes("1Ki") == 1024


def test_format_bytes() -> None:
    assert format_bytes(2147483648) == "2Gi"
    assert format_bytes(3 * 2**20) == "3Mi"
    assert format_bytes(1000) == "1000"
