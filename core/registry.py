"""Name -> object registries: the single source of truth for every choice.

The CLI choices, the URL values, the dashboard's select boxes and the tests all
come from these dicts, so adding an activation, an initializer, a dataset or an
optimizer is one entry here (plus, for an initializer, its function in
`core.models.init`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

# SELU's constants (Klambauer et al., 2017), as torch uses them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class Activation:
    """An elementwise nonlinearity φ.

    `fn` works on tensors of any dtype (the theory evaluates it in float64).
    φ's flat region is where, on its saturating side, |φ'(h)| has fallen
    below a tenth of its largest value: h ≤ `flat_below` (ReLU: h ≤ 0) or
    |h| > `flat_beyond` (tanh: 1.818, sigmoid: 3.636). That is what
    `saturation` and `dead_units` count. `torch_name` is what
    `torch.nn.init.calculate_gain` calls it. `slope_from_output` is φ'(h)
    written as a plain scalar function of a = φ(h), where that is exact and
    is the very formula PyTorch's backward uses (None elsewhere): with it
    the statistics of ∂L/∂h = ∂L/∂a · φ'(h) come from ∂L/∂a and a. The
    measuring kernels are compiled from it (Numba's nopython subset: scalar
    arithmetic and comparisons; a zero slope gives exactly 0, never ∞·0).
    """

    name: str
    label: str
    help: str
    fn: Callable[[Tensor], Tensor]
    flat_below: float | None
    flat_beyond: float | None
    torch_name: str
    keras_name: str
    module_code: str  # the nn.Module that builds it, for the code snippet
    slope_from_output: Callable[[float], float] | None = None

    def flat(self, h: Tensor) -> Tensor:
        """Boolean mask of the entries of h in the flat region."""
        if self.flat_beyond is not None:
            return h.abs() > self.flat_beyond
        if self.flat_below is not None:
            return h <= self.flat_below
        return torch.zeros_like(h, dtype=torch.bool)

    def __repr__(self) -> str:
        return f"Activation({self.name!r}: {self.label})"


# φ'(h) from a = φ(h) (`Activation.slope_from_output`): module-level, scalar, Numba-compilable.
def _identity_slope(a):
    return 1.0


def _sigmoid_slope(a):
    return a * (1.0 - a)


def _tanh_slope(a):
    return 1.0 - a * a


def _relu_slope(a):
    return 1.0 if a > 0.0 else 0.0


def _leaky_relu_slope(a):
    return 1.0 if a > 0.0 else LEAKY_SLOPE


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation(
            "linear", "Linear (identity)", "φ(h) = h. No nonlinearity: a deep linear network, the cleanest case for theory.",
            lambda h: h, None, None, "linear", "linear", "nn.Identity()", _identity_slope,
        ),
        Activation(
            "sigmoid", "Sigmoid", "φ(h) = 1/(1+e^-h). Saturates at both ends and its slope is at most 1/4, so gradients shrink layer after layer.",
            torch.sigmoid, None, 3.636, "sigmoid", "sigmoid", "nn.Sigmoid()", _sigmoid_slope,
        ),
        Activation(
            "tanh", "Tanh", "φ(h) = tanh(h). Zero-centred, slope 1 at the origin, saturates for |h| ≳ 2.",
            torch.tanh, None, 1.818, "tanh", "tanh", "nn.Tanh()", _tanh_slope,
        ),
        Activation(
            "relu", "ReLU", "φ(h) = max(0, h). Never saturates for h > 0 but is exactly flat for h < 0: halves the variance, hence He's factor 2.",
            F.relu, 0.0, None, "relu", "relu", "nn.ReLU()", _relu_slope,
        ),
        Activation(
            "leaky_relu", "Leaky ReLU (0.01)", "φ(h) = h for h > 0, 0.01·h otherwise. A small slope keeps units from dying completely.",
            lambda h: F.leaky_relu(h, LEAKY_SLOPE), 0.0, None, "leaky_relu", "leaky_relu", "nn.LeakyReLU(0.01)", _leaky_relu_slope,
        ),
        Activation(
            "elu", "ELU", "φ(h) = h for h > 0, e^h − 1 otherwise. Smooth, with negative outputs that pull the mean toward 0.",
            F.elu, -2.303, None, "linear", "elu", "nn.ELU()",
        ),
        Activation(
            "selu", "SELU", "Scaled ELU (λ≈1.0507, α≈1.6733). With LeCun normal weights it drives activations to mean 0, variance 1: self-normalizing.",
            F.selu, -2.303, None, "selu", "selu", "nn.SELU()",
        ),
        Activation(
            "gelu", "GELU", "φ(h) = h·Φ(h), the Gaussian-weighted ReLU used in Transformers.",
            F.gelu, -1.728, None, "linear", "gelu", "nn.GELU()",
        ),
        Activation(
            "silu", "SiLU / Swish", "φ(h) = h·sigmoid(h). Smooth and non-monotonic, like GELU.",
            F.silu, -0.883, None, "linear", "silu", "nn.SiLU()",
        ),
        Activation(
            "softplus", "Softplus", "φ(h) = log(1 + e^h), a smooth ReLU; its slope is sigmoid(h).",
            F.softplus, -2.197, None, "linear", "softplus", "nn.Softplus()",
        ),
    ]
}


@dataclass(frozen=True)
class Initializer:
    """A weight initialization scheme.

    `weight_std(fan_in, fan_out)` is the scheme's published standard deviation
    of one weight (before the σ_w multiplier); `formula` shows it to people.
    `bias` says how biases start: "zero", "sigma_b" (N or U with variance σ_b²)
    or "torch_default" (U(±1/√fan_in)).
    """

    name: str
    label: str
    help: str
    formula: str
    bias: str = "zero"
    needs_data: bool = False
    uses_sigma_b: bool = False

    def __repr__(self) -> str:
        return f"Initializer({self.name!r}: {self.formula})"


INITIALIZERS: dict[str, Initializer] = {
    i.name: i
    for i in [
        Initializer("zeros", "Zeros", "Every weight 0. All units compute the same thing and stay identical: symmetry is never broken.", "W = 0"),
        Initializer(
            "normal", "Normal (σ_w, σ_b)", "The mean-field parameterization: set σ_w and σ_b yourself and see the theory's phase diagram.",
            "W ~ N(0, σ_w²/fan_in), b ~ N(0, σ_b²)", bias="sigma_b", uses_sigma_b=True,
        ),
        Initializer(
            "uniform", "Uniform (σ_w, σ_b)", "Like Normal, with uniform draws of the same variances.",
            "W ~ U(±σ_w·√(3/fan_in)), b ~ U(±σ_b·√3)", bias="sigma_b", uses_sigma_b=True,
        ),
        Initializer(
            "xavier_uniform", "Xavier/Glorot uniform", "Glorot & Bengio (2010): balances forward and backward variance for a linear or tanh network.",
            "W ~ U(±√(6/(fan_in+fan_out)))",
        ),
        Initializer(
            "xavier_normal", "Xavier/Glorot normal", "Glorot & Bengio (2010), normal draws: Var(W) = 2/(fan_in+fan_out).",
            "W ~ N(0, 2/(fan_in+fan_out))",
        ),
        Initializer(
            "kaiming_uniform", "He/Kaiming uniform", "He et al. (2015), uniform draws: Var(W) = 2/fan_in keeps ReLU variances constant.",
            "W ~ U(±√(6/fan_in))",
        ),
        Initializer(
            "kaiming_normal", "He/Kaiming normal", "He et al. (2015): Var(W) = 2/fan_in, the factor 2 making up for ReLU zeroing half its inputs.",
            "W ~ N(0, 2/fan_in)",
        ),
        Initializer(
            "kaiming_normal_fan_out", "He/Kaiming normal (fan_out)", "He et al. (2015), scaled to preserve the backward pass instead: Var(W) = 2/fan_out.",
            "W ~ N(0, 2/fan_out)",
        ),
        Initializer(
            "lecun_normal", "LeCun normal", "LeCun et al. (1998): Var(W) = 1/fan_in. With SELU it gives a self-normalizing network.",
            "W ~ N(0, 1/fan_in)",
        ),
        Initializer(
            "lecun_uniform", "LeCun uniform", "LeCun et al. (1998), uniform draws: Var(W) = 1/fan_in.",
            "W ~ U(±√(3/fan_in))",
        ),
        Initializer(
            "orthogonal", "Orthogonal", "Saxe et al. (2014): a (semi-)orthogonal matrix keeps every singular value at 1, so the signal keeps its norm exactly in a linear network.",
            "W = σ_w·Q, QᵀQ = I (or QQᵀ = I)",
        ),
        Initializer(
            "torch_default", "PyTorch default", "What nn.Linear does on its own: kaiming_uniform_ with a = √5, i.e. U(±1/√fan_in), and the same range for biases.",
            "W ~ U(±1/√fan_in), b ~ U(±1/√fan_in)", bias="torch_default",
        ),
        Initializer(
            "lsuv", "LSUV (data-driven)", "Mishkin & Matas (2016): orthogonal weights, then each layer rescaled on a data batch until its output variance is 1 ± 0.1.",
            "W = Q / std(Q·x), layer by layer", needs_data=True,
        ),
    ]
}


@dataclass(frozen=True)
class Dataset:
    name: str
    label: str
    help: str
    input_dim: int | None  # None: set by the config (gaussian)
    classes: int
    train_size: int = 2048  # examples in the training split (the rest of 2,560, or of digits' 1,797, are held out)


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset("gaussian", "Gaussian noise", "Inputs N(0, I) with random class labels: the setting the theory assumes. Input size set by input_dim.", None, 10),
        Dataset("spirals", "Spirals (2-D)", "Three interleaved spiral arms: a 2-D toy problem that needs depth.", 2, 3),
        Dataset("moons", "Moons (2-D)", "Two interleaving half circles (scikit-learn's make_moons).", 2, 2),
        Dataset("circles", "Circles (2-D)", "A circle inside a circle (scikit-learn's make_circles).", 2, 2),
        Dataset("digits", "Digits (8×8)", "The 1,797 handwritten digits that ship with scikit-learn: 64 pixels, 10 classes.", 64, 10, 1438),
    ]
}


@dataclass(frozen=True)
class Optimizer:
    name: str
    label: str
    help: str
    make: Callable[..., torch.optim.Optimizer] = field(repr=False)
    code: str  # how the snippet writes it, with {lr}


OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in [
        Optimizer("sgd", "SGD", "Plain stochastic gradient descent: each step moves by lr × gradient, so vanishing gradients show directly.",
                  lambda p, lr: torch.optim.SGD(p, lr=lr), "torch.optim.SGD(model.parameters(), lr={lr})"),
        Optimizer("momentum", "SGD + momentum 0.9", "SGD with heavy-ball momentum 0.9.",
                  lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9), "torch.optim.SGD(model.parameters(), lr={lr}, momentum=0.9)"),
        Optimizer("adam", "Adam", "Adam (β = 0.9, 0.999): rescales each parameter's step, which hides much of a vanishing gradient.",
                  lambda p, lr: torch.optim.Adam(p, lr=lr), "torch.optim.Adam(model.parameters(), lr={lr})"),
    ]
}


def options_text(registry: dict) -> str:
    """'a, b or c' for error messages."""
    names = list(registry)
    return ", ".join(names[:-1]) + " or " + names[-1]


def phi_prime_max(act: Activation) -> float:
    """max |φ'| on a fine grid; used by tests of the flat-region thresholds."""
    h = torch.linspace(-20, 20, 400001, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(act.fn(h).sum(), h)
    return float(g.abs().max())


__all__ = ["ACTIVATIONS", "INITIALIZERS", "DATASETS", "OPTIMIZERS", "Activation", "Initializer", "Dataset",
           "Optimizer", "options_text", "SELU_ALPHA", "SELU_SCALE", "LEAKY_SLOPE"]
