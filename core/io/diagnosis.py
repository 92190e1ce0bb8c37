"""The health verdict: what the statistics table says, in words.

`diagnose(result)` reads the recorded statistics (at initialization and at the
latest step) and returns findings, each naming the layer and the step, with
what to try as `Suggestion`s: changes of the settings (data a button can
apply), worked out from the settings and the registry entries' `advice`,
never what is already set, the nearest change first. The thresholds are
deliberately round numbers that people can check against the charts.
"""
from __future__ import annotations

import math
from functools import lru_cache
from dataclasses import asdict, dataclass, field
from enum import StrEnum

import numpy as np

from core.fmt import power_of_ten, sci
from core.measure.records import COL
from core.registry import ACTIVATIONS, ARCHITECTURES, INITIALIZERS
from core.schema import ConfigError, RunConfig

# Three decades of change across the network is where training visibly stalls
# (SGD's step in the first layer is 1,000× smaller than in the last).
DECADES = 3.0
SATURATED = 0.5     # half of all entries in the flat region
DEAD = 0.5          # half of a layer's units never active on the batch (deep ReLU nets reach ~35% at He init, from correlated inputs)
SLOW_UPDATE = 1e-5  # update:data ratio; ~1e-3 is the usual healthy value
FAST_UPDATE = 1e-1

MAX_SUGGESTIONS = 3  # the nearest few; more reads as a shrug

class Kind(StrEnum):
    """What a finding is about (its value is the word the JSON carries)."""

    DIVERGED = "diverged"
    EXPLODING = "exploding"
    VANISHING = "vanishing"
    SATURATED = "saturated"
    DEAD = "dead"
    SLOW = "slow"
    FAST = "fast"


SEVERITY = {Kind.DIVERGED: 3, Kind.EXPLODING: 2, Kind.VANISHING: 2, Kind.SATURATED: 1, Kind.DEAD: 1, Kind.SLOW: 1,
            Kind.FAST: 1}
HEALTHY = "healthy"  # the verdict when there is no finding


@dataclass(frozen=True)
class Suggestion:
    """One change of settings that should fix a finding, as data a button can apply.

    `changes` are RunConfig fields and their new values (`cfg.replace(**changes)`);
    `label` is the imperative ("Switch to He/Kaiming normal initialization")
    and `why` one sentence on how it helps.
    """

    label: str
    changes: dict = field(hash=False)
    why: str

    def apply(self, cfg: RunConfig) -> RunConfig:
        return cfg.replace(**self.changes)

    def text(self, first: bool = True) -> str:
        label = self.label if first else "Or " + self.label[0].lower() + self.label[1:]
        return f"{label}: {self.why}"


@dataclass(frozen=True)
class Finding:
    kind: str      # diverged, vanishing, exploding, saturated, dead, slow, fast
    step: int
    layer: int | None
    sentence: str
    advice: str    # the suggestions in words (what to try)
    suggestions: tuple[Suggestion, ...] = ()


@dataclass(frozen=True)
class Diagnosis:
    verdict: str   # healthy, or the kind of the most severe finding
    headline: str
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "headline": self.headline, "findings": [asdict(f) for f in self.findings]}

    @classmethod
    def from_dict(cls, d: dict) -> "Diagnosis":
        findings = []
        for f in d.get("findings", []):
            f = dict(f)
            f["suggestions"] = tuple(Suggestion(**s) for s in f.get("suggestions", ()))
            findings.append(Finding(**f))
        return cls(d["verdict"], d["headline"], tuple(findings))


# -- what to try: the nearest changes of the settings that fix a finding -------------------------------
_BN_ON_WHY = ("it renormalizes every layer's pre-activations to mean 0, variance 1 over the batch, whatever the "
              "weights.")


def _init_label(name: str) -> str:
    return INITIALIZERS[name].label


def _same_scheme(init: str, other: str, activation_cfg: RunConfig) -> bool:
    """Whether two initializers are the same scheme to the signal: equal Var(W) at σ_w = 1 on a square
    layer of this network (He uniform is He normal; LeCun normal and orthogonal are Xavier there).
    The mean-field theory sees an initializer only through that number; σ_w's own parameter
    (normal/uniform) and data-driven schemes are never the same as a fixed one."""
    if init == other:
        return True
    a, b = INITIALIZERS[init], INITIALIZERS[other]
    if "intrinsic" in (a.sigma_w, b.sigma_w):
        return False
    width = activation_cfg.hidden_widths[len(activation_cfg.hidden_widths) // 2]
    sa, sb = a.weight_std(width, width), b.weight_std(width, width)
    return sa is not None and sb is not None and math.isclose(sa, sb, rel_tol=1e-9)


def _suited(cfg: RunConfig) -> bool:
    """The current initializer is (the same scheme as) the one made for the activation."""
    return _same_scheme(cfg.init, ACTIVATIONS[cfg.activation].advice.init, cfg)


def _switch_init(cfg: RunConfig, extra: dict | None = None) -> Suggestion | None:
    """The initializer made for this activation, at its published scale (σ_w = 1)."""
    advice = ACTIVATIONS[cfg.activation].advice
    if _suited(cfg):
        return None
    changes = {"init": advice.init, **(extra or {})}
    label = f"Switch to {_init_label(advice.init)} initialization"
    if cfg.sigma_w != 1.0 and INITIALIZERS[advice.init].uses_sigma_w:
        changes["sigma_w"] = 1.0
        label += " at σ_w = 1"
    return Suggestion(label, changes, advice.init_why)


def _switch_activation(cfg: RunConfig, to: str | None, why: str) -> Suggestion | None:
    if to is None or to == cfg.activation:
        return None
    changes = {"activation": to}
    target_init = ACTIVATIONS[to].advice.init
    label = f"Switch to {ACTIVATIONS[to].label}"
    if not _same_scheme(cfg.init, target_init, cfg):
        changes["init"] = target_init
        label += f" with {_init_label(target_init)} initialization"
    return Suggestion(label, changes, why)


def _critical_sigma_w(cfg: RunConfig) -> float | None:
    """σ_w at the edge of chaos for this activation and σ_b (mean-field theory), 3 digits; None if there is none."""
    sb = cfg.sigma_b if cfg.bias else 0.0
    return _critical_sigma_w_of(ACTIVATIONS[cfg.activation], sb * sb)


@lru_cache(maxsize=256)
def _critical_sigma_w_of(act, sigma_b2: float) -> float | None:
    # keyed by the entry, not its name: an entry registered again under the same name is a new key
    from core.theory.meanfield import critical_sigma_w2  # the theory is needed only for σ_w advice

    crit = critical_sigma_w2(act.name, sigma_b2)
    return None if crit is None or not math.isfinite(crit) else round(math.sqrt(crit), 3)


def _sigma_w(cfg: RunConfig, direction: int) -> Suggestion | None:
    """A σ_w change in `direction` (+1 larger, -1 smaller) within the current scheme."""
    ini = INITIALIZERS[cfg.init]
    if ini.sigma_w == "intrinsic":
        crit = _critical_sigma_w(cfg)
        if crit is not None and direction * (crit - cfg.sigma_w) > 0.02 * crit:
            sb = cfg.sigma_b if cfg.bias else 0.0
            return Suggestion(f"Set σ_w = {crit:g}", {"sigma_w": crit},
                              f"that is the edge of chaos for {ACTIVATIONS[cfg.activation].label} at σ_b = {sb:g}, "
                              f"where mean-field theory says the signal neither vanishes nor explodes with depth.")
    if ini.sigma_w == "ignored":
        return None
    if ini.sigma_w == "multiplier" and _suited(cfg) and \
            direction * (1.0 - cfg.sigma_w) > 0:
        return Suggestion("Set σ_w back to 1", {"sigma_w": 1.0},
                          f"σ_w = {cfg.sigma_w:g} moves {ini.label} away from its published scale, which is made for "
                          f"{ACTIVATIONS[cfg.activation].label}.")
    if direction < 0 and (ini.sigma_w == "intrinsic" or _suited(cfg)):
        smaller = round(cfg.sigma_w * 0.8, 3)
        if smaller > 0:
            return Suggestion(f"Lower σ_w to {smaller:g}", {"sigma_w": smaller},
                              "a smaller weight scale makes each layer multiply the signal by less; at this depth a "
                              "small excess per layer compounds.")
    if direction > 0 and ini.sigma_w == "intrinsic":
        larger = round(cfg.sigma_w * 1.25, 3)
        return Suggestion(f"Raise σ_w to {larger:g}", {"sigma_w": larger},
                          "a larger weight scale makes each layer pass on more of the signal; at this depth a small "
                          "loss per layer compounds.")
    return None


def _batchnorm_on(cfg: RunConfig) -> Suggestion | None:
    return None if cfg.batchnorm else Suggestion("Turn BatchNorm on", {"batchnorm": True}, _BN_ON_WHY)


def _fewer_layers(cfg: RunConfig) -> Suggestion | None:
    depth = len(cfg.hidden_widths)
    if depth < 4:
        return None
    return Suggestion(f"Use {depth // 2} layers instead of {depth}", {"depth": depth // 2, "width": cfg.hidden_widths[0]},
                      "every layer multiplies the change in scale, so half the depth halves it in decades.")


def _lr(cfg: RunConfig, factor: float, why: str) -> Suggestion:
    lr = float(f"{cfg.lr * factor:.3g}")
    return Suggestion(f"{'Lower' if factor < 1 else 'Raise'} the learning rate to {sci(lr, 3)}", {"lr": lr}, why)


def _suggest(cfg: RunConfig, kind: str, where: str = "", step: int = 0) -> tuple[Suggestion, ...]:
    """The changes that should fix a finding of `kind`, nearest first, none of them what is already set.

    `where` is "forward" or "backward" for vanishing/exploding findings.
    """
    if not isinstance(cfg, RunConfig):  # a network of the user's own (core.watch): no lab settings to change
        return ()
    act = ACTIVATIONS[cfg.activation]
    ini = INITIALIZERS[cfg.init]
    out: list[Suggestion | None] = []
    if kind == Kind.VANISHING:
        if ini.sigma_w == "intrinsic":
            out += [_sigma_w(cfg, +1), _switch_init(cfg)]
        else:
            out += [_switch_init(cfg), _sigma_w(cfg, +1)]
        out += [_switch_activation(cfg, act.advice.vanishing, act.advice.vanishing_why), _batchnorm_on(cfg),
                _fewer_layers(cfg)]
    elif kind == Kind.EXPLODING:
        if cfg.batchnorm and where == "backward":
            # BatchNorm without skips makes gradients grow with depth itself (Yang et al., 2019)
            why = ("without skip connections, BatchNorm's own backward pass makes gradients grow with depth "
                   "(Yang et al., 2019)")
            if _suited(cfg):
                out.append(Suggestion("Turn BatchNorm off", {"batchnorm": False},
                                      f"{why}; {ini.label} keeps the scale of {act.label} without it."))
            else:
                out.append(Suggestion(f"Turn BatchNorm off and switch to {_init_label(act.advice.init)} initialization",
                                      {"batchnorm": False, "init": act.advice.init,
                                       **({"sigma_w": 1.0} if cfg.sigma_w != 1.0 else {})},
                                      f"{why}; {act.advice.init_why}"))
            out += [_fewer_layers(cfg)]
        else:
            if ini.sigma_w == "intrinsic":
                out += [_sigma_w(cfg, -1), _switch_init(cfg)]
            else:
                out += [_switch_init(cfg), _sigma_w(cfg, -1)]
            out += [_batchnorm_on(cfg), _fewer_layers(cfg)]
    elif kind == Kind.SATURATED:
        out += [_sigma_w(cfg, -1) if ini.sigma_w == "intrinsic" or cfg.sigma_w > 1.0 else None,
                _switch_init(cfg), _batchnorm_on(cfg)]
    elif kind == Kind.DEAD:
        if ini.uses_sigma_b and cfg.bias and cfg.sigma_b > 0:
            out.append(Suggestion("Start the biases at 0", {"sigma_b": 0.0},
                                  f"a bias of spread σ_b = {cfg.sigma_b:g} pushes whole units onto the flat side of "
                                  f"{act.label} for every input."))
        out += [_switch_init(cfg), _switch_activation(cfg, act.advice.dead, act.advice.dead_why), _batchnorm_on(cfg)]
        if step > 0:
            out.append(_lr(cfg, 0.1, "large steps can push a unit's pre-activations onto the flat side for good."))
    elif kind == Kind.DIVERGED:
        out += [_lr(cfg, 0.1, "a step too large for the curvature sends the weights to infinity."),
                _sigma_w(cfg, -1), _batchnorm_on(cfg)]
    elif kind == Kind.SLOW:
        if cfg.lr * 10 <= 1000:
            out.append(_lr(cfg, 10, "at this rate each step changes the weights by a tiny fraction of their size."))
    elif kind == Kind.FAST:
        out.append(_lr(cfg, 0.1, "each step changes the weights by more than a tenth of their size."))
    seen: list[dict] = []
    kept: list[Suggestion] = []
    for sug in out:
        if sug is None or sug.changes in seen:
            continue
        try:
            new = sug.apply(cfg)
        except (ConfigError, ValueError):
            continue  # a change the settings do not allow is no suggestion
        if new == cfg:
            continue
        seen.append(sug.changes)
        kept.append(sug)
    return tuple(kept[:MAX_SUGGESTIONS])


def _advice(suggestions: tuple[Suggestion, ...], fallback: str) -> str:
    if not suggestions:
        return fallback
    return " ".join(s.text(first=i == 0) for i, s in enumerate(suggestions))


def _finding(kind: str, step: int, layer: int | None, sentence: str, cfg: RunConfig, where: str = "",
             fallback: str = "Nothing in these settings alone explains it; look at the data and the learning rate.") -> Finding:
    suggestions = _suggest(cfg, kind, where, step)
    return Finding(kind, step, layer, sentence, _advice(suggestions, fallback), suggestions)


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
    arch = cfg.architecture
    (fwd, bwd), (fwd_name, bwd_name), row = arch.signal, arch.signal_names, arch.row_label
    if L >= 2:
        g = rec[:, COL[bwd]]
        d = _decades(g[0], g[-1])
        if g[0] == 0 and math.isfinite(g[-1]):
            # no gradient at all reaches layer 1 (e.g. zero weights): no ratio, but the most vanished of all
            out.append(_finding(
                Kind.VANISHING, s, 1,
                f"Gradients vanish: at step {s}, {bwd_name} in {row} 1 is exactly zero, so the first {row} does not learn "
                f"at all.",
                cfg, "backward",
            ))
        elif d < -DECADES:
            out.append(_finding(
                Kind.VANISHING, s, 1,
                f"Gradients vanish: at step {s}, the variance of {bwd_name} in {row} 1 is {power_of_ten(d, 1)} of that in {row} {L}, "
                f"so the first {row}s barely learn.",
                cfg, "backward",
            ))
        elif d > DECADES:
            out.append(_finding(
                Kind.EXPLODING, s, 1,
                f"Gradients explode: at step {s}, the variance of {bwd_name} in {row} 1 is {power_of_ten(d, 1)} times that in {row} {L}.",
                cfg, "backward",
            ))
        q = rec[:, COL[fwd]]
        dq = _decades(q[-1], q[0])
        if q[-1] == 0 and math.isfinite(q[0]):
            out.append(_finding(
                Kind.VANISHING, s, L,
                f"Activations vanish: at step {s}, the {fwd_name} of {row} {L} is exactly zero, so the signal carries "
                f"nothing." if fwd != "preact_var" else
                f"Activations vanish: at step {s}, all pre-activations of {row} {L} are equal (variance exactly zero), "
                f"so the signal carries nothing.",
                cfg, "forward",
            ))
        elif dq < -DECADES:
            out.append(_finding(
                Kind.VANISHING, s, L,
                f"Activations vanish: at step {s}, the {fwd_name} of {row} {L} is {power_of_ten(dq, 1)} of {row} 1's.",
                cfg, "forward",
            ))
        elif dq > DECADES:
            out.append(_finding(
                Kind.EXPLODING, s, L,
                f"Activations explode: at step {s}, the {fwd_name} of {row} {L} is {power_of_ten(dq, 1)} times {row} 1's.",
                cfg, "forward",
            ))
    sat = rec[:, COL["saturation"]]
    if np.nanmax(sat, initial=0) > SATURATED and ACTIVATIONS[cfg.activation].saturates:
        worst = int(np.nanargmax(sat))
        out.append(_finding(
            Kind.SATURATED, s, worst + 1,
            f"Saturated: at step {s}, {sat[worst]:.0%} of {arch.row_name(worst + 1)}'s pre-activations sit in {ACTIVATIONS[cfg.activation].label}'s "
            f"flat region, where its slope is under a tenth of its peak.",
            cfg,
        ))
    dead = rec[:, COL["dead_units"]]
    if np.nanmax(dead, initial=0) > DEAD:
        worst = int(np.nanargmax(dead))
        out.append(_finding(
            Kind.DEAD, s, worst + 1,
            f"Dead units: at step {s}, {dead[worst]:.0%} of {arch.row_name(worst + 1)}'s units are flat for every example in the batch "
            f"and get no gradient.",
            cfg,
        ))
    return out


# -- recurrent nets: rows per (layer, time step), read through time -----------------------------------

def _recurrent_suggest(cfg: RunConfig, kind: str) -> tuple[Suggestion, ...]:
    """What to try when the gradient through time vanishes or explodes, from the settings and the arch entry."""
    arch = cfg.architecture
    out: list[Suggestion] = []
    if kind == Kind.VANISHING:
        if arch.gated_alternative is not None:
            out.append(Suggestion(f"Switch to an {ARCHITECTURES[arch.gated_alternative].label}",
                                  {"arch": arch.gated_alternative},
                                  "its cell state passes the gradient back through the forget gate alone, with no "
                                  "W_hh and no φ′ on the way."))
        if cfg.sigma_w < 1.0:
            out.append(Suggestion("Set σ_w to 1", {"sigma_w": 1.0}, "W_hh's spectral radius follows σ_w: at 1 the "
                                  "recurrent matrix keeps the gradient's size and only φ′ shrinks it."))
        if arch.takes("forget_bias") and cfg.forget_bias < 2.0:
            out.append(Suggestion("Raise the forget-gate bias to 2", {"forget_bias": 2.0},
                                  "σ(2) ≈ 0.88 of the cell's gradient survives each step instead of σ(1) ≈ 0.73."))
    elif kind == Kind.EXPLODING and cfg.sigma_w > 1.0:
        out.append(Suggestion("Set σ_w to 1", {"sigma_w": 1.0}, "with W_hh's spectral radius above 1 the gradient "
                              "grows by about σ_w² per step back in time."))
    kept = []
    for sug in out:
        try:
            if sug.apply(cfg) != cfg:
                kept.append(sug)
        except (ConfigError, ValueError):
            continue
    return tuple(kept[:MAX_SUGGESTIONS])


def _through_time(stats: np.ndarray, steps: np.ndarray, i: int, cfg) -> list[Finding]:
    """The findings of one record of a recurrent run: its top layer read along time."""
    s = int(steps[i, 0])
    T = cfg.time_steps
    rec = stats[i].reshape(-1, T, stats.shape[-1])
    top = rec[-1]
    out: list[Finding] = []

    def finding(kind, sentence):
        sug = _recurrent_suggest(cfg, kind)
        return Finding(kind, s, cfg.depth, sentence, _advice(sug, "Try a shorter sequence."), sug)

    if T >= 2:
        d = _decades(top[0, COL["grad_act_var"]], top[-1, COL["grad_act_var"]])
        if d < -DECADES:
            out.append(finding(Kind.VANISHING, f"The gradient vanishes through time: at step {s}, Var(∂L/∂h_t) at t = 1 "
                                               f"is 10^{d:.1f} of that at t = {T}, so what the network saw first "
                                               f"barely shapes what it learns."))
        elif d > DECADES:
            out.append(finding(Kind.EXPLODING, f"The gradient explodes through time: at step {s}, Var(∂L/∂h_t) at t = 1 "
                                               f"is 10^{d:.1f} times that at t = {T}."))
        dq = _decades(top[-1, COL["act_var"]], top[0, COL["act_var"]])
        if dq > DECADES:
            out.append(finding(Kind.EXPLODING, f"The state explodes over time: at step {s}, Var(h_t) at t = {T} is "
                                               f"10^{dq:.1f} times that at t = 1."))
    for col, what in (("saturation", "of the state's pre-activations sit in φ's flat region"),
                      ("gate_saturation", "of the gates sit in the sigmoid's flat region (stuck open or shut)")):
        v = rec[:, :, COL[col]]
        if np.isfinite(v).any() and np.nanmax(v) > SATURATED:
            l, t = np.unravel_index(int(np.nanargmax(v)), v.shape)
            sug = ()
            out.append(Finding(Kind.SATURATED, s, int(l) + 1, f"Saturated: at step {s}, {v[l, t]:.0%} {what} at time "
                                                              f"step {int(t) + 1} of layer {int(l) + 1}.",
                               _advice(sug, "Lower σ_w or the learning rate."), sug))
    return out


def diagnose(result) -> Diagnosis:
    """Findings at initialization and at the latest record of a RunResult or Snapshot."""
    cfg = result.config
    stats, steps = result.stats, result.steps
    findings: list[Finding] = []
    if result.divergence is not None:
        dv = result.divergence
        findings.append(_finding(Kind.DIVERGED, dv.step, dv.layer, dv.sentence(cfg) + " Training stopped there.", cfg))
    if len(steps):
        seen = set()
        at = _through_time if getattr(cfg, "time_steps", 0) else _at  # recurrent rows: read along time
        for i in sorted({0, len(steps) - 1}):
            for f in at(stats, steps, i, cfg):
                if (f.kind, f.layer) not in seen:  # say it once, at the earliest step
                    seen.add((f.kind, f.layer))
                    findings.append(f)
        upd = stats[-1, :, COL["update_ratio"]]
        upd = upd[np.isfinite(upd) & (upd > 0)]
        if upd.size and int(steps[-1, 0]) > 0:
            med = float(np.median(upd))
            s = int(steps[-1, 0])
            if med < SLOW_UPDATE:
                findings.append(_finding(Kind.SLOW, s, None, f"Updates are tiny: the median update:data ratio at step {s} is {sci(med)} (about 10⁻³ is healthy).",
                                         cfg, fallback="Fix a vanishing gradient first."))
            elif med > FAST_UPDATE:
                findings.append(_finding(Kind.FAST, s, None, f"Updates are huge: the median update:data ratio at step {s} is {sci(med)} (about 10⁻³ is healthy).",
                                         cfg))
    findings.sort(key=lambda f: -SEVERITY[f.kind])
    if not findings:
        if not len(steps):
            return Diagnosis("pending", "Nothing recorded yet.", ())
        return Diagnosis(HEALTHY, "Healthy: activations and gradients stay within three decades of scale across the "
                                    "layers, forward and backward, and no layer is mostly saturated or dead.", ())
    top = findings[0]
    return Diagnosis(top.kind, top.sentence, tuple(findings))
