"""Name -> object registries: the single source of truth for every choice.

The CLI choices, the URL values, the dashboard's select boxes and the tests all
come from these dicts, so adding an activation, an initializer, a dataset or an
optimizer is one entry here: an entry carries everything the lab knows about
its kind (for an activation: its function and derivative, flat region,
output range, the theory's closed forms, the verdict's advice and its
PyTorch/Keras code; for an initializer: how it draws weights and biases,
their standard deviations, its code). Nothing else names an entry.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.models import init as init_blocks

Tensor = torch.Tensor

# SELU's constants (Klambauer et al., 2017), as torch uses them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class Advice:
    """What the verdict (`core.io.diagnosis`) may suggest for an activation, as settings.

    `init` is the initializer made for it, tried first when its signal
    vanishes or explodes (He for ReLU, Xavier for tanh, LeCun for SELU), and
    `init_why` says why in one sentence. `vanishing` is an activation to try
    instead when the signal vanishes even with that initializer (sigmoid →
    tanh), `dead` one to try when its units die (ReLU → leaky ReLU); each
    with its `..._why`. The verdict never suggests what is already set.
    """

    init: str
    init_why: str
    vanishing: str | None = None
    vanishing_why: str = ""
    dead: str | None = None
    dead_why: str = ""


@dataclass(frozen=True)
class Activation:
    """An elementwise nonlinearity φ, with everything the lab knows about it.

    `fn` and `derivative` (φ'(h), a closed form) work on tensors of any dtype
    (the theory evaluates them in float64). φ's flat region is where, on its
    saturating side, |φ'(h)| has fallen below a tenth of its largest value:
    h ≤ `flat_below` (ReLU: h ≤ 0) or |h| > `flat_beyond` (tanh: 1.818,
    sigmoid: 3.636). That is what `saturation` and `dead_units` count.
    `torch_name` is what `torch.nn.init.calculate_gain` calls it.
    `slope_from_output` is φ'(h) written as a plain scalar function of
    a = φ(h), where that is exact and is the very formula PyTorch's backward
    uses (None elsewhere): with it the statistics of ∂L/∂h = ∂L/∂a · φ'(h)
    come from ∂L/∂a and a. The measuring kernels are compiled from it
    (Numba's nopython subset: scalar arithmetic and comparisons; a zero
    slope gives exactly 0, never ∞·0).

    `output_range` bounds φ's values for the histograms (None: unbounded).
    `homogeneous_slope` is s when φ(h) = h for h > 0 and s·h for h < 0
    (linear 1, ReLU 0, leaky ReLU 0.01): the theory then uses closed forms
    (the arc-cosine kernel) instead of quadrature. `advice` is what the
    verdict suggests for it. Code: `module_code` is the nn.Module that
    builds it, `keras_layer` the Keras layer (default
    `keras.layers.Activation("<keras_name>")`) with `keras_note`, a
    comment after it. `aliases` are other names people write for it
    (Keras', TensorFlow's, the papers'): links, the CLI and files read them
    as this entry (`resolve`).
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
    derivative: Callable[[Tensor], Tensor] = field(kw_only=True, repr=False)
    advice: Advice = field(kw_only=True, repr=False)
    output_range: tuple[float, float] | None = field(default=None, kw_only=True)
    homogeneous_slope: float | None = field(default=None, kw_only=True)
    keras_layer: str | None = field(default=None, kw_only=True)
    keras_note: str = field(default="", kw_only=True)
    aliases: tuple[str, ...] = field(default=(), kw_only=True)  # other names it is read by (`resolve`)

    def flat(self, h: Tensor) -> Tensor:
        """Boolean mask of the entries of h in the flat region."""
        if self.flat_beyond is not None:
            return h.abs() > self.flat_beyond
        if self.flat_below is not None:
            return h <= self.flat_below
        return torch.zeros_like(h, dtype=torch.bool)

    @property
    def module_class(self) -> type:
        """The torch.nn class that `module_code` builds (nn.ReLU for "nn.ReLU()"):
        how `watch(model)` recognizes this activation in someone else's network."""
        return getattr(torch.nn, self.module_code.split("(")[0].removeprefix("nn."))

    @property
    def saturates(self) -> bool:
        """Flat on both sides (tanh, sigmoid): large |h| of either sign kills the slope."""
        return self.flat_beyond is not None

    @property
    def has_flat_region(self) -> bool:
        return self.flat_beyond is not None or self.flat_below is not None

    @property
    def keras_code(self) -> str:
        return self.keras_layer or f'keras.layers.Activation("{self.keras_name}")'

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


def _gelu_derivative(h: Tensor) -> Tensor:
    """d/dh h·Φ(h) = Φ(h) + h·φ(h), φ and Φ the standard normal density and distribution."""
    return 0.5 * (1.0 + torch.erf(h * 0.7071067811865476)) + h * torch.exp(-0.5 * h * h) * 0.3989422804014327


def _silu_derivative(h: Tensor) -> Tensor:
    s = torch.sigmoid(h)
    return s * (1.0 + h * (1.0 - s))


def _sigmoid_derivative(h: Tensor) -> Tensor:
    s = torch.sigmoid(h)
    return s * (1.0 - s)


_HE = "kaiming_normal"
_XAVIER = "xavier_normal"
_HE_WHY = ("its factor 2 in Var(W) = 2/fan_in makes up for the half of the signal a ReLU-like unit zeroes "
           "(He et al., 2015).")
_XAVIER_WHY = ("Var(W) = 2/(fan_in+fan_out) keeps the variance of a unit with slope 1 at 0 the same forward and "
               "backward (Glorot & Bengio, 2010).")
_LEAKY_WHY = "a slope of 0.01 for h < 0 keeps a gradient flowing through units that are off."

ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation(
            "linear", "Linear (identity)", "φ(h) = h. No nonlinearity: a deep linear network, the cleanest case for theory.",
            lambda h: h, None, None, "linear", "linear", "nn.Identity()", _identity_slope,
            derivative=torch.ones_like, homogeneous_slope=1.0, advice=Advice(_XAVIER, _XAVIER_WHY),
        ),
        Activation(
            "sigmoid", "Sigmoid", "φ(h) = 1/(1+e^-h). Saturates at both ends and its slope is at most 1/4, so gradients shrink layer after layer.",
            torch.sigmoid, None, 3.636, "sigmoid", "sigmoid", "nn.Sigmoid()", _sigmoid_slope,
            derivative=_sigmoid_derivative, output_range=(0.0, 1.0),
            advice=Advice(_XAVIER, _XAVIER_WHY, vanishing="tanh",
                          vanishing_why="sigmoid's slope is at most 1/4, so ∂L/∂h loses at least 16× in variance per "
                                        "layer; tanh's slope is 1 at 0."),
            aliases=("logistic",),
        ),
        Activation(
            "tanh", "Tanh", "φ(h) = tanh(h). Zero-centred, slope 1 at the origin, saturates for |h| ≳ 2.",
            torch.tanh, None, 1.818, "tanh", "tanh", "nn.Tanh()", _tanh_slope,
            derivative=lambda h: 1.0 - torch.tanh(h).square(), output_range=(-1.0, 1.0),
            advice=Advice(_XAVIER, _XAVIER_WHY),
        ),
        Activation(
            "relu", "ReLU", "φ(h) = max(0, h). Never saturates for h > 0 but is exactly flat for h < 0: halves the variance, hence He's factor 2.",
            F.relu, 0.0, None, "relu", "relu", "nn.ReLU()", _relu_slope,
            derivative=lambda h: (h > 0).to(h.dtype), homogeneous_slope=0.0,
            advice=Advice(_HE, _HE_WHY, dead="leaky_relu", dead_why=_LEAKY_WHY),
        ),
        Activation(
            "leaky_relu", "Leaky ReLU (0.01)", "φ(h) = h for h > 0, 0.01·h otherwise. A small slope keeps units from dying completely.",
            lambda h: F.leaky_relu(h, LEAKY_SLOPE), 0.0, None, "leaky_relu", "leaky_relu", "nn.LeakyReLU(0.01)", _leaky_relu_slope,
            derivative=lambda h: torch.where(h > 0, torch.ones_like(h), torch.full_like(h, LEAKY_SLOPE)),
            homogeneous_slope=LEAKY_SLOPE, advice=Advice(_HE, _HE_WHY),
            # Keras' "leaky_relu" string means slope 0.2; the lab's (PyTorch's default) is 0.01.
            keras_layer="keras.layers.LeakyReLU(negative_slope=0.01)",
            keras_note="slope 0.01 as in PyTorch (Keras 2: alpha=0.01)",
            aliases=("leakyrelu", "lrelu"),
        ),
        Activation(
            "elu", "ELU", "φ(h) = h for h > 0, e^h − 1 otherwise. Smooth, with negative outputs that pull the mean toward 0.",
            F.elu, -2.303, None, "linear", "elu", "nn.ELU()",
            derivative=lambda h: torch.where(h > 0, torch.ones_like(h), torch.exp(torch.clamp(h, max=0.0))),
            advice=Advice(_HE, _HE_WHY),
        ),
        Activation(
            "selu", "SELU", "Scaled ELU (λ≈1.0507, α≈1.6733). With LeCun normal weights it drives activations to mean 0, variance 1: self-normalizing.",
            F.selu, -2.303, None, "selu", "selu", "nn.SELU()",
            derivative=lambda h: SELU_SCALE * torch.where(h > 0, torch.ones_like(h),
                                                          SELU_ALPHA * torch.exp(torch.clamp(h, max=0.0))),
            advice=Advice("lecun_normal", "with LeCun normal weights SELU self-normalizes: activations are driven to "
                                          "mean 0, variance 1 (Klambauer et al., 2017)."),
        ),
        Activation(
            "gelu", "GELU", "φ(h) = h·Φ(h), the Gaussian-weighted ReLU used in Transformers.",
            F.gelu, -1.728, None, "linear", "gelu", "nn.GELU()",
            derivative=_gelu_derivative, advice=Advice(_HE, _HE_WHY),
        ),
        Activation(
            "silu", "SiLU / Swish", "φ(h) = h·sigmoid(h). Smooth and non-monotonic, like GELU.",
            F.silu, -0.883, None, "linear", "silu", "nn.SiLU()",
            derivative=_silu_derivative, advice=Advice(_HE, _HE_WHY),
            aliases=("swish",),
        ),
        Activation(
            "softplus", "Softplus", "φ(h) = log(1 + e^h), a smooth ReLU; its slope is sigmoid(h).",
            F.softplus, -2.197, None, "linear", "softplus", "nn.Softplus()",
            # torch's softplus is h itself beyond h > 20 (slope 1; sigmoid is within 2e-9 of it there)
            derivative=lambda h: torch.where(h > 20.0, torch.ones_like(h), torch.sigmoid(h)),
            advice=Advice(_HE, _HE_WHY),
        ),
    ]
}
DEFAULT_ACTIVATION = "tanh"  # RunConfig's default: saturating, so every init choice shows


# -- initializers ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BiasInit:
    """How an initializer starts the biases: the draw, its std, and its code in both frameworks.

    `torch_code` is the line for one nn.Linear `m` (None: nn.Linear's own
    default already is this scheme), `keras_code` the bias_initializer
    expression (`fan_in` is the layer's). A σ_b scheme at σ_b = 0 is written
    as zeros.
    """

    name: str
    draw: Callable[[Tensor, int, float, torch.Generator], None] = field(repr=False)
    std: Callable[[int, float], float] = field(repr=False)   # (fan_in, σ_b)
    torch_code: str | None
    keras_code: str
    uses_sigma_b: bool = False


_K = "keras.initializers."  # Keras 3 (any backend; the tests run it on torch)

ZERO_BIAS = BiasInit("zero", init_blocks.zero_bias_, lambda fan_in, sb: 0.0, "nn.init.zeros_(m.bias)", '"zeros"')
NORMAL_BIAS = BiasInit("sigma_b", init_blocks.normal_bias_, lambda fan_in, sb: sb,
                       "nn.init.normal_(m.bias, 0.0, SIGMA_B)  # b ~ N(0, σ_b²)",
                       f"{_K}RandomNormal(stddev=SIGMA_B)", uses_sigma_b=True)
UNIFORM_BIAS = BiasInit("sigma_b", init_blocks.uniform_bias_, lambda fan_in, sb: sb,
                        "nn.init.uniform_(m.bias, -SIGMA_B * math.sqrt(3), SIGMA_B * math.sqrt(3))  # variance σ_b²",
                        f"{_K}RandomUniform(minval=-SIGMA_B * math.sqrt(3), maxval=SIGMA_B * math.sqrt(3))",
                        uses_sigma_b=True)
TORCH_DEFAULT_BIAS = BiasInit("torch_default", init_blocks.torch_default_bias_, lambda fan_in, sb: 1 / math.sqrt(3 * fan_in),
                              None, f"{_K}RandomUniform(minval=-1 / math.sqrt(fan_in), maxval=1 / math.sqrt(fan_in))")

KerasKernel = Callable[[float], tuple[str, tuple[str, ...]]]  # σ_w -> (kernel_initializer expression, comment lines)


def keras_fixed(expr: str, *comments: str) -> KerasKernel:
    """A Keras kernel initializer that is the same whatever σ_w (σ_w in the expression is SIGMA_W)."""
    return lambda sigma_w: (expr, comments)


_TRUNCATED_NOTE = ("# Keras' {name} is a truncated normal (cut at 2 std, widened so the variance is the same);\n"
                   "# PyTorch draws an untruncated normal. For PyTorch's exact distribution use\n"
                   "# keras.initializers.VarianceScaling(scale={scale}, mode=\"{mode}\", "
                   "distribution=\"untruncated_normal\").")


def keras_variance_scaling(named: str | None, scale: float, mode: str, distribution: str) -> KerasKernel:
    """A fan-based scheme: Keras' named class (when there is one) at σ_w = 1, else
    VarianceScaling(scale=σ_w² × scale, ...) - the same scheme, scaled."""

    def kernel(sigma_w: float) -> tuple[str, tuple[str, ...]]:
        comments: list[str] = []
        if distribution == "truncated_normal":
            comments = _TRUNCATED_NOTE.format(name=named, scale=repr(float(scale)), mode=mode).split("\n")
        if sigma_w == 1.0 and named is not None:
            return f"{_K}{named}()", tuple(comments)
        if sigma_w == 1.0:
            scale_expr = repr(float(scale))
        else:
            scale_expr = "SIGMA_W**2" if scale == 1.0 else f"{float(scale)!r} * SIGMA_W**2"
            comments.append(f"# {named or 'The scheme'} with its standard deviation multiplied by σ_w.")
        return f'{_K}VarianceScaling(scale={scale_expr}, mode="{mode}", distribution="{distribution}")', tuple(comments)

    return kernel


def _keras_orthogonal(note: str, takes_sigma_w: bool) -> KerasKernel:
    return lambda sigma_w: (f"{_K}Orthogonal({'gain=SIGMA_W' if takes_sigma_w and sigma_w != 1.0 else ''})", (note,))


def _keras_torch_default(sigma_w: float) -> tuple[str, tuple[str, ...]]:
    scale = "SIGMA_W**2 / 3" if sigma_w != 1.0 else "1 / 3"
    return (f'{_K}VarianceScaling(scale={scale}, mode="fan_in", distribution="uniform")',
            ("# PyTorch's nn.Linear default: W ~ U(±1/√fan_in) and b ~ U(±1/√fan_in)",
             "# (Keras' own default is GlorotUniform with zero biases)."))


@dataclass(frozen=True)
class Initializer:
    """A weight initialization scheme, with everything the lab knows about it.

    `weight(W, σ_w, generator)` draws a hidden layer's weight in place and
    `std(fan_in, fan_out)` is the scheme's published standard deviation of
    one weight at σ_w = 1 (None when it is set from data); `formula` shows
    it to people. `sigma_w` says what σ_w does: "multiplier" (it multiplies
    the published std), "intrinsic" (it is the scheme's own parameter:
    normal, uniform) or "ignored" (zeros; LSUV rescales from data).
    `bias` is how biases start (`BiasInit`). `calibrate(net, x)` (LSUV)
    rescales the built network from a data batch; `starts_as` names the
    scheme it draws before that (the theory can only show that starting
    point). `orthogonal`: the weight is a scaled (semi-)orthogonal matrix.

    Code: `torch_code` are the torch.nn.init lines for one hidden nn.Linear
    `m` (`{g}` is where the gain argument ", gain=SIGMA_W" goes when
    `torch_gain`; otherwise σ_w ≠ 1 adds `m.weight.mul_(SIGMA_W)`),
    `torch_comment` closes them; `torch_note` are comment lines before the
    block; `torch_helper`/`torch_after` a function the script defines and the
    lines that call it (LSUV). `keras_kernel(σ_w)` gives the
    kernel_initializer expression and its comment lines; `keras_helper`/
    `keras_after` as for PyTorch.
    """

    name: str
    label: str
    help: str
    formula: str
    weight: Callable[[Tensor, float, torch.Generator], None] = field(repr=False)
    std: Callable[[int, int], float | None] = field(repr=False)
    torch_code: tuple[str, ...]
    keras_kernel: KerasKernel = field(repr=False)
    torch_comment: str = ""
    torch_gain: bool = False
    torch_note: tuple[str, ...] = ()
    torch_helper: str = ""
    torch_after: tuple[str, ...] = ()
    keras_helper: str = ""
    keras_after: tuple[str, ...] = ()
    bias: BiasInit = ZERO_BIAS
    sigma_w: str = "multiplier"
    calibrate: Callable | None = field(default=None, repr=False)
    starts_as: str | None = None
    orthogonal: bool = False
    aliases: tuple[str, ...] = field(default=(), kw_only=True)  # other names it is read by (`resolve`)
    # A convolution's code where it differs from a Linear layer's (delta-orthogonal): the torch lines and
    # helper, the Keras kernel initializer and helper (None/"": the Linear layer's).
    centre_only: bool = False  # on a convolution, only the kernel's centre tap is nonzero (delta-orthogonal)
    conv_torch_code: tuple[str, ...] | None = None
    conv_torch_helper: str = ""
    conv_keras_kernel: KerasKernel | None = field(default=None, repr=False)
    conv_keras_helper: str = ""

    @property
    def needs_data(self) -> bool:
        return self.calibrate is not None

    @property
    def uses_sigma_b(self) -> bool:
        return self.bias.uses_sigma_b

    @property
    def uses_sigma_w(self) -> bool:
        return self.sigma_w != "ignored"

    def apply(self, layer, cfg, gen: torch.Generator) -> None:
        """Initialize one hidden nn.Linear (or convolution) in place under `cfg` (σ_w, σ_b)."""
        self.weight(layer.weight, cfg.sigma_w, gen)
        if layer.bias is not None:
            self.bias.draw(layer.bias, init_blocks.fan_in(layer.weight), cfg.sigma_b, gen)

    def weight_std(self, fan_in: int, fan_out: int, sigma_w: float = 1.0) -> float | None:
        """The std of one weight that this scheme draws (None when set from data).

        What the tests hold the scheme to, and what the theory sees as the
        effective σ_w² = fan_in · Var(W).
        """
        std = self.std(int(fan_in), int(fan_out))
        if std is None:
            return None
        return std * (1.0 if self.sigma_w == "ignored" else float(sigma_w))

    def conv_weight_std(self, in_channels: int, out_channels: int, taps: int = 9, sigma_w: float = 1.0) -> float | None:
        """The std of one weight of a convolution (`taps` = kernel height × width) under this scheme.
        Fan-based schemes count fan_in = in·taps and fan_out = out·taps (as torch.nn.init does); an
        orthogonal draw is of the kernel flattened to out × in·taps (delta-orthogonal: of its centre)."""
        if self.orthogonal and not self.centre_only:
            return self.weight_std(in_channels * taps, out_channels, sigma_w)
        return self.weight_std(in_channels * taps, out_channels * taps, sigma_w)

    def bias_std(self, fan_in: int, sigma_b: float = 0.0) -> float:
        return self.bias.std(int(fan_in), float(sigma_b))

    def effective_sigma2(self, fan_in: int, fan_out: int, sigma_w: float = 1.0,
                         sigma_b: float = 0.0) -> tuple[float, float] | None:
        """(σ_w²_eff, σ_b²_eff) = (fan_in · Var(W), Var(b)) of one layer; None when set from data."""
        std = self.weight_std(fan_in, fan_out, sigma_w)
        if std is None:
            return None
        return float(fan_in) * std * std, self.bias_std(fan_in, sigma_b) ** 2

    def __repr__(self) -> str:
        return f"Initializer({self.name!r}: {self.formula})"


_TORCH_LSUV = '''
@torch.no_grad()
def lsuv_(model, x, tol=0.1, max_iter=10):
    """LSUV (Mishkin & Matas, 2016): from the input up, divide each hidden
    Linear's weight by the std of its output on the batch x until that
    output's variance is 1 ± tol."""
    for i, m in enumerate(model[:-1]):
        if not isinstance(m, nn.Linear):
            continue
        for _ in range(max_iter):
            var = model[: i + 1](x).var(unbiased=False).item()
            if not math.isfinite(var) or var == 0 or abs(var - 1) < tol:
                break
            m.weight.div_(math.sqrt(var))
            if m.bias is not None:
                m.bias.zero_()
'''

_KERAS_LSUV = '''
def lsuv(model, x, tol=0.1, max_iter=10):
    """LSUV (Mishkin & Matas, 2016): from the input up, divide each hidden
    Dense layer's kernel by the std of its output on the batch x until that
    output's variance is 1 ± tol."""
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][:-1]
    for layer in dense:
        probe = keras.Model(model.inputs, layer.output)
        for _ in range(max_iter):
            var = float(keras.ops.convert_to_numpy(keras.ops.var(probe(x, training=True))))
            if not math.isfinite(var) or var == 0 or abs(var - 1) < tol:
                break
            layer.kernel.assign(layer.kernel / math.sqrt(var))
            if layer.use_bias:
                layer.bias.assign(keras.ops.zeros_like(layer.bias))
'''

_R2 = math.sqrt(2.0)
_RELU_GAIN = dict(a=0, nonlinearity="relu")

INITIALIZERS: dict[str, Initializer] = {
    i.name: i
    for i in [
        Initializer(
            "zeros", "Zeros", "Every weight 0. All units compute the same thing and stay identical: symmetry is never broken.",
            "W = 0", weight=init_blocks.scaled(lambda w, g: nn.init.zeros_(w)), std=lambda i, o: 0.0,
            torch_code=("nn.init.zeros_(m.weight)",), torch_comment="every weight 0: symmetry is never broken",
            keras_kernel=keras_fixed('"zeros"', "# Every weight 0: all units stay identical (symmetry is never broken)."),
            sigma_w="ignored",
        ),
        Initializer(
            "normal", "Normal (σ_w, σ_b)", "The mean-field parameterization: set σ_w and σ_b yourself and see the theory's phase diagram.",
            "W ~ N(0, σ_w²/fan_in), b ~ N(0, σ_b²)", weight=init_blocks.normal_fan_in_, std=lambda i, o: 1 / math.sqrt(i),
            torch_code=("nn.init.normal_(m.weight, 0.0, SIGMA_W / math.sqrt(m.in_features))",),
            torch_comment="W ~ N(0, σ_w²/fan_in)",
            keras_kernel=keras_fixed(f"{_K}RandomNormal(stddev=SIGMA_W / math.sqrt(fan_in))", "# W ~ N(0, σ_w²/fan_in)."),
            bias=NORMAL_BIAS, sigma_w="intrinsic",
        ),
        Initializer(
            "uniform", "Uniform (σ_w, σ_b)", "Like Normal, with uniform draws of the same variances.",
            "W ~ U(±σ_w·√(3/fan_in)), b ~ U(±σ_b·√3)", weight=init_blocks.uniform_fan_in_, std=lambda i, o: 1 / math.sqrt(i),
            torch_code=("bound = SIGMA_W * math.sqrt(3 / m.in_features)", "nn.init.uniform_(m.weight, -bound, bound)"),
            torch_comment="W ~ U(±σ_w·√(3/fan_in)): variance σ_w²/fan_in",
            keras_kernel=keras_fixed(
                f"{_K}RandomUniform(minval=-SIGMA_W * math.sqrt(3 / fan_in), maxval=SIGMA_W * math.sqrt(3 / fan_in))",
                "# W ~ U(±σ_w·√(3/fan_in)): variance σ_w²/fan_in."),
            bias=UNIFORM_BIAS, sigma_w="intrinsic",
        ),
        Initializer(
            "xavier_uniform", "Xavier/Glorot uniform", "Glorot & Bengio (2010): balances forward and backward variance for a linear or tanh network.",
            "W ~ U(±√(6/(fan_in+fan_out)))",
            weight=init_blocks.scaled(lambda w, g: nn.init.xavier_uniform_(w, gain=1.0, generator=g)),
            std=lambda i, o: math.sqrt(2.0 / (i + o)),
            torch_code=("nn.init.xavier_uniform_(m.weight{g})",), torch_gain=True,
            torch_comment="Glorot: U(±√(6/(fan_in+fan_out)))",
            keras_kernel=keras_variance_scaling("GlorotUniform", 1.0, "fan_avg", "uniform"),
            aliases=("glorot_uniform",),
        ),
        Initializer(
            "xavier_normal", "Xavier/Glorot normal", "Glorot & Bengio (2010), normal draws: Var(W) = 2/(fan_in+fan_out).",
            "W ~ N(0, 2/(fan_in+fan_out))",
            weight=init_blocks.scaled(lambda w, g: nn.init.xavier_normal_(w, gain=1.0, generator=g)),
            std=lambda i, o: math.sqrt(2.0 / (i + o)),
            torch_code=("nn.init.xavier_normal_(m.weight{g})",), torch_gain=True,
            torch_comment="Glorot: Var(W) = 2/(fan_in+fan_out)",
            keras_kernel=keras_variance_scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal"),
            aliases=("glorot_normal",),
        ),
        Initializer(
            "kaiming_uniform", "He/Kaiming uniform", "He et al. (2015), uniform draws: Var(W) = 2/fan_in keeps ReLU variances constant.",
            "W ~ U(±√(6/fan_in))",
            weight=init_blocks.scaled(lambda w, g: nn.init.kaiming_uniform_(w, mode="fan_in", generator=g, **_RELU_GAIN)),
            std=lambda i, o: _R2 / math.sqrt(i),
            torch_code=('nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")',),
            torch_comment="He: U(±√(6/fan_in)), Var(W) = 2/fan_in",
            keras_kernel=keras_variance_scaling("HeUniform", 2.0, "fan_in", "uniform"),
            aliases=("he_uniform",),
        ),
        Initializer(
            "kaiming_normal", "He/Kaiming normal", "He et al. (2015): Var(W) = 2/fan_in, the factor 2 making up for ReLU zeroing half its inputs.",
            "W ~ N(0, 2/fan_in)",
            weight=init_blocks.scaled(lambda w, g: nn.init.kaiming_normal_(w, mode="fan_in", generator=g, **_RELU_GAIN)),
            std=lambda i, o: _R2 / math.sqrt(i),
            torch_code=('nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")',),
            torch_comment="He: Var(W) = 2/fan_in",
            keras_kernel=keras_variance_scaling("HeNormal", 2.0, "fan_in", "truncated_normal"),
            aliases=("he_normal",),
        ),
        Initializer(
            "kaiming_normal_fan_out", "He/Kaiming normal (fan_out)", "He et al. (2015), scaled to preserve the backward pass instead: Var(W) = 2/fan_out.",
            "W ~ N(0, 2/fan_out)",
            weight=init_blocks.scaled(lambda w, g: nn.init.kaiming_normal_(w, mode="fan_out", generator=g, **_RELU_GAIN)),
            std=lambda i, o: _R2 / math.sqrt(o),
            torch_code=('nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")',),
            torch_comment="He, backward-preserving: Var(W) = 2/fan_out",
            keras_kernel=keras_variance_scaling(None, 2.0, "fan_out", "untruncated_normal"),
            aliases=("he_normal_fan_out",),
        ),
        Initializer(
            "lecun_normal", "LeCun normal", "LeCun et al. (1998): Var(W) = 1/fan_in. With SELU it gives a self-normalizing network.",
            "W ~ N(0, 1/fan_in)",
            weight=init_blocks.scaled(init_blocks.lecun_normal_),
            std=lambda i, o: 1 / math.sqrt(i),
            torch_code=("nn.init.normal_(m.weight, 0.0, 1 / math.sqrt(m.in_features))",),
            torch_comment='LeCun: Var(W) = 1/fan_in (= kaiming_normal_ with nonlinearity="linear")',
            keras_kernel=keras_variance_scaling("LecunNormal", 1.0, "fan_in", "truncated_normal"),
        ),
        Initializer(
            "lecun_uniform", "LeCun uniform", "LeCun et al. (1998), uniform draws: Var(W) = 1/fan_in.",
            "W ~ U(±√(3/fan_in))", weight=init_blocks.scaled(init_blocks.lecun_uniform_), std=lambda i, o: 1 / math.sqrt(i),
            torch_code=("bound = math.sqrt(3 / m.in_features)", "nn.init.uniform_(m.weight, -bound, bound)"),
            torch_comment="LeCun: U(±√(3/fan_in)), Var(W) = 1/fan_in",
            keras_kernel=keras_variance_scaling("LecunUniform", 1.0, "fan_in", "uniform"),
        ),
        Initializer(
            "orthogonal", "Orthogonal", "Saxe et al. (2014): a (semi-)orthogonal matrix keeps every singular value at 1, so the signal keeps its norm exactly in a linear network.",
            "W = σ_w·Q, QᵀQ = I (or QQᵀ = I)",
            weight=init_blocks.scaled(lambda w, g: nn.init.orthogonal_(w, gain=1.0, generator=g)),
            # rows (or columns) of unit norm: each entry has variance 1/max(fan_in, fan_out)
            std=lambda i, o: 1 / math.sqrt(max(i, o)),
            torch_code=("nn.init.orthogonal_(m.weight{g})",), torch_gain=True,
            torch_comment="Saxe et al.: a (semi-)orthogonal matrix",
            keras_kernel=_keras_orthogonal("# A (semi-)orthogonal matrix (Saxe et al., 2014).", takes_sigma_w=True),
            orthogonal=True,
        ),
        Initializer(
            "delta_orthogonal", "Delta-orthogonal", "Xiao et al. (2018): a convolution's kernel is zero except at "
            "its centre, an orthogonal channels × channels matrix there: every pixel's signal keeps its norm "
            "exactly, so with σ_w, σ_b on the critical line 10,000-layer CNNs train. On a Linear layer it is "
            "plain orthogonal.", "W[:, :, centre] = σ_w·Q, zero elsewhere",
            weight=init_blocks.scaled(init_blocks.delta_orthogonal_),
            # the centre's (semi-)orthogonal matrix has entries of variance 1/max(in, out) channels; the kernel's
            # other k²−1 taps are 0, so over fan_in = in·k² inputs each weight has variance 1/(k²·max(in, out))
            std=lambda i, o: 1 / math.sqrt(max(i, o)),
            # on a Linear layer (the MLP's code) it is orthogonal_; a convolution's code uses the conv_ fields
            torch_code=("nn.init.orthogonal_(m.weight{g})",), torch_gain=True,
            torch_comment="delta-orthogonal on a Linear layer: plain orthogonal",
            keras_kernel=_keras_orthogonal("# Delta-orthogonal on a Dense layer is plain orthogonal (Xiao et al., 2018).",
                                           takes_sigma_w=True),
            conv_torch_code=("delta_orthogonal_(m.weight{g})",), conv_torch_helper=init_blocks.DELTA_ORTHOGONAL_TORCH,
            conv_keras_kernel=lambda sigma_w: ("DeltaOrthogonal(" + ("gain=SIGMA_W" if sigma_w != 1.0 else "") + ")",
                                               ("# Orthogonal at the kernel's centre, zero elsewhere (Xiao et al., 2018).",)),
            conv_keras_helper=init_blocks.DELTA_ORTHOGONAL_KERAS, orthogonal=True, centre_only=True,
        ),
        Initializer(
            "torch_default", "PyTorch default", "What nn.Linear does on its own: kaiming_uniform_ with a = √5, i.e. U(±1/√fan_in), and the same range for biases.",
            "W ~ U(±1/√fan_in), b ~ U(±1/√fan_in)",
            # nn.Linear.reset_parameters: kaiming_uniform_(a=√5) = U(±1/√fan_in).
            weight=init_blocks.scaled(lambda w, g: nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)),
            std=lambda i, o: 1 / math.sqrt(3 * i),
            torch_code=(), torch_note=("# PyTorch's default: nn.Linear initialized itself when it was built, with",
                                       "# W ~ U(±1/√fan_in) (kaiming_uniform_ with a=√5) and b ~ U(±1/√fan_in)."),
            keras_kernel=_keras_torch_default, bias=TORCH_DEFAULT_BIAS,
            aliases=("pytorch_default",),
        ),
        Initializer(
            "lsuv", "LSUV (data-driven)", "Mishkin & Matas (2016): orthogonal weights, then each layer rescaled on a data batch until its output variance is 1 ± 0.1.",
            "W = Q / std(Q·x), layer by layer",
            # LSUV starts orthogonal; `calibrate` rescales once the whole network exists.
            weight=init_blocks.scaled(lambda w, g: nn.init.orthogonal_(w, gain=1.0, generator=g)),
            std=lambda i, o: None,
            torch_code=("nn.init.orthogonal_(m.weight)",), torch_comment="LSUV starts orthogonal; lsuv_ rescales below",
            torch_helper=_TORCH_LSUV,
            torch_after=("# Calibrate on a batch of real training inputs (the lab uses the first 512).",
                         "lsuv_(model, torch.randn(512, IN_FEATURES))"),
            keras_kernel=_keras_orthogonal("# LSUV starts orthogonal; lsuv() rescales each layer from a data batch below.",
                                           takes_sigma_w=False),
            keras_helper=_KERAS_LSUV,
            keras_after=("# Calibrate on a batch of real training inputs (the lab uses the first 512).",
                         "lsuv(model, keras.random.normal((512, IN_FEATURES)))"),
            sigma_w="ignored", calibrate=init_blocks.lsuv_, starts_as="orthogonal", orthogonal=True,
        ),
    ]
}
DEFAULT_INIT = "xavier_normal"  # RunConfig's default: right for its default activation (tanh)


@dataclass(frozen=True)
class Dataset:
    name: str
    label: str
    help: str
    input_dim: int | None  # None: set by the config (gaussian)
    classes: int
    train_size: int = 2048  # examples in the training split (the rest of 2,560, or of digits' 1,797, are held out)
    input_note: str = ""    # what an input is, for the code snippet's IN_FEATURES comment ("" = the label)
    plane: bool = False     # inputs are points of a plane: Explore draws the decision boundary over them
    aliases: tuple[str, ...] = field(default=(), kw_only=True)  # other names it is read by (`resolve`)
    # What an example is, for the architectures (`Architecture.data_kinds`): "vector" (a row of features),
    # "image" (also a 1 × H × W picture, `image_shape`, its pixels the features in row-major order), "sequence".
    kinds: frozenset = frozenset({"vector"})
    image_shape: tuple[int, int, int] | None = None   # (channels, height, width) of an "image" example
    seq_len: int | None = None  # a "sequence" dataset of a fixed length (digits_rows: 8); None: seq_len sets it


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset("gaussian", "Gaussian noise", "Inputs N(0, I) with random class labels: the setting the theory assumes. Input size set by input_dim.", None, 10,
                input_note="inputs x ~ N(0, I)"),
        Dataset("spirals", "Spirals (2-D)", "Three interleaved spiral arms: a 2-D toy problem that needs depth.", 2, 3,
                input_note="2-D points (spirals)", plane=True),
        Dataset("moons", "Moons (2-D)", "Two interleaving half circles (scikit-learn's make_moons).", 2, 2, input_note="2-D points (moons)",
                plane=True),
        Dataset("circles", "Circles (2-D)", "A circle inside a circle (scikit-learn's make_circles).", 2, 2,
                input_note="2-D points (circles)", plane=True),
        Dataset("digits", "Digits (8×8)", "The 1,797 handwritten digits that ship with scikit-learn: 64 pixels, 10 classes.", 64, 10, 1438,
                input_note="the 8×8 = 64 pixels of scikit-learn's digits", kinds=frozenset({"vector", "image"}),
                image_shape=(1, 8, 8)),
        Dataset("bars", "Bars (8×8 images)", "Generated 8×8 images of one bar at one of four orientations (—, /, |, \\) "
                "plus noise; the class is the orientation. An image task for the CNN.", 64, 4,
                input_note="the 8×8 = 64 pixels of a generated bar image", kinds=frozenset({"vector", "image"}),
                image_shape=(1, 8, 8)),
        Dataset("recall", "Recall after a lag (sequence)", "The class (one of 8) is shown once, at the first time "
                "step, as a one-hot vector with a marker; N(0, 1) noise follows for seq_len − 1 steps, and the "
                "network must name the class after the last one: a dependency as long as seq_len.", 9, 8,
                input_note="a one-hot class and a marker at t = 1, noise after", kinds=frozenset({"sequence"})),
        Dataset("digits_rows", "Digits, row by row (sequence)", "scikit-learn's 8×8 digits read one row of 8 pixels "
                "per time step: 8 time steps, 10 classes.", 8, 10, 1438,
                input_note="one row of 8 pixels of an 8×8 digit", kinds=frozenset({"sequence"}), seq_len=8),
    ]
}


@dataclass(frozen=True)
class Optimizer:
    name: str
    label: str
    help: str
    make: Callable[..., torch.optim.Optimizer] = field(repr=False)
    code: str  # how the snippet writes it, with {lr}
    keras_code: str = ""  # the same in Keras, with {lr}
    keras_note: str = ""  # a comment after it
    aliases: tuple[str, ...] = field(default=(), kw_only=True)  # other names it is read by (`resolve`)


OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in [
        Optimizer("sgd", "SGD", "Plain stochastic gradient descent: each step moves by lr × gradient, so vanishing gradients show directly.",
                  lambda p, lr: torch.optim.SGD(p, lr=lr), "torch.optim.SGD(model.parameters(), lr={lr})",
                  keras_code="keras.optimizers.SGD(learning_rate={lr})"),
        Optimizer("momentum", "SGD + momentum 0.9", "SGD with heavy-ball momentum 0.9.",
                  lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9), "torch.optim.SGD(model.parameters(), lr={lr}, momentum=0.9)",
                  keras_code="keras.optimizers.SGD(learning_rate={lr}, momentum=0.9)"),
        Optimizer("adam", "Adam", "Adam (β = 0.9, 0.999): rescales each parameter's step, which hides much of a vanishing gradient.",
                  lambda p, lr: torch.optim.Adam(p, lr=lr), "torch.optim.Adam(model.parameters(), lr={lr})",
                  keras_code="keras.optimizers.Adam(learning_rate={lr}, epsilon=1e-8)", keras_note="PyTorch's epsilon"),
    ]
}


# -- architectures -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResidualScale:
    """How a residual block x ← x + α·F(x) is scaled (`resmlp`), with everything the lab knows about it.

    `alpha(depth)` is α at initialization; `learnable` makes α a parameter
    per block (ReZero, from 0). Fixup (`fixup`) initializes the branch's
    first layer by the chosen scheme times `depth ** -0.5`, its last layer at
    zero, and adds scalar biases (from 0) and a scalar multiplier (from 1)
    per branch. `stream_gain(depth, branch_var_ratio)` is the factor by
    which the stream's variance grows in one block at initialization, given
    Var(F(x)) / Var(x) of a branch as initialized (the theory's recursion,
    `core.theory.architectures`)."""

    name: str
    label: str
    help: str
    alpha: Callable[[int], float] = field(repr=False)
    learnable: bool = False
    fixup: bool = False
    torch_note: str = ""   # the comment the generated code puts beside α

    def branch_in_scale(self, depth: int) -> float:
        """The multiplier of the branch's first layer at initialization (Fixup: depth^(-1/2))."""
        return depth ** -0.5 if self.fixup else 1.0

    @property
    def zero_last(self) -> bool:
        """The branch's last layer starts at zero (Fixup): F(x) = 0 at initialization."""
        return self.fixup

    def stream_gain(self, depth: int, branch_var_ratio: float) -> float:
        """Var(x_{l+1}) / Var(x_l) at initialization, with Var(F(x_l)) = branch_var_ratio · Var(x_l):
        1 + α²·ratio (the branch is independent of the stream at init), 1 where F or α is 0."""
        if self.zero_last:
            return 1.0
        a = self.alpha(depth)
        return 1.0 + a * a * branch_var_ratio

    def __repr__(self) -> str:
        return f"ResidualScale({self.name!r}: {self.label})"


RESIDUAL_SCALES: dict[str, ResidualScale] = {
    r.name: r
    for r in [
        ResidualScale("none", "None (α = 1)", "x ← x + F(x): every block adds its branch's variance, so the stream's "
                      "variance grows geometrically with depth.", alpha=lambda depth: 1.0, torch_note="α = 1"),
        ResidualScale("sqrt_depth", "1/√depth", "x ← x + F(x)/√L: the L branches add up to a bounded total, so the "
                      "stream's variance grows by a constant factor (about e^(Var F / Var x)) whatever the depth.",
                      alpha=lambda depth: depth ** -0.5, torch_note="α = 1/√depth"),
        ResidualScale("fixup", "Fixup", "Zhang et al. (2019): the branch's first layer is initialized by the chosen "
                      "scheme times depth^(−1/2), its last layer at zero (each block starts as the identity), with "
                      "scalar biases and a scalar multiplier per branch; no normalization needed.",
                      alpha=lambda depth: 1.0, fixup=True, torch_note="Fixup's scalar multiplier, from 1"),
        ResidualScale("rezero", "ReZero", "Bachlechner et al. (2020): x ← x + α·F(x) with a learnable α per block "
                      "starting at 0, so every block is the identity at initialization.",
                      alpha=lambda depth: 0.0, learnable=True, torch_note="ReZero's learnable α, from 0"),
    ]
}
DEFAULT_RESIDUAL_SCALE = "none"


def _identity_recurrent_(w: Tensor, gen: torch.Generator) -> None:
    nn.init.eye_(w)


IDENTITY_INIT = Initializer(
    "identity", "Identity (IRNN)", "Le et al. (2015): W_hh = σ_w·I, so a ReLU RNN carries its hidden state unchanged "
    "at initialization.", "W = σ_w·I", weight=init_blocks.scaled(_identity_recurrent_),
    std=lambda i, o: math.sqrt(min(i, o) / (i * o) * (1 - min(i, o) / (i * o))),
    torch_code=("nn.init.eye_(m.weight)",), torch_comment="IRNN: W = σ_w·I",
    keras_kernel=lambda sigma_w: (f"{_K}Identity({'gain=SIGMA_W' if sigma_w != 1.0 else ''})", ("# IRNN: W = σ_w·I.",)),
)
# The hidden-to-hidden matrix's schemes (`recurrent_init`): identity, and every initializer.
RECURRENT_INITS: dict[str, Initializer] = {IDENTITY_INIT.name: IDENTITY_INIT,
                                            **{k: v for k, v in INITIALIZERS.items() if not v.needs_data}}
DEFAULT_RECURRENT_INIT = "orthogonal"  # σ_w is then W_hh's spectral radius


def _mlp_parameters(cfg) -> int:
    sizes = (cfg.features, *cfg.hidden_widths)
    n = sum(a * b + (b if cfg.bias else 0) for a, b in zip(sizes[:-1], sizes[1:]))
    n += sizes[-1] * cfg.classes + cfg.classes  # the output Linear always has a bias (model.MLP)
    if cfg.batchnorm:
        n += 2 * sum(cfg.hidden_widths)
    return n


def _resmlp_parameters(cfg) -> int:
    w, b = cfg.width, (cfg.width if cfg.bias else 0)
    scale = RESIDUAL_SCALES[cfg.residual_scale]
    block = 2 * (w * w + (0 if scale.fixup else b)) + (2 * w if cfg.batchnorm else 0)
    block += 5 if scale.fixup else (1 if scale.learnable else 0)  # Fixup's 4 scalar biases and multiplier; ReZero's α
    return cfg.features * w + b + cfg.depth * block + w * cfg.classes + cfg.classes


def _cnn_parameters(cfg) -> int:
    channels = DATASETS[cfg.dataset].image_shape[0] if DATASETS[cfg.dataset].image_shape else 1
    w, b = cfg.width, (cfg.width if cfg.bias else 0)
    n = channels * w * 9 + b + (cfg.depth - 1) * (w * w * 9 + b)
    if cfg.batchnorm:
        n += 2 * w * cfg.depth
    return n + w * cfg.classes + cfg.classes


def _pixels(cfg) -> int:
    _, height, width = DATASETS[cfg.dataset].image_shape
    return height * width


def _time_steps(cfg) -> int:
    return cfg.seq_len


def _recurrent_parameters(gates: int, recurrent_bias: bool = False):
    """Weights of `depth` stacked layers with `gates` blocks each (1 vanilla, 4 LSTM, 3 GRU), and the output:
    W_ih, W_hh and one bias per gate (`core.models.recurrent`; the GRU's b_hn makes a second one)."""

    def count(cfg) -> int:
        w = cfg.width
        n, inputs = 0, cfg.features
        for _ in range(cfg.depth):
            n += gates * (inputs * w + w * w + ((2 if recurrent_bias else 1) * w if cfg.bias else 0))
            inputs = w
        return n + w * cfg.classes + cfg.classes
    return count


# The settings that only some architectures take; each entry's `options` says which of them it takes.
ARCH_OPTIONS = ("widths", "residual_scale", "seq_len", "recurrent_init", "forget_bias", "batchnorm")


@dataclass(frozen=True)
class Architecture:
    """A kind of network, with everything the lab knows about it.

    `builder` ("module:function", imported on first use) builds and
    initializes the `core.models.Model` for a RunConfig: `build(cfg,
    calibration)`. `options` are the settings of `ARCH_OPTIONS` it takes (any
    other of them set is an error naming it). It reads the datasets whose
    `kinds` meet `data_kinds` (`default_dataset` when one is needed). A run's
    table has one row per block (`depth` of them; the MLP: one per hidden
    layer) or, when `per_time`, per (block, time step); `depth_means` and
    `width_means` say what depth and width count, `row_label` what a row is (`row_name` names one:
    "block 12"; per time step, with `stack_label`: "layer 1, time step 17").
    `mlp_theory`: the MLP's mean-field theory describes its rows as they are
    (else `theory_note` says why not); `theory` ("module:function") is its
    own theory beside the measurement, (cfg) -> pandas table, or None.
    `columns` are the table's architecture columns (`core.measure.records.ARCH_COLUMNS`)
    its model fills (`Model.extra_statistics`)."""

    name: str
    label: str
    help: str
    builder: str
    options: frozenset
    data_kinds: frozenset
    default_dataset: str
    depth_means: str
    width_means: str
    parameter_count: Callable = field(repr=False)
    row_label: str = "layer"
    per_time: bool = False
    stack_label: str = "layer"  # what one of the `depth` blocks is called in a per-time row's name
    # Where each weight is applied again in one example (a CNN's pixels, an RNN's time steps): (cfg) -> count, and
    # its name; a step's cost is parameters × batch × that (`work`). None: once (MLP, residual MLP).
    positions: Callable | None = field(default=None, repr=False)
    positions_means: str = ""
    mlp_theory: bool = False
    theory_note: str = ""
    theory: str | None = None
    columns: tuple[str, ...] = ()
    calibrated_init: bool = False  # takes a data-driven initializer (LSUV calibrates a plain stack of layers)
    figures: tuple[str, ...] = ()  # its own charts: builders in core.figures.architectures (`arch_figures`)
    code: str | None = None  # "module:function" (cfg, "pytorch"|"keras", share_url) -> its script; None: the MLP's
    gate_activation: str | None = None  # the gates' nonlinearity (LSTM, GRU): its flat region is gate saturation
    gated_alternative: str | None = None  # what the verdict suggests when the gradient through time vanishes
    # The columns the verdict compares first row to last (forward, backward), and how it names them
    signal: tuple[str, str] = ("preact_var", "grad_preact_var")
    signal_names: tuple[str, str] = ("pre-activation variance", "∂L/∂h")

    @staticmethod
    def _load(path: str):
        import importlib

        module, name = path.split(":")
        return getattr(importlib.import_module(module), name)

    def build(self, cfg, calibration: Tensor | None = None):
        """The initialized network for `cfg` (deterministic in cfg.seed), a `core.models.Model`."""
        return self._load(self.builder)(cfg, calibration)

    def theory_table(self, cfg):
        """This architecture's own prediction for `cfg` at initialization, or None where it has none."""
        return None if self.theory is None else self._load(self.theory)(cfg)

    def accepts(self, dataset: "Dataset") -> bool:
        return bool(dataset.kinds & self.data_kinds)

    def rows(self, cfg) -> int:
        """Rows of one record: one per block, or per (block, time step)."""
        blocks = len(cfg.hidden_widths)
        return blocks * cfg.seq_len if self.per_time else blocks

    def takes(self, option: str) -> bool:
        return option in self.options

    def work(self, cfg) -> int:
        """What one training step of `cfg` costs, in multiply-adds per example summed over the batch:
        parameters × batch × positions (the MLP: parameters × batch). The server's work limit reads it."""
        return cfg.parameter_count() * cfg.batch_size * self.position_count(cfg)

    def position_count(self, cfg) -> int:
        return 1 if self.positions is None else int(self.positions(cfg))

    def row_name(self, row: int, time_steps: int = 0) -> str:
        """Row `row` (1-based, in the table's order) in words: "block 12", "convolution 7", or, for rows per
        (layer, time step) with `time_steps` per layer, "layer 1, time step 17"."""
        if self.per_time and time_steps:
            block, t = divmod(row - 1, time_steps)
            return f"{self.stack_label} {block + 1}, {self.row_label} {t + 1}"
        return f"{self.row_label} {row}"

    def __repr__(self) -> str:
        return f"Architecture({self.name!r}: {self.label})"


_RECURRENT = "core.models.recurrent:build_{}"  # the recurrent nets' module, loaded on first use
_RECURRENT_CODE = "core.io.codegen_recurrent:recurrent_code"
_RNN_NOTE = ("Mean-field theory for feed-forward layers does not describe a recurrent layer unrolled in time "
             "(the same W_hh at every step); the gradient-through-time prediction is shown instead.")
_GATED_NOTE = ("LSTM and GRU gates multiply the gradient through time by data-dependent factors (the forget gate's "
               "f_t), which have no closed-form mean-field prediction here: only the vanilla RNN's decay "
               "ρ(W_hh)² E[φ′²] per step is drawn.")

ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in [
        Architecture("mlp", "MLP", "A plain fully connected network: input → [Linear (→ BatchNorm) → φ] × depth → "
                     "Linear(classes).", "core.models.mlp:build_network",
                     frozenset({"widths", "batchnorm"}), frozenset({"vector"}), "digits", "hidden layers", "units",
                     _mlp_parameters, mlp_theory=True, calibrated_init=True),
        Architecture("resmlp", "Residual MLP", "An input projection, then depth blocks x ← x + α·F(x) with "
                     "F = Linear → [BatchNorm] → φ → Linear, then the output layer. A row is a block: the usual "
                     "columns for the branch's first layer, and the residual stream's and the branch's variance.",
                     "core.models.resmlp:build_network", frozenset({"residual_scale", "batchnorm"}),
                     frozenset({"vector"}), "digits", "residual blocks", "units", _resmlp_parameters,
                     row_label="block", theory="core.theory.architectures:residual_stream",
                     theory_note="A block's branch reads the residual stream, whose variance grows with depth: "
                                 "the stream's own recursion is shown instead of the MLP's.",
                     columns=("stream_var", "grad_stream_var", "branch_var"),
                     figures=("fig_residual_stream", "fig_branch_ratio"), code="core.io.codegen:resmlp_code",
                     # the stream carries the signal: a Fixup/ReZero branch's ∂L/∂h is 0 at init by design
                     signal=("stream_var", "grad_stream_var"), signal_names=("stream's variance", "∂L/∂x")),
        Architecture("cnn", "CNN (3×3 convolutions)", "A stack of 3×3 convolutions ('same' padding; depth of them, "
                     "width channels each) on 1 × 8 × 8 images, then global average pooling and the output layer. "
                     "Statistics over batch × channels × pixels; a dead unit is a channel flat everywhere.",
                     "core.models.cnn:build_network", frozenset({"batchnorm"}), frozenset({"image"}), "digits",
                     "convolutions", "channels", _cnn_parameters, row_label="convolution",
                     positions=_pixels, positions_means="pixels",
                     theory="core.theory.architectures:cnn_layers",  # its table's note says how far it holds
                     code="core.io.codegen:cnn_code"),
        Architecture("rnn", "Vanilla RNN", "h_t = φ(W_ih x_t + W_hh h_{t−1} + b), depth stacked layers of width "
                     "units over seq_len time steps (tanh or ReLU, the activation setting). A row is one layer at "
                     "one time step; ∂L/∂h_t is the gradient through time.", _RECURRENT.format("rnn"),
                     frozenset({"seq_len", "recurrent_init"}), frozenset({"sequence"}), "recall",
                     "stacked recurrent layers", "units", _recurrent_parameters(1), row_label="time step",
                     per_time=True, positions=_time_steps, positions_means="time steps", theory="core.theory.recurrent:gradient_through_time",
                     theory_note=_RNN_NOTE, columns=("spectral_radius",), code=_RECURRENT_CODE,
                     gated_alternative="lstm"),
        Architecture("lstm", "LSTM", "Long short-term memory (Hochreiter & Schmidhuber, 1997): gated cells whose "
                     "forget gate lets the gradient through time survive long lags. Per time step: the cell "
                     "state c_t as the pre-activation, h_t as the activation.", _RECURRENT.format("lstm"),
                     frozenset({"seq_len", "recurrent_init", "forget_bias"}), frozenset({"sequence"}), "recall",
                     "stacked recurrent layers", "units", _recurrent_parameters(4), row_label="time step",
                     per_time=True, positions=_time_steps, positions_means="time steps", theory_note=_GATED_NOTE, columns=("gate_saturation", "spectral_radius"),
                     gate_activation="sigmoid", code=_RECURRENT_CODE),
        Architecture("gru", "GRU", "Gated recurrent unit (Cho et al., 2014): update and reset gates, no separate "
                     "cell. Per time step: the candidate's pre-activation, and h_t.", _RECURRENT.format("gru"),
                     frozenset({"seq_len", "recurrent_init"}), frozenset({"sequence"}), "recall",
                     "stacked recurrent layers", "units", _recurrent_parameters(3, recurrent_bias=True),
                     row_label="time step", per_time=True, positions=_time_steps, positions_means="time steps", theory_note=_GATED_NOTE,
                     columns=("gate_saturation", "spectral_radius"), gate_activation="sigmoid",
                     code=_RECURRENT_CODE),
    ]
}
DEFAULT_ARCH = "mlp"


def activation_of_module(module) -> Activation | None:
    """The entry whose `module_class` is exactly `module`'s class (a subclass may
    compute another φ), or None."""
    return next((a for a in ACTIVATIONS.values() if type(module) is a.module_class), None)


def _spelling(text: str) -> str:
    return text.strip().lower().replace("-", "_").replace(" ", "_")


def resolve(registry: dict, text: str) -> str | None:
    """The registered name that `text` means, or None: the name itself, or it or one of the entry's `aliases`
    spelled with other capitals, dashes or spaces ('swish' → 'silu', 'He-Normal' → 'kaiming_normal',
    'glorot_uniform' → 'xavier_uniform'). The one resolver behind links, the CLI and files (core.schema)."""
    if text in registry:
        return text
    want = _spelling(text)
    for name, entry in registry.items():
        if _spelling(name) == want or any(_spelling(a) == want for a in getattr(entry, "aliases", ())):
            return name
    return None


def aliases_text(registry: dict) -> str:
    """'swish (silu), glorot_uniform (xavier_uniform), ...' for help texts; '' when there are none."""
    return ", ".join(f"{a} ({name})" for name, entry in registry.items() for a in getattr(entry, "aliases", ()))


def options_text(registry: dict) -> str:
    """'a, b or c' for error messages."""
    names = list(registry)
    return ", ".join(names[:-1]) + " or " + names[-1]


def phi_prime_max(act: Activation) -> float:
    """max |φ'| on a fine grid; used by tests of the flat-region thresholds."""
    h = torch.linspace(-20, 20, 400001, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(act.fn(h).sum(), h)
    return float(g.abs().max())


__all__ = ["ACTIVATIONS", "INITIALIZERS", "DATASETS", "OPTIMIZERS", "ARCHITECTURES", "RESIDUAL_SCALES",
           "RECURRENT_INITS", "ARCH_OPTIONS", "Architecture", "ResidualScale", "DEFAULT_ARCH",
           "DEFAULT_RESIDUAL_SCALE", "DEFAULT_RECURRENT_INIT", "Activation", "Advice", "Initializer", "BiasInit",
           "Dataset", "Optimizer", "options_text", "resolve", "aliases_text", "SELU_ALPHA", "SELU_SCALE", "LEAKY_SLOPE", "DEFAULT_ACTIVATION",
           "DEFAULT_INIT", "ZERO_BIAS", "NORMAL_BIAS", "UNIFORM_BIAS", "TORCH_DEFAULT_BIAS", "keras_fixed",
           "keras_variance_scaling", "activation_of_module"]
