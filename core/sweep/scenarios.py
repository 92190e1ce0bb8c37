"""Shipped sweeps: each a SweepSpec with a story, opened on the Sweep page in one click."""
from __future__ import annotations

import math
from dataclasses import dataclass

from core.schema import RunConfig
from core.sweep.spec import SweepSpec


@dataclass(frozen=True)
class SweepScenario:
    key: str
    title: str
    story: str
    spec: SweepSpec
    metric: str = "final_test_accuracy"

    def __repr__(self) -> str:
        return f"SweepScenario({self.key!r}: {self.spec!r})"


# Records only at step 0 and at the end (record_every = steps): the table needs nothing in between,
# and a cell costs little more than training alone.
_STEPS = 400
_DEEP_TANH = RunConfig(activation="tanh", init="normal", sigma_b=math.sqrt(0.05), dataset="digits", width=64,
                       batch_size=64, steps=_STEPS, lr=0.01, optimizer="sgd", seed=0, record_every=_STEPS,
                       eval_every=_STEPS)

SWEEP_SCENARIOS: dict[str, SweepScenario] = {
    s.key: s
    for s in [
        SweepScenario(
            "trainable_depth_6xi", "Trainable depth is about 6 ξ_c",
            "Schoenholz et al. (2017) trained tanh networks over depth × σ_w² at σ_b² = 0.05 and found that only "
            "those shallower than about 6 ξ_c train: ξ_c, the depth over which two inputs' correlation settles, "
            "diverges at the order-to-chaos transition (σ_w² ≈ 1.76 here), so the trainable region is a tongue "
            "around it. 64 real training runs on the digits, drawn with ξ_c and 6 ξ_c on top.",
            SweepSpec.parse(["depth=4:60:8", "sigma_w=0.8:2.4:8"], _DEEP_TANH),
        ),
        SweepScenario(
            "variance_by_init", "Variance by depth for each initializer",
            "The textbook picture of initialization: the variance of each layer's pre-activations at initialization, "
            "one curve per initializer, beside what mean-field theory predicts. ReLU at depth 20: He keeps the variance, "
            "Xavier, LeCun and orthogonal halve it at every layer, the torch default divides it by six until "
            "its biases set a floor.",
            SweepSpec.parse(["init=xavier_normal,kaiming_normal,lecun_normal,orthogonal,torch_default"],
                            RunConfig(activation="relu", depth=20, width=128, dataset="digits", steps=0,
                                      record_every=1, eval_every=0)),
            metric="grad_ratio_init",
        ),
    ]
}

__all__ = ["SweepScenario", "SWEEP_SCENARIOS"]
