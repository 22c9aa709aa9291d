"""A protobuf wire-format reader for the few Restate answers the operator reads. Pure.

The operator reads four small messages of Restate's node port (``GetIdent``,
``GetClusterState``, ``GetClusterConfiguration``; ``restate_op.restate_health``). Decoding
them needs only the wire format -- varints and length-delimited fields -- not generated
code, a protoc step or the ``protobuf`` runtime: a message is read into its fields by
number, and the caller picks the numbers it knows (Restate's ``.proto`` files name them;
unknown fields are skipped, as protobuf itself does).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

#: Wire types (https://protobuf.dev/programming-guides/encoding/#structure).
VARINT, I64, LEN, I32 = 0, 1, 2, 5

Fields = Mapping[int, Sequence[int | bytes]]


class WireError(ValueError):
    """The bytes are not a protobuf message."""


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def fields(data: bytes) -> Fields:
    """Every field of one message by number, repeated ones in order.

    Varints come back as ``int``, length-delimited fields (strings, bytes, sub-messages,
    packed repeats, map entries) as ``bytes``; fixed-width fields as little-endian ``int``.
    """
    found: defaultdict[int, list[int | bytes]] = defaultdict(list)
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire_type == VARINT:
            value, pos = read_varint(data, pos)
            found[number].append(value)
        elif wire_type == LEN:
            size, pos = read_varint(data, pos)
            if pos + size > len(data):
                raise WireError(f"field {number} runs past the end")
            found[number].append(data[pos : pos + size])
            pos += size
        elif wire_type in (I64, I32):
            width = 8 if wire_type == I64 else 4
            if pos + width > len(data):
                raise WireError(f"field {number} runs past the end")
            found[number].append(int.from_bytes(data[pos : pos + width], "little"))
            pos += width
        else:
            raise WireError(f"unsupported wire type {wire_type} (field {number})")
    return found


def integer(msg: Fields, number: int, default: int = 0) -> int:
    """The last value of a scalar field (proto3: last one wins), or ``default``."""
    values = msg.get(number)
    if not values:
        return default
    value = values[-1]
    if not isinstance(value, int):
        raise WireError(f"field {number} is not a varint")
    return value


def optional_integer(msg: Fields, number: int) -> int | None:
    return integer(msg, number) if msg.get(number) else None


def message(msg: Fields, number: int) -> Fields | None:
    """The sub-message in field ``number`` (the last one), or None when absent."""
    values = msg.get(number)
    if not values:
        return None
    value = values[-1]
    if not isinstance(value, bytes):
        raise WireError(f"field {number} is not length-delimited")
    return fields(value)


def messages(msg: Fields, number: int) -> list[Fields]:
    """Every sub-message of a repeated field."""
    out = []
    for value in msg.get(number, ()):
        if not isinstance(value, bytes):
            raise WireError(f"field {number} is not length-delimited")
        out.append(fields(value))
    return out


def text(msg: Fields, number: int) -> str:
    values = msg.get(number)
    if not values:
        return ""
    value = values[-1]
    if not isinstance(value, bytes):
        raise WireError(f"field {number} is not length-delimited")
    return value.decode("utf-8", errors="replace")


def int_keyed_map(msg: Fields, number: int) -> dict[int, Fields]:
    """A ``map<uint32, Message>`` field: entries are messages of key (1) and value (2)."""
    out: dict[int, Fields] = {}
    for entry in messages(msg, number):
        out[integer(entry, 1)] = message(entry, 2) or {}
    return out


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_field(number: int, value: int | bytes) -> bytes:
    """One field: a varint for ``int``, length-delimited for ``bytes`` (requests, tests)."""
    if isinstance(value, int):
        return encode_varint(number << 3 | VARINT) + encode_varint(value)
    return encode_varint(number << 3 | LEN) + encode_varint(len(value)) + value
