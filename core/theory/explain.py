"""The theory's results in sentences for people (the Theory and Learn pages).

Everything here reads numbers that `core.theory` computed (a predicted
profile, a config) and says what they mean; nothing is computed twice.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from core.registry import INITIALIZERS

if TYPE_CHECKING:  # pragma: no cover
    from core.schema import RunConfig

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def pow10(x: float) -> str:
    """10 to the nearest whole power of x, in print: 1.3e-24 → '10⁻²⁴' ('—' if x is not a positive number)."""
    if not (math.isfinite(x) and x > 0):
        return "—"
    return "10" + str(int(round(math.log10(x)))).translate(_SUPERSCRIPT)


def ratio_text(x: float) -> str:
    """0.051 as '0.051', 1.3e-24 as 'about 10⁻²⁴'."""
    return f"{x:.2g}" if 1e-3 <= x <= 1e3 else f"about {pow10(x)}"


def gradient_sentence(prof: pd.DataFrame) -> str | None:
    """How much the gradient changes from the last layer to the first, predicted along the actual q path
    (`prof` is `predicted_profile(cfg)`); None where the theory does not apply or with one layer."""
    if not prof.attrs.get("applies", True) or len(prof) < 2:
        return None
    g = float(prof["grad_rel"].iloc[0])
    L = len(prof)
    if not math.isfinite(g):
        return f"The predicted gradient second moment overflows over {L} layers: it explodes."
    if g <= 0:
        return f"No gradient reaches layer 1: the predicted gradient second moment there is 0 (of layer {L}'s)."
    dec = math.log10(g)
    if abs(dec) < 0.3:
        return f"Over {L} layers the gradient keeps its size: layer 1 gets {g:.2g}× the last layer's second moment."
    word = "shrinks" if dec < 0 else "grows"
    return (f"Over {L} layers the gradient {word}: layer 1's second moment is predicted at {ratio_text(g)} × "
            f"layer {L}'s.")


def limitations(cfg: "RunConfig", prof: pd.DataFrame) -> list[str]:
    """Sentences (Markdown) on where the theory does not apply, or only roughly, for this setting."""
    out = []
    ini = INITIALIZERS[cfg.init]
    if cfg.batchnorm:
        out.append("**BatchNorm is on:** every layer's pre-activations are renormalized to variance 1, whatever the "
                   "weights, so the forward prediction is q = 1 in every layer and the backward pass is not covered. "
                   "The variance map and phase diagram below describe the same network without BatchNorm.")
    if ini.needs_data:
        start = f" ({INITIALIZERS[ini.starts_as].label.lower()})" if ini.starts_as else ""
        out.append(f"**{ini.label}** sets each layer's scale from a batch of data, so the theory, which needs the "
                   f"weight variance in advance, does not apply; the numbers below are for its starting point{start}.")
    note = prof.attrs.get("note", "")
    if note and not cfg.batchnorm and not ini.needs_data:
        out.append(note)
    return out


__all__ = ["pow10", "ratio_text", "gradient_sentence", "limitations"]
