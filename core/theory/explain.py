"""The theory's results in sentences for people (the Theory and Learn pages).

Everything here reads numbers that `core.theory` computed (a summary, a predicted profile, a config) and
says what they mean; nothing is computed twice. The one rule: the sentences never contradict each other or
the chart beside them. The phase is an asymptotic statement (what χ₁ at the fixed point q* does to a very
deep network); a real network of L layers starts at q¹, not at q*, so near the edge of chaos the finite
depth can behave otherwise. `phase_story` therefore names the phase *and* checks it against the trend the
theory predicts over these L layers, and picks its word so that both agree:

* ordered / chaotic / critical: the asymptotic phase, when these L layers' gradient trend agrees with it;
* marginal: χ₁ = 1 only at q* = 0 (tanh with σ_w² = 1, σ_b = 0): no exponential change, but the variance
  decays to 0 polynomially and the gradient shrinks with it;
* near-critical: χ₁ close to 1, and over these L layers the gradient goes the other way than the phase says
  (the signal is still settling from q¹ towards q*);
* unbounded: no finite fixed point, the variance grows with depth.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.fmt import pow10, ratio_text, sci
from core.registry import INITIALIZERS

if TYPE_CHECKING:  # pragma: no cover
    from core.schema import RunConfig

KEEP_DECADES = 0.3  # a change within a factor 10^0.3 ≈ 2 over the whole network counts as keeping its size
Q_STAR_ZERO = 1e-12  # q* below this is the trivial fixed point 0

# The words the Theory page shows for a setting, and what each one means (its metric's help text).
PHASE_WORDS = {
    "ordered": "χ₁ < 1: gradients shrink exponentially with depth and different inputs become alike.",
    "chaotic": "χ₁ > 1: gradients grow exponentially with depth and nearby inputs decorrelate.",
    "critical": "χ₁ = 1, the edge of chaos: signals and gradients keep their size to great depth.",
    "marginal": "χ₁ = 1 only at q* = 0: no exponential change, but the variance decays slowly (polynomially) "
                "to 0, and the gradient shrinks with it.",
    "near-critical": "χ₁ is close to 1, and over this many layers the gradient does the opposite of what the phase "
                     "says for a very deep network: the signal is still settling from q¹ towards q*.",
    "unbounded": "No finite fixed point: the variance grows without bound with depth.",
}


def trend(ratio: float) -> str:
    """'keeps', 'shrinks' or 'grows' for a ratio between the last and the first value; 'unknown' for NaN."""
    if ratio is None or math.isnan(ratio):
        return "unknown"
    if ratio <= 0:
        return "shrinks"
    if math.isinf(ratio):
        return "grows"
    d = math.log10(ratio)
    return "keeps" if abs(d) < KEEP_DECADES else ("shrinks" if d < 0 else "grows")


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
    t = trend(g)
    if t == "keeps":
        return f"Over {L} layers the gradient keeps its size: layer 1 gets {g:.2g}× the last layer's second moment."
    return (f"Over {L} layers the gradient {t}: layer 1's second moment is predicted at {ratio_text(g)} × "
            f"layer {L}'s.")


def forward_sentence(prof: pd.DataFrame) -> str | None:
    """How the predicted pre-activation second moment q changes from layer 1 to the last (None where the theory
    does not apply or with one layer)."""
    if not prof.attrs.get("applies", True) or len(prof) < 2:
        return None
    q = np.asarray(prof["q"], dtype=np.float64)
    L = len(q)
    q1, qL = float(q[0]), float(q[-1])
    if not math.isfinite(qL):
        return f"Forward, the predicted variance overflows within {L} layers."
    ratio = qL / q1 if q1 > 0 else math.nan
    t = trend(ratio)
    base = f"Forward, q = E[h²] goes from {sci(q1)} in layer 1 to {sci(qL)} in layer {L}"
    if t == "keeps":
        return base + ": about the same."
    if t == "unknown":
        return base + "."
    return base + (f": it falls to {ratio_text(ratio)} of its start." if t == "shrinks" else
                   f": it grows {ratio_text(ratio)}-fold.")


@dataclass(frozen=True)
class PhaseStory:
    """What the theory says about a setting, in one word and a few sentences that agree with each other."""

    phase: str                 # the asymptotic phase: 'ordered' | 'critical' | 'chaotic' | 'unbounded'
    word: str                  # what the page shows: a key of PHASE_WORDS
    forward: float             # predicted q^L / q^1 over these layers (NaN where the theory does not apply)
    backward: float            # predicted E[(∂L/∂h¹)²] / E[(∂L/∂h^L)²] (NaN likewise)
    sentences: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    @property
    def help(self) -> str:
        return PHASE_WORDS[self.word]


def _ratios(prof: pd.DataFrame) -> tuple[float, float]:
    if not prof.attrs.get("applies", True) or len(prof) < 2:
        return math.nan, math.nan
    q = np.asarray(prof["q"], dtype=np.float64)
    with np.errstate(all="ignore"):
        fwd = float(q[-1] / q[0]) if q[0] > 0 else math.nan
    return fwd, float(prof["grad_rel"].iloc[0])


def phase_word(summary: dict, forward: float, backward: float) -> str:
    """The word for a setting: its asymptotic phase, unless the trend over these layers disagrees with it
    (see the module's docstring). `summary` is `core.theory.summary(...)`; the ratios are `PhaseStory`'s."""
    phase = summary["phase"]
    fwd, bwd = trend(forward), trend(backward)
    if phase == "unbounded":
        return phase
    q_star = summary["q_star"]
    if phase == "critical":
        if q_star is not None and q_star <= Q_STAR_ZERO:
            return "marginal"
        return "critical" if fwd in ("keeps", "unknown") and bwd in ("keeps", "unknown") else "near-critical"
    if phase == "ordered" and bwd == "grows" or phase == "chaotic" and bwd == "shrinks":
        return "near-critical"
    return phase


def phase_story(summary: dict, prof: pd.DataFrame) -> PhaseStory:
    """The phase word and the sentences of the Theory page for one setting: `summary` is
    `setting_summary(cfg).summary`, `prof` is `predicted_profile(cfg)` (the chart beside the text)."""
    phase = summary["phase"]
    forward, backward = _ratios(prof)
    word = phase_word(summary, forward, backward)
    chi, q_star, L = summary["chi1"], summary["q_star"], len(prof)
    xi = summary["depth_scale_c"]
    chi_t = "undefined" if chi is None else f"{chi:.3g}"
    q_t = "∞" if q_star is None else sci(q_star, 3)
    lines = {
        "ordered": f"Ordered phase (χ₁ = {chi_t} < 1): once the signal has settled at q* = {q_t}, each layer "
                   "multiplies the gradient's second moment by χ₁, so gradients shrink"
                   + (f" by about e every {xi:.3g} layers" if xi else "") + " and different inputs become alike.",
        "chaotic": f"Chaotic phase (χ₁ = {chi_t} > 1): once the signal has settled at q* = {q_t}, gradients grow by "
                   f"a factor {chi_t} per layer and nearby inputs decorrelate.",
        "critical": f"Critical (χ₁ = 1, the edge of chaos): the variance stays at q* = {q_t} and gradients neither "
                    "vanish nor explode exponentially.",
        "marginal": "Critical only at q* = 0: χ₁ = 1 holds for a vanishing signal, so nothing changes exponentially, "
                    "but the variance still decays towards 0, slowly (polynomially in the depth, not exponentially), "
                    "and the gradient shrinks with it.",
        "near-critical": f"Near the edge of chaos: χ₁ = {chi_t} at the fixed point q* = {q_t}, so in a much deeper "
                         f"network gradients would slowly {'grow' if phase == 'chaotic' else 'shrink'}; over these "
                         f"{L} layers the signal is still settling from layer 1's q towards q*, and the gradient "
                         f"{trend(backward)} instead.",
        "unbounded": "No finite fixed point: the pre-activation variance grows without bound with depth; for large q "
                     f"each layer multiplies the gradient's second moment by about χ₁ = {chi_t}.",
    }
    sentences = [lines[word]]
    for s in (forward_sentence(prof), gradient_sentence(prof)):
        if s:
            sentences.append(s)
    crit = summary.get("critical_sigma_w2")
    sentences.append(f"At this σ_b² the edge of chaos is at σ_w² = {crit:.4g}." if crit is not None else
                     "At this σ_b² no σ_w² makes χ₁ = 1.")
    return PhaseStory(phase, word, forward, backward, tuple(sentences))


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


__all__ = ["KEEP_DECADES", "PHASE_WORDS", "PhaseStory", "trend", "phase_word", "phase_story", "pow10", "ratio_text",
           "gradient_sentence", "forward_sentence", "limitations"]
