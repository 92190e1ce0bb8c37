"""One cell of a sweep: `train(cfg)`, then the few numbers the sweep table keeps.

The metrics come from the same `RunResult` that `python -m core run` writes,
so a cell's row equals what that command's table says for the same settings:
the last record's loss and accuracies, the step it diverged at, and the
step-0 gradient ratio between the first and the last hidden layer (for a
recurrent net: between the first and the last time step of its top layer).
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from core.schema import RunConfig

# "Trained" in one place: the final accuracy is at least this fraction of the way from chance (1/classes)
# to perfect. A quarter is far above what an untrained network's argmax reaches by luck on any of our
# datasets (≈ chance ± a few points on digits' 359 test images) and well below what a trainable net gets.
TRAINED_FRACTION = 0.25

METRIC_COLUMNS = ("final_loss", "final_train_accuracy", "final_test_accuracy", "trained", "diverged_step",
                  "grad_ratio_init", "depth_scale_q", "depth_scale_c", "phase", "seconds", "status")
NOT_COVERED = "not covered"  # phase of a cell the mean-field theory does not describe (BatchNorm, LSUV)


def trained_threshold(cfg: RunConfig) -> float:
    """The accuracy a cell must reach to count as trained."""
    chance = 1.0 / cfg.classes
    return chance + TRAINED_FRACTION * (1.0 - chance)


def is_trained(cfg: RunConfig, test_accuracy: float, train_accuracy: float, diverged: bool) -> bool:
    """Held-out accuracy when it was measured (eval_every > 0), else the last batch's."""
    acc = test_accuracy if math.isfinite(test_accuracy) else train_accuracy
    return (not diverged) and math.isfinite(acc) and acc >= trained_threshold(cfg)


def theory_columns(cfg: RunConfig) -> dict[str, Any]:
    """ξ_q, ξ_c and the phase for the cell's activation and its hidden layers' effective σ_w², σ_b².

    Under `normal`/`uniform` those are σ_w², σ_b² themselves; other schemes
    are seen through `effective_sigma2` (fan_in · Var W) of a hidden-to-hidden
    layer. BatchNorm and LSUV are not covered by the theory: NaN, phase
    "not covered". ξ = inf at criticality.
    """
    from core import theory as T

    widths = cfg.hidden_widths
    if not cfg.architecture.mlp_theory:  # a residual stream, convolutions, recurrence: not the MLP's phase diagram
        return {"depth_scale_q": math.nan, "depth_scale_c": math.nan, "phase": NOT_COVERED}
    eff = None if cfg.batchnorm else T.effective_sigma2(cfg.init, widths[0], widths[1] if len(widths) > 1 else widths[0],
                                                       cfg.sigma_w, cfg.sigma_b)
    if eff is None:
        return {"depth_scale_q": math.nan, "depth_scale_c": math.nan, "phase": NOT_COVERED}
    sw2, sb2 = eff[0], (eff[1] if cfg.bias else 0.0)
    xi_q, xi_c = T.depth_scales(cfg.activation, sw2, sb2)
    return {"depth_scale_q": float(xi_q), "depth_scale_c": float(xi_c), "phase": T.phase(cfg.activation, sw2, sb2)}


def metrics(result) -> dict[str, Any]:
    """The sweep table's measured columns from a `RunResult` (without `seconds`/`status`)."""
    cfg = result.config
    steps = result.step_rows
    if len(steps):
        last = steps.iloc[-1]
        loss, train_acc, test_acc = float(last["loss"]), float(last["train_accuracy"]), float(last["test_accuracy"])
    else:  # record_every = 0: nothing recorded
        loss = train_acc = test_acc = math.nan
    layers = result.layers
    first = layers[layers["step"] == 0]
    ratio = math.nan
    if len(first) and cfg.time_steps:
        # rows per (layer, time step): the gradient through time, Var(∂L/∂h_t) of the top layer at t = 1
        # over t = T (as the verdict reads a recurrent run)
        top = first[first["layer"] == first["layer"].max()].sort_values("time", kind="stable")
        g = top["grad_act_var"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = float(np.log10(g[0] / g[-1]))
    elif len(first):
        g = first.sort_values("layer", kind="stable")["grad_preact_var"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = float(np.log10(g[0] / g[-1]))
    diverged = result.divergence is not None
    return {
        "final_loss": loss,
        "final_train_accuracy": train_acc,
        "final_test_accuracy": test_acc,
        "trained": is_trained(cfg, test_acc, train_acc, diverged),
        "diverged_step": result.divergence.step if diverged else None,
        "grad_ratio_init": ratio,
    }


def step0_profile(result) -> dict[str, list[float]]:
    """Step-0 per-layer variances, for the "variance by depth for each initializer" chart."""
    layers = result.layers
    first = layers[layers["step"] == 0].sort_values("layer")
    return {c: [float(v) for v in first[c]] for c in ("preact_var", "act_var", "grad_preact_var")}


def failed_row(cfg: RunConfig, reason: str, seconds: float = math.nan) -> dict[str, Any]:
    row = {c: math.nan for c in METRIC_COLUMNS}
    row.update(trained=False, diverged_step=None, seconds=seconds, status=f"failed: {reason}")
    row.update(theory_columns(cfg))
    return row


def run_cell(cfg: RunConfig) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Train one cell; (its row of metrics, its step-0 profile). Never raises for a failing run:
    the row's status says `failed: reason`."""
    from core.run.engine import train

    t0 = time.perf_counter()
    try:
        result = train(cfg, threads=1)
        row = metrics(result)
        profile = step0_profile(result)
    except Exception as e:  # noqa: BLE001 - a cell's failure is data, not a crash of the sweep
        return failed_row(cfg, _reason(e), time.perf_counter() - t0), {}
    row.update(theory_columns(cfg))
    row.update(seconds=time.perf_counter() - t0, status="ok")
    return row, profile


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:200]
