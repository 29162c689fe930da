"""Kubernetes resource quantities, as far as the simulator needs them."""

from __future__ import annotations

import math
import re
from decimal import Decimal

_SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|)$")


def parse_decimal(value: str | int) -> Decimal:
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        raise ValueError(f"not a quantity: {value!r}")
    return Decimal(match.group(1)) * Decimal(_SUFFIXES[match.group(2)])


def parse_quantity(value: str | int) -> int:
    """Bytes (or units), rounded up as the API server does."""
    return math.ceil(parse_decimal(value))


def parse_cpu_millis(value: str | int) -> int:
    return math.ceil(parse_decimal(value) * 1000)


def format_bytes(value: int) -> str:
    for suffix in ("Gi", "Mi", "Ki"):
        if value % _SUFFIXES[suffix] == 0:
            return f"{value // _SUFFIXES[suffix]}{suffix}"
    return str(value)
