"""The code that builds and initializes a RunConfig's network, for people to copy.

`pytorch_code(cfg)` and `keras_code(cfg)` return a complete, self-contained
script: the network (input → [Linear (→ BatchNorm) → φ] × depth →
Linear(classes)), every hidden layer initialized as `core.models.init` does it —
written with `torch.nn.init` / `tf.keras.initializers` calls, not with this
project's helpers — the optimizer with its learning rate, and one training
step on a random batch so the script runs as it is. A comment carries the
settings as URL query parameters and as a `python -m core run` command.

The PyTorch snippet is held to `core.models.init.weight_std` by the tests (they
execute it); the Keras one is checked for syntax and initializer names only
(TensorFlow is not a dependency).
"""
from __future__ import annotations

import shlex
from urllib.parse import urlencode

from core.schema import RunConfig
from core.registry import ACTIVATIONS, DATASETS, INITIALIZERS, OPTIMIZERS

__all__ = ["pytorch_code", "keras_code", "share_comment"]

# What the input of each dataset is, for the IN_FEATURES comment.
_INPUT_NOTE = {
    "gaussian": "inputs x ~ N(0, I)",
    "spirals": "2-D points (spirals)",
    "moons": "2-D points (moons)",
    "circles": "2-D points (circles)",
    "digits": "the 8×8 = 64 pixels of scikit-learn's digits",
}


def _num(x: float) -> str:
    """A float as Python source, short: 1.0, 0.05, 2.5e-05."""
    return repr(float(x))


def _widths_expr(cfg: RunConfig) -> str:
    if cfg.widths is None:
        return f"[{cfg.width}] * {cfg.depth}"
    return "[" + ", ".join(str(w) for w in cfg.widths) + "]"


def share_comment(cfg: RunConfig, share_url: str | None = None) -> list[str]:
    """Comment lines that say which lab settings the snippet reproduces."""
    lines = ["# Gradient Flow Lab settings (URL query parameters):", "#   " + urlencode(cfg.to_query(), safe=",")]
    if share_url:
        lines.append(f"# Open them in the lab: {share_url}")
    args = " ".join(shlex.quote(a) for a in cfg.to_cli_args())
    lines.append(f"# The same run, measured layer by layer: python -m core run {args} --out run.csv")
    return lines


def _title(cfg: RunConfig, framework: str) -> str:
    act = ACTIVATIONS[cfg.activation].label
    ini = INITIALIZERS[cfg.init]
    widths = cfg.hidden_widths
    shape = f"{len(widths)} hidden layers of {widths[0]}" if len(set(widths)) == 1 else f"hidden widths {list(widths)}"
    bn = ", BatchNorm" if cfg.batchnorm else ""
    sig = ""
    if ini.uses_sigma_b:
        sig = f" (σ_w = {cfg.sigma_w:g}, σ_b = {cfg.sigma_b:g})"
    elif cfg.sigma_w != 1.0 and cfg.init not in ("zeros", "lsuv"):
        sig = f" × σ_w = {cfg.sigma_w:g}"
    return f"# {framework}: a {act} MLP, {shape}{bn}, {ini.label} initialization{sig}."


# -- PyTorch ----------------------------------------------------------------------------------------

# The published scheme for one hidden nn.Linear `m`, as torch.nn.init calls.
# Each entry: (lines, comment). `{g}` is replaced by the gain argument (", gain=SIGMA_W") where the
# scheme takes one; the other schemes get a separate `m.weight.mul_(SIGMA_W)` line when σ_w ≠ 1.
_TORCH_WEIGHT = {
    "zeros": (["nn.init.zeros_(m.weight)"], "every weight 0: symmetry is never broken"),
    "normal": (["nn.init.normal_(m.weight, 0.0, SIGMA_W / math.sqrt(m.in_features))"], "W ~ N(0, σ_w²/fan_in)"),
    "uniform": (["bound = SIGMA_W * math.sqrt(3 / m.in_features)", "nn.init.uniform_(m.weight, -bound, bound)"],
                "W ~ U(±σ_w·√(3/fan_in)): variance σ_w²/fan_in"),
    "xavier_uniform": (["nn.init.xavier_uniform_(m.weight{g})"], "Glorot: U(±√(6/(fan_in+fan_out)))"),
    "xavier_normal": (["nn.init.xavier_normal_(m.weight{g})"], "Glorot: Var(W) = 2/(fan_in+fan_out)"),
    "kaiming_uniform": (['nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")'],
                        "He: U(±√(6/fan_in)), Var(W) = 2/fan_in"),
    "kaiming_normal": (['nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")'],
                       "He: Var(W) = 2/fan_in"),
    "kaiming_normal_fan_out": (['nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")'],
                               "He, backward-preserving: Var(W) = 2/fan_out"),
    "lecun_normal": (["nn.init.normal_(m.weight, 0.0, 1 / math.sqrt(m.in_features))"],
                     'LeCun: Var(W) = 1/fan_in (= kaiming_normal_ with nonlinearity="linear")'),
    "lecun_uniform": (["bound = math.sqrt(3 / m.in_features)", "nn.init.uniform_(m.weight, -bound, bound)"],
                      "LeCun: U(±√(3/fan_in)), Var(W) = 1/fan_in"),
    "orthogonal": (["nn.init.orthogonal_(m.weight{g})"], "Saxe et al.: a (semi-)orthogonal matrix"),
    "torch_default": ([], ""),
    "lsuv": (["nn.init.orthogonal_(m.weight)"], "LSUV starts orthogonal; lsuv_ rescales below"),
}
_TAKES_GAIN = {"xavier_uniform", "xavier_normal", "orthogonal"}
_SIGMA_INTRINSIC = {"normal", "uniform"}     # σ_w is part of the formula
_SIGMA_IGNORED = {"zeros", "lsuv"}           # σ_w changes nothing (0, or rescaled from data)

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


def _torch_bias(cfg: RunConfig) -> list[str]:
    if not cfg.bias:
        return []
    kind = INITIALIZERS[cfg.init].bias
    if kind == "torch_default":
        return []  # nn.Linear already drew b ~ U(±1/√fan_in)
    if kind == "zero" or cfg.sigma_b == 0.0:
        return ["nn.init.zeros_(m.bias)"]
    if cfg.init == "uniform":
        return ["nn.init.uniform_(m.bias, -SIGMA_B * math.sqrt(3), SIGMA_B * math.sqrt(3))  # variance σ_b²"]
    return ["nn.init.normal_(m.bias, 0.0, SIGMA_B)  # b ~ N(0, σ_b²)"]


def _torch_init_block(cfg: RunConfig) -> list[str]:
    name = cfg.init
    lines, comment = _TORCH_WEIGHT[name]
    scaled = cfg.sigma_w != 1.0 and name not in _SIGMA_INTRINSIC | _SIGMA_IGNORED
    body = []
    for i, line in enumerate(lines):
        line = line.replace("{g}", ", gain=SIGMA_W" if scaled and name in _TAKES_GAIN else "")
        if i == len(lines) - 1 and comment:
            line += f"  # {comment}"
        body.append(line)
    if scaled and name not in _TAKES_GAIN:
        body.append("m.weight.mul_(SIGMA_W)  # σ_w multiplies the scheme's standard deviation")
    body += _torch_bias(cfg)
    out = []
    if name == "torch_default":
        out += ["# PyTorch's default: nn.Linear initialized itself when it was built, with",
                "# W ~ U(±1/√fan_in) (kaiming_uniform_ with a=√5) and b ~ U(±1/√fan_in)."]
        if not body:
            out.append("# Nothing to do.")
            return out
    out += ["hidden = [m for m in model if isinstance(m, nn.Linear)][:-1]  # the output layer keeps PyTorch's default",
            "with torch.no_grad():",
            "    for m in hidden:"]
    out += ["        " + line for line in body]
    if name == "lsuv":
        out += ["    # Calibrate on a batch of real training inputs (the lab uses the first 512).",
                "    lsuv_(model, torch.randn(512, IN_FEATURES))"]
    return out


def pytorch_code(cfg: RunConfig, share_url: str | None = None) -> str:
    """A runnable PyTorch script that builds, initializes and trains one step of `cfg`'s network.

    Defines `model` (an nn.Sequential: [Linear(, BatchNorm1d), activation] ×
    depth, then Linear(classes)), `optimizer` and `loss`. The initial
    weights follow the same distributions as the lab's (not the same
    numbers: the lab draws them from its own generator).
    """
    act = ACTIVATIONS[cfg.activation]
    ds = DATASETS[cfg.dataset]
    consts = [
        f"IN_FEATURES = {cfg.features}  # {_INPUT_NOTE.get(cfg.dataset, ds.label)}",
        f"WIDTHS = {_widths_expr(cfg)}  # hidden layers",
        f"CLASSES = {cfg.classes}",
    ]
    if cfg.init in _SIGMA_INTRINSIC or (cfg.sigma_w != 1.0 and cfg.init not in _SIGMA_IGNORED):
        consts.append(f"SIGMA_W = {_num(cfg.sigma_w)}")
    if INITIALIZERS[cfg.init].uses_sigma_b and cfg.bias and cfg.sigma_b != 0.0:
        consts.append(f"SIGMA_B = {_num(cfg.sigma_b)}")
    bias = "" if cfg.bias else ", bias=False"
    block = [nn_line for nn_line in (
        f"nn.Linear(fan_in, width{bias})",
        "nn.BatchNorm1d(width)" if cfg.batchnorm else None,
        act.module_code,
    ) if nn_line]
    parts = [
        _title(cfg, "PyTorch"),
        *share_comment(cfg, share_url),
        "import math",
        "",
        "import torch",
        "from torch import nn",
        "",
        f"torch.manual_seed({cfg.seed})",
        "",
        *consts,
        "",
        "layers = []",
        "fan_in = IN_FEATURES",
        "for width in WIDTHS:",
        f"    layers += [{', '.join(block)}]",
        "    fan_in = width",
        "layers.append(nn.Linear(fan_in, CLASSES))  # the output layer (logits)",
        "model = nn.Sequential(*layers)",
    ]
    if cfg.init == "lsuv":
        parts += _TORCH_LSUV.rstrip("\n").split("\n")
    parts += ["", *_torch_init_block(cfg), ""]
    parts += [
        f"optimizer = {OPTIMIZERS[cfg.optimizer].code.format(lr=_num(cfg.lr))}",
        "",
        f"# One training step on a random batch of {cfg.batch_size} (use your own data here).",
        f"x = torch.randn({cfg.batch_size}, IN_FEATURES)",
        f"y = torch.randint(0, CLASSES, ({cfg.batch_size},))",
        "loss = nn.functional.cross_entropy(model(x), y)",
        "optimizer.zero_grad()",
        "loss.backward()",
        "optimizer.step()",
        'print(f"loss before the step: {loss.item():.4f}")',
    ]
    return _finish(parts)


def _finish(parts: list[str]) -> str:
    """Join the lines; drop `import math` (and its blank line) when nothing uses it."""
    code = "\n".join(parts) + "\n"
    if "math." not in code:
        code = code.replace("import math\n\n", "", 1)
    return code


# -- Keras ------------------------------------------------------------------------------------------

_K = "tf.keras.initializers."
# (named initializer, VarianceScaling scale, mode, distribution) of the fan-based schemes: the named
# class when σ_w = 1, else VarianceScaling(scale=σ_w² × scale, ...) - the same scheme, scaled.
_KERAS_VS = {
    "xavier_uniform": ("GlorotUniform", 1.0, "fan_avg", "uniform"),
    "xavier_normal": ("GlorotNormal", 1.0, "fan_avg", "truncated_normal"),
    "kaiming_uniform": ("HeUniform", 2.0, "fan_in", "uniform"),
    "kaiming_normal": ("HeNormal", 2.0, "fan_in", "truncated_normal"),
    "kaiming_normal_fan_out": (None, 2.0, "fan_out", "untruncated_normal"),
    "lecun_normal": ("LecunNormal", 1.0, "fan_in", "truncated_normal"),
    "lecun_uniform": ("LecunUniform", 1.0, "fan_in", "uniform"),
}
_TRUNCATED_NOTE = ("# Keras' {name} is a truncated normal (cut at 2 std, widened so the variance is the same);\n"
                   "# PyTorch draws an untruncated normal. For PyTorch's exact distribution use\n"
                   "# tf.keras.initializers.VarianceScaling(scale={scale}, mode=\"{mode}\", "
                   "distribution=\"untruncated_normal\").")

_KERAS_LSUV = '''
def lsuv(model, x, tol=0.1, max_iter=10):
    """LSUV (Mishkin & Matas, 2016): from the input up, divide each hidden
    Dense layer's kernel by the std of its output on the batch x until that
    output's variance is 1 ± tol."""
    dense = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Dense)][:-1]
    for layer in dense:
        probe = tf.keras.Model(model.inputs, layer.output)
        for _ in range(max_iter):
            var = float(tf.math.reduce_variance(probe(x, training=True)))
            if not math.isfinite(var) or var == 0 or abs(var - 1) < tol:
                break
            layer.kernel.assign(layer.kernel / math.sqrt(var))
            if layer.use_bias:
                layer.bias.assign(tf.zeros_like(layer.bias))
'''


def _keras_kernel(cfg: RunConfig) -> tuple[str, list[str]]:
    """The kernel_initializer expression (inside the loop; `fan_in` is the layer's) and comment lines."""
    name, sw = cfg.init, cfg.sigma_w
    if name == "zeros":
        return '"zeros"', ["# Every weight 0: all units stay identical (symmetry is never broken)."]
    if name == "normal":
        return f"{_K}RandomNormal(stddev=SIGMA_W / math.sqrt(fan_in))", ["# W ~ N(0, σ_w²/fan_in)."]
    if name == "uniform":
        return (f"{_K}RandomUniform(minval=-SIGMA_W * math.sqrt(3 / fan_in), maxval=SIGMA_W * math.sqrt(3 / fan_in))",
                ["# W ~ U(±σ_w·√(3/fan_in)): variance σ_w²/fan_in."])
    if name in ("orthogonal", "lsuv"):
        gain = "gain=SIGMA_W" if (name == "orthogonal" and sw != 1.0) else ""
        note = "# A (semi-)orthogonal matrix (Saxe et al., 2014)." if name == "orthogonal" else \
            "# LSUV starts orthogonal; lsuv() rescales each layer from a data batch below."
        return f"{_K}Orthogonal({gain})", [note]
    if name == "torch_default":
        scale = "SIGMA_W**2 / 3" if sw != 1.0 else "1 / 3"
        return (f'{_K}VarianceScaling(scale={scale}, mode="fan_in", distribution="uniform")',
                ["# PyTorch's nn.Linear default: W ~ U(±1/√fan_in) and b ~ U(±1/√fan_in)",
                 "# (Keras' own default is GlorotUniform with zero biases)."])
    named, scale, mode, dist = _KERAS_VS[name]
    comments = []
    if dist == "truncated_normal":
        comments = _TRUNCATED_NOTE.format(name=named, scale=_num(scale), mode=mode).split("\n")
    if sw == 1.0 and named is not None:
        return f"{_K}{named}()", comments
    scale_expr = _num(scale) if sw == 1.0 else ("SIGMA_W**2" if scale == 1.0 else f"{_num(scale)} * SIGMA_W**2")
    if sw != 1.0:
        comments.append(f"# {named or 'The scheme'} with its standard deviation multiplied by σ_w.")
    return f'{_K}VarianceScaling(scale={scale_expr}, mode="{mode}", distribution="{dist}")', comments


def _keras_bias(cfg: RunConfig) -> str:
    kind = INITIALIZERS[cfg.init].bias
    if kind == "torch_default":
        return f"{_K}RandomUniform(minval=-1 / math.sqrt(fan_in), maxval=1 / math.sqrt(fan_in))"
    if kind == "zero" or cfg.sigma_b == 0.0:
        return '"zeros"'
    if cfg.init == "uniform":
        return f"{_K}RandomUniform(minval=-SIGMA_B * math.sqrt(3), maxval=SIGMA_B * math.sqrt(3))"
    return f"{_K}RandomNormal(stddev=SIGMA_B)"


def _keras_activation(cfg: RunConfig) -> tuple[str, str]:
    """The activation layer and a comment ("" for none)."""
    if cfg.activation == "leaky_relu":
        # Keras' "leaky_relu" string means slope 0.2; the lab's (PyTorch's default) is 0.01.
        return "tf.keras.layers.LeakyReLU(negative_slope=0.01)", "  # slope 0.01 as in PyTorch (Keras 2: alpha=0.01)"
    return f'tf.keras.layers.Activation("{ACTIVATIONS[cfg.activation].keras_name}")', ""


_KERAS_OPTIMIZER = {  # (expression, comment)
    "sgd": ("tf.keras.optimizers.SGD(learning_rate={lr})", ""),
    "momentum": ("tf.keras.optimizers.SGD(learning_rate={lr}, momentum=0.9)", ""),
    "adam": ("tf.keras.optimizers.Adam(learning_rate={lr}, epsilon=1e-8)", "  # PyTorch's epsilon"),
}


def keras_code(cfg: RunConfig, share_url: str | None = None) -> str:
    """The same network in TensorFlow/Keras: a tf.keras.Sequential of Dense layers.

    Named Keras initializers where one matches the scheme (HeNormal,
    GlorotNormal, LecunNormal, Orthogonal, ...), VarianceScaling /
    RandomNormal / RandomUniform otherwise; BatchNormalization with
    PyTorch's epsilon and momentum; the optimizer; compiled for
    sparse-label cross-entropy on logits.
    """
    kernel, comments = _keras_kernel(cfg)
    opt, opt_comment = _KERAS_OPTIMIZER[cfg.optimizer]
    bias = _keras_bias(cfg) if cfg.bias else None
    uses_fan_in = "fan_in)" in kernel or (bias is not None and "fan_in)" in bias)
    consts = [
        f"IN_FEATURES = {cfg.features}  # {_INPUT_NOTE.get(cfg.dataset, DATASETS[cfg.dataset].label)}",
        f"WIDTHS = {_widths_expr(cfg)}  # hidden layers",
        f"CLASSES = {cfg.classes}",
    ]
    if "SIGMA_W" in kernel:
        consts.append(f"SIGMA_W = {_num(cfg.sigma_w)}")
    if bias is not None and "SIGMA_B" in bias:
        consts.append(f"SIGMA_B = {_num(cfg.sigma_b)}")
    dense_args = ["width", f"kernel_initializer={kernel}"]
    dense_args += [f"bias_initializer={bias}"] if bias is not None else ["use_bias=False"]
    loop = ["for width in WIDTHS:", *["    " + c for c in comments],
            "    model.add(tf.keras.layers.Dense(", *[f"        {a}," for a in dense_args], "    ))"]
    if cfg.batchnorm:
        loop.append("    model.add(tf.keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9))"
                    "  # PyTorch's defaults")
    act_layer, act_comment = _keras_activation(cfg)
    loop.append(f"    model.add({act_layer}){act_comment}")
    if uses_fan_in:
        loop.append("    fan_in = width")
    parts = [
        _title(cfg, "TensorFlow/Keras"),
        *share_comment(cfg, share_url),
        "import math",
        "",
        "import tensorflow as tf",
        "",
        f"tf.keras.utils.set_random_seed({cfg.seed})",
        "",
        *consts,
        "",
        "model = tf.keras.Sequential([tf.keras.Input(shape=(IN_FEATURES,))])",
        *(["fan_in = IN_FEATURES  # inputs of the next Dense layer"] if uses_fan_in else []),
        *loop,
        "model.add(tf.keras.layers.Dense(CLASSES))  # the output layer (logits), Keras' default init",
    ]
    if cfg.init == "lsuv":
        parts += _KERAS_LSUV.rstrip("\n").split("\n")
        parts += ["", "# Calibrate on a batch of real training inputs (the lab uses the first 512).",
                  "lsuv(model, tf.random.normal((512, IN_FEATURES)))"]
    parts += [
        "",
        "model.compile(",
        f"    optimizer={opt.format(lr=_num(cfg.lr))},{opt_comment}",
        "    loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),",
        '    metrics=["accuracy"],',
        ")",
        "model.summary()",
        f"# Train with: model.fit(x_train, y_train, batch_size={cfg.batch_size}, epochs=...)",
    ]
    return _finish(parts)
