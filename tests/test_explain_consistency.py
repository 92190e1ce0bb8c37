"""The Theory page's words never contradict each other, the chart beside them, or the real network.

Over a grid of settings (every activation × σ_w × σ_b, the mean-field `normal` initializer), the phase word
of `core.theory.phase_story` is held to what it claims, with this file's own reading of each word:

* against the theory's predicted trend over the network's layers (the dashed lines of the chart beside the
  text: `predicted_profile`'s q and grad_rel, first layer vs last);
* against the real network measured at initialization (`measured_profile`: one forward and backward pass
  of a width-128 network), with a margin for finite width;
* and the sentences say the same as the numbers: "keeps its size", "shrinks", "grows", "falls" only when the
  chart's numbers do so.

The defect this guards against (issue 11): tanh, Xavier, σ_b = 0 was called "Critical … keep their size"
beside "the gradient shrinks: 0.051 ×" and a forward variance that fell tenfold.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from core import theory as T
from core.registry import ACTIVATIONS
from core.schema import RunConfig

from core.theory.explain import KEEP_DECADES as K  # noqa: E402
SIGMA_W = (0.5, 1.0, 1.2, 1.5, 2.0)
SIGMA_B = (0.0, 0.3, 1.0)
GRID = [(a, w, b) for a in ACTIVATIONS for w in SIGMA_W for b in SIGMA_B]
MEASURED_WIDTH = 128  # the real network's width (the claims are the theory's, for infinitely wide layers)
MEASURE_MARGIN = 0.3  # decades: a width-128 network at step 0 strays this far from the infinitely wide theory


def _cfg(activation, sigma_w, sigma_b, depth=12, width=256):
    return RunConfig(activation=activation, init="normal", sigma_w=sigma_w, sigma_b=sigma_b, depth=depth,
                     width=width, dataset="gaussian", batch_size=128, seed=0)


def _decades(x: float) -> float:
    if x == 0:
        return -math.inf
    return math.log10(x) if math.isfinite(x) else (math.inf if x > 0 else math.nan)


def claim_holds(word: str, phase: str, forward: float, backward: float, margin: float) -> bool:
    """This test's reading of each word, as trends of q (layer L / layer 1) and of the gradient (layer 1 / L)."""
    f, b = _decades(forward), _decades(backward)
    keep = K + margin
    return {
        "ordered": b < keep,                                     # the gradient does not grow
        "chaotic": b > -keep,                                    # ... does not shrink
        "critical": abs(f) < keep and abs(b) < keep,             # both keep their size
        "marginal": f < -K + margin and b < keep,                # the variance decays, the gradient does not grow
        "near-critical": (b < -K + margin) if phase == "chaotic" else (b > K - margin),  # opposite of the phase
        "unbounded": f > -keep,                                  # the variance does not decay
    }[word]


def _story(cfg):
    summary = T.setting_summary(cfg).summary
    prof = T.predicted_profile(cfg)
    return summary, prof, T.phase_story(summary, prof)


@pytest.mark.parametrize("activation,sigma_w,sigma_b", GRID)
def test_phase_word_agrees_with_the_predicted_trend(activation, sigma_w, sigma_b):
    summary, prof, story = _story(_cfg(activation, sigma_w, sigma_b))
    assert story.word in T.PHASE_WORDS
    q, g = np.asarray(prof["q"]), np.asarray(prof["grad_rel"])
    fwd, bwd = q[-1] / q[0], g[0]
    assert claim_holds(story.word, summary["phase"], fwd, bwd, 0.0), (story.word, fwd, bwd, story.text)
    if story.word == "near-critical":  # only where the asymptotic phase is close to its edge
        assert 0.8 < summary["chi1"] < 1.25, summary["chi1"]
    # the sentences say what the chart's numbers do
    text = story.text
    grad = T.gradient_sentence(prof)
    assert grad in text
    expected = {"keeps": "keeps its size", "shrinks": "gradient shrinks", "grows": "gradient grows"}[T.trend(bwd)] \
        if math.isfinite(bwd) and bwd > 0 else None
    if expected:
        assert expected in grad
    forward = T.forward_sentence(prof)
    if math.isfinite(fwd):
        assert ("falls" in forward) == (T.trend(fwd) == "shrinks")
        assert ("grows" in forward) == (T.trend(fwd) == "grows")
    if "keep their size" in text or "neither vanish nor explode" in text:
        assert story.word == "critical"
    assert "^" not in text and "e-" not in text.replace("e-activation", "")  # exponents are superscripts


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_phase_word_agrees_with_the_real_network_at_init(activation):
    """The same claims, read off a real width-128 network measured at step 0 (the chart's dots)."""
    for sigma_w in SIGMA_W:
        for sigma_b in SIGMA_B:
            cfg = _cfg(activation, sigma_w, sigma_b)
            summary, _, story = _story(cfg)
            m = T.measured_profile(cfg.replace(width=MEASURED_WIDTH, batch_size=64))
            fwd, bwd = m["q"].iloc[-1] / m["q"].iloc[0], m["grad_rel"].iloc[0]
            assert claim_holds(story.word, summary["phase"], fwd, bwd, MEASURE_MARGIN), \
                (activation, sigma_w, sigma_b, story.word, fwd, bwd, story.text)


def test_the_theory_pages_default_no_longer_contradicts_itself():
    """tanh, Xavier, σ_b = 0, depth 20 (the Theory page's default): χ₁ = 1 only at q* = 0."""
    cfg = RunConfig(activation="tanh", init="xavier_normal", depth=20, width=256, dataset="gaussian")
    summary, prof, story = _story(cfg)
    assert summary["phase"] == "critical" and summary["q_star"] == 0.0
    assert story.word == "marginal"
    assert "polynomially" in story.text and "keep their size" not in story.text
    assert "gradient shrinks" in story.text and "falls to" in story.text


def test_he_relu_is_critical_and_says_so():
    cfg = RunConfig(activation="relu", init="kaiming_normal", depth=20, width=256, dataset="gaussian")
    summary, prof, story = _story(cfg)
    assert story.word == "critical"
    assert "keeps its size" in story.text and "about the same" in story.text


def test_near_critical_tanh_says_why_its_gradient_shrinks():
    """tanh at σ_w = 1.2, σ_b = 0 is chaotic (χ₁ ≈ 1.03 at q* ≈ 0.25), yet its 12 layers shrink the gradient."""
    summary, prof, story = _story(_cfg("tanh", 1.2, 0.0))
    assert summary["phase"] == "chaotic" and story.word == "near-critical"
    assert "would slowly grow" in story.text and "shrinks instead" in story.text


def test_trend_words():
    assert [T.trend(x) for x in (1.0, 1.9, 0.6, 0.4, 2.5, 0.0, math.inf, math.nan)] == \
        ["keeps", "keeps", "keeps", "shrinks", "grows", "shrinks", "grows", "unknown"]
