"""core.fmt: every exponent a person reads is a superscript, and reads back to the same number.

Oracle: math.log10 and Python's own e-notation of the same value.
"""
from __future__ import annotations

import math

import pytest

from core.fmt import from_superscript, pow10, power_of_ten, ratio_text, sci, superscript


def test_superscript_round_trips():
    assert superscript("-23.9") == "⁻²³·⁹"
    for text in ("-23.9", "0", "12", "+4", "-0.5"):
        assert from_superscript(superscript(text)) == text


@pytest.mark.parametrize("x", [1.3e-24, 2.7e-6, 0.04, 1.0, 3.0e5, 8.1e40])
def test_pow10_is_the_rounded_log(x):
    text = pow10(x, 1)
    assert text.startswith("10") and "^" not in text and "e" not in text
    assert math.isclose(float(from_superscript(text[2:])), round(math.log10(x), 1))
    assert int(from_superscript(pow10(x)[2:])) == round(math.log10(x))


def test_power_of_ten_drops_a_trailing_zero_and_a_minus_zero():
    assert power_of_ten(-24.0, 1) == "10⁻²⁴"
    assert power_of_ten(-23.94, 1) == "10⁻²³·⁹"
    assert power_of_ten(-0.04, 1) == "10⁰"


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_pow10_of_what_has_no_power_is_a_dash(bad):
    assert pow10(bad) == "—"


@pytest.mark.parametrize("x,expected", [
    (0.051, "0.051"), (1.0, "1"), (29491.5, "2.9 × 10⁴"), (1.3e-5, "1.3 × 10⁻⁵"), (1e-7, "10⁻⁷"),
    (-3e-9, "-3 × 10⁻⁹"), (0.0, "0"), (math.inf, "∞"), (math.nan, "—"),
])
def test_sci(x, expected):
    assert sci(x) == expected


@pytest.mark.parametrize("x", [1.3e-5, 2.5e-8, 7.77e12, 4.2e-300])
def test_sci_reads_back_to_python_e_notation(x):
    mantissa, power = sci(x).split(" × ")
    assert f"{x:.1e}" == f"{float(mantissa) * 10.0 ** int(from_superscript(power[2:])):.1e}"


def test_ratio_text():
    assert (ratio_text(0.051), ratio_text(2e-5), ratio_text(4e6)) == ("0.051", "about 10⁻⁵", "about 10⁷")
