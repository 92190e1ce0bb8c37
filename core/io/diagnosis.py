"""The health verdict: what the statistics table says, in words.

`diagnose(result)` reads the recorded statistics (at initialization and at the
latest step) and returns findings, each naming the layer and the step, with
one sentence on what to try. The thresholds are deliberately round numbers
that people can check against the charts.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from core.measure.records import COL

# Three decades of change across the network is where training visibly stalls
# (SGD's step in the first layer is 1,000× smaller than in the last).
DECADES = 3.0
SATURATED = 0.5     # half of all entries in the flat region
DEAD = 0.5          # half of a layer's units never active on the batch (deep ReLU nets reach ~35% at He init, from correlated inputs)
SLOW_UPDATE = 1e-5  # update:data ratio; ~1e-3 is the usual healthy value
FAST_UPDATE = 1e-1

SEVERITY = {"diverged": 3, "exploding": 2, "vanishing": 2, "saturated": 1, "dead": 1, "slow": 1, "fast": 1}


@dataclass(frozen=True)
class Finding:
    kind: str      # diverged, vanishing, exploding, saturated, dead, slow, fast
    step: int
    layer: int | None
    sentence: str
    advice: str


@dataclass(frozen=True)
class Diagnosis:
    verdict: str   # healthy, or the kind of the most severe finding
    headline: str
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "headline": self.headline, "findings": [asdict(f) for f in self.findings]}

    @classmethod
    def from_dict(cls, d: dict) -> "Diagnosis":
        return cls(d["verdict"], d["headline"], tuple(Finding(**f) for f in d.get("findings", [])))


def _decades(a: float, b: float) -> float:
    """log10(a / b), or NaN where either is not a positive finite number."""
    a, b = float(a), float(b)
    if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
        return math.nan
    return math.log10(a) - math.log10(b)  # no overflow for a/b near the float limits


def _at(stats: np.ndarray, steps: np.ndarray, i: int, cfg) -> list[Finding]:
    s = int(steps[i, 0])
    rec = stats[i]
    L = rec.shape[0]
    out: list[Finding] = []
    if L >= 2:
        g = rec[:, COL["grad_preact_var"]]
        d = _decades(g[0], g[-1])
        if g[0] == 0 and math.isfinite(g[-1]):
            # no gradient at all reaches layer 1 (e.g. zero weights): no ratio, but the most vanished of all
            out.append(Finding(
                "vanishing", s, 1,
                f"Gradients vanish: at step {s}, ∂L/∂h in layer 1 is exactly zero, so the first layer does not learn at all.",
                _advice_vanishing(cfg),
            ))
        elif d < -DECADES:
            out.append(Finding(
                "vanishing", s, 1,
                f"Gradients vanish: at step {s}, the variance of ∂L/∂h in layer 1 is 10^{d:.1f} of that in layer {L}, "
                f"so the first layers barely learn.",
                _advice_vanishing(cfg),
            ))
        elif d > DECADES:
            out.append(Finding(
                "exploding", s, 1,
                f"Gradients explode: at step {s}, the variance of ∂L/∂h in layer 1 is 10^{d:.1f} times that in layer {L}.",
                "Use a smaller initial scale (Xavier for tanh, He for ReLU, or lower σ_w), or turn BatchNorm on.",
            ))
        q = rec[:, COL["preact_var"]]
        dq = _decades(q[-1], q[0])
        if q[-1] == 0 and math.isfinite(q[0]):
            out.append(Finding(
                "vanishing", s, L,
                f"Activations vanish: at step {s}, all pre-activations of layer {L} are equal (variance exactly zero), "
                f"so the signal carries nothing.",
                _advice_vanishing(cfg),
            ))
        elif dq < -DECADES:
            out.append(Finding(
                "vanishing", s, L,
                f"Activations vanish: at step {s}, the pre-activation variance of layer {L} is 10^{dq:.1f} of layer 1's.",
                _advice_vanishing(cfg),
            ))
        elif dq > DECADES:
            out.append(Finding(
                "exploding", s, L,
                f"Activations explode: at step {s}, the pre-activation variance of layer {L} is 10^{dq:.1f} times layer 1's.",
                "Lower σ_w or pick the initializer made for this activation (He for ReLU, Xavier/LeCun for tanh and SELU).",
            ))
    sat = rec[:, COL["saturation"]]
    if np.nanmax(sat, initial=0) > SATURATED and cfg.activation in ("tanh", "sigmoid"):
        worst = int(np.nanargmax(sat))
        out.append(Finding(
            "saturated", s, worst + 1,
            f"Saturated: at step {s}, {sat[worst]:.0%} of layer {worst + 1}'s pre-activations sit in {cfg.activation}'s "
            f"flat region, where its slope is under a tenth of its peak.",
            "Shrink the weights (Xavier normal, or a smaller σ_w) so pre-activations stay in the linear range, or turn BatchNorm on.",
        ))
    dead = rec[:, COL["dead_units"]]
    if np.nanmax(dead, initial=0) > DEAD:
        worst = int(np.nanargmax(dead))
        out.append(Finding(
            "dead", s, worst + 1,
            f"Dead units: at step {s}, {dead[worst]:.0%} of layer {worst + 1}'s units are flat for every example in the batch "
            f"and get no gradient.",
            "Use He initialization with zero biases, a smaller learning rate, or leaky ReLU / ELU.",
        ))
    return out


def _advice_vanishing(cfg) -> str:
    if cfg.activation == "sigmoid":
        return "Sigmoid's slope is at most 1/4: switch to tanh or ReLU, or turn BatchNorm on."
    if cfg.activation in ("relu", "leaky_relu", "gelu", "silu", "elu"):
        return "Use He (kaiming_normal) initialization: its factor 2 makes up for the half of the signal ReLU zeroes."
    if cfg.activation == "selu":
        return "Use LeCun normal initialization with SELU: together they self-normalize."
    return "Use Xavier (Glorot) initialization, or σ_w² at the theory's critical value, or turn BatchNorm on."


def diagnose(result) -> Diagnosis:
    """Findings at initialization and at the latest record of a RunResult or Snapshot."""
    cfg = result.config
    stats, steps = result.stats, result.steps
    findings: list[Finding] = []
    if result.divergence is not None:
        dv = result.divergence
        findings.append(Finding(
            "diverged", dv.step, dv.layer, dv.sentence() + " Training stopped there.",
            "Lower the learning rate or the initial weight scale (σ_w); BatchNorm also helps.",
        ))
    if len(steps):
        seen = set()
        for i in sorted({0, len(steps) - 1}):
            for f in _at(stats, steps, i, cfg):
                if (f.kind, f.layer) not in seen:  # say it once, at the earliest step
                    seen.add((f.kind, f.layer))
                    findings.append(f)
        upd = stats[-1, :, COL["update_ratio"]]
        upd = upd[np.isfinite(upd) & (upd > 0)]
        if upd.size and int(steps[-1, 0]) > 0:
            med = float(np.median(upd))
            s = int(steps[-1, 0])
            if med < SLOW_UPDATE:
                findings.append(Finding("slow", s, None, f"Updates are tiny: the median update:data ratio at step {s} is {med:.1e} (about 1e-3 is healthy).",
                                        "Raise the learning rate, or fix a vanishing gradient first."))
            elif med > FAST_UPDATE:
                findings.append(Finding("fast", s, None, f"Updates are huge: the median update:data ratio at step {s} is {med:.1e} (about 1e-3 is healthy).",
                                        "Lower the learning rate."))
    findings.sort(key=lambda f: -SEVERITY[f.kind])
    if not findings:
        if not len(steps):
            return Diagnosis("pending", "Nothing recorded yet.", ())
        return Diagnosis("healthy", "Healthy: activations and gradients stay within three decades of scale across the "
                                    "layers, forward and backward, and no layer is mostly saturated or dead.", ())
    top = findings[0]
    return Diagnosis(top.kind, top.sentence, tuple(findings))
