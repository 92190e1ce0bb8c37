"""Numbers in print for people: the one home of how a power of ten, a ratio or a small number is written.

Verdicts (`core.io.diagnosis`), the theory's sentences (`core.theory.explain`), the pages' tables and the
Learn page all write exponents the same way, as real superscripts: 10⁻²³·⁹, 1.3 × 10⁻⁵, never "10^-23.9"
or "1.3e-05" (a caret and an e-notation read as code, not as a number). Plain Unicode, so the same text
works in Markdown, in a table cell, in a chart's hover text and on the command line.
"""
from __future__ import annotations

import math

_SUPERSCRIPT = str.maketrans("-+0123456789.", "⁻⁺⁰¹²³⁴⁵⁶⁷⁸⁹·")
_PLAIN = str.maketrans("⁻⁺⁰¹²³⁴⁵⁶⁷⁸⁹·", "-+0123456789.")
PLAIN_RANGE = (1e-3, 1e4)  # numbers of this size are written out; outside it, as a power of ten


def from_superscript(text: str) -> str:
    """The inverse of `superscript`: '⁻²³·⁹' → '-23.9' (for reading a number back out of a sentence)."""
    return str(text).translate(_PLAIN)


def superscript(text: str) -> str:
    """'-23.9' → '⁻²³·⁹' (digits, signs and the decimal point; the point becomes a raised dot)."""
    return str(text).translate(_SUPERSCRIPT)


def power_of_ten(exponent: float, decimals: int = 0) -> str:
    """10 to `exponent` rounded to `decimals` places: power_of_ten(-23.94, 1) → '10⁻²³·⁹'."""
    e = round(float(exponent), decimals)
    text = f"{e:.{decimals}f}".rstrip("0").rstrip(".") if decimals > 0 else str(int(e))
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return "10" + superscript(text)


def pow10(x: float, decimals: int = 0) -> str:
    """x as a power of ten: pow10(1.3e-24) → '10⁻²⁴', pow10(1.3e-24, 1) → '10⁻²³·⁹' ('—' unless x > 0, finite)."""
    if not (isinstance(x, (int, float)) and math.isfinite(x) and x > 0):
        return "—"
    return power_of_ten(math.log10(x), decimals)


def sci(x: float, digits: int = 2) -> str:
    """A number of any size with `digits` significant digits: 0.051 → '0.051', 1.3e-05 → '1.3 × 10⁻⁵',
    2e40 → '2 × 10⁴⁰', inf → '∞', nan → '—'."""
    if x is None:
        return "—"
    x = float(x)
    if math.isnan(x):
        return "—"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0 or PLAIN_RANGE[0] <= abs(x) < PLAIN_RANGE[1]:
        return f"{x:.{digits}g}"
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
    power = "10" + superscript(str(int(exponent)))
    return power if mantissa == "1" else f"{mantissa} × {power}"


def ratio_text(x: float) -> str:
    """A ratio between two layers: 0.051 as '0.051', 1.3e-24 as 'about 10⁻²⁴'."""
    return f"{x:.2g}" if 1e-3 <= x <= 1e3 else f"about {pow10(x)}"


__all__ = ["superscript", "from_superscript", "power_of_ten", "pow10", "sci", "ratio_text", "PLAIN_RANGE"]
