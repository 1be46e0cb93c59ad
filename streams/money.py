"""Money as people read it: integer nano-dollars to a decimal string, exactly."""

from __future__ import annotations

from decimal import Decimal

NANOS_PER_USD = 1_000_000_000


def usd(nanousd: int) -> str:
    """'51.2' for 51_200_000_000; never a float on the way."""
    text = format(Decimal(nanousd).scaleb(-9), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def ratio_usd(nanousd: int, divisor: int) -> tuple[str, int]:
    """nanousd / divisor as (decimal string to the nano-dollar, rounded nanos)."""
    if divisor <= 0:
        return "0", 0
    nanos = (nanousd + divisor // 2) // divisor
    return usd(nanos), nanos
