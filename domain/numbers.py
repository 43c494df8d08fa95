"""How engage writes a number for people: one rule for every output (mail, check-in page, answer mails, report),
so a value never reads one way in an owner's inbox and another in the sponsor's report."""

from __future__ import annotations

import math
from decimal import Decimal

from schemas.common import MAX_VALUE


def number(value: float | None) -> str:
    """42.0 -> 42, 1234.5 -> 1,234.5, 0.1 + 0.2 -> 0.3, 1e15 -> 1,000,000,000,000,000: no float noise in front
    of an executive. Six decimals at most from 1 up, 15 significant digits below 1 (0.0000125 stays itself);
    beyond what a value may be (an older log's, or a tiny fraction under 1e-6) the short scientific form."""
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    size = abs(value)
    if size > MAX_VALUE or size < 1e-6:
        return scientific(value, 6)
    exact = Decimal(repr(round(value, 6)) if size >= 1 else f"{value:.15g}")
    if exact == exact.to_integral_value():
        return f"{int(exact):,}"
    return f"{exact.normalize():,f}"


def scientific(value: float, digits: int) -> str:
    """1.5e-7, -2e300: Python's `g` form without the exponent's plus sign and leading zeros."""
    mantissa, _, exponent = f"{value:.{digits}g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa
