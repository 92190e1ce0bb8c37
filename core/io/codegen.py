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
from core.registry import ACTIVATIONS, DATASETS, INITIALIZERS, OPTIMIZERS, ZERO_BIAS

__all__ = ["pytorch_code", "keras_code", "share_comment"]

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
    elif cfg.sigma_w != 1.0 and ini.uses_sigma_w:
        sig = f" × σ_w = {cfg.sigma_w:g}"
    return f"# {framework}: a {act} MLP, {shape}{bn}, {ini.label} initialization{sig}."


# -- PyTorch ----------------------------------------------------------------------------------------

def _uses_sigma_w_const(cfg: RunConfig) -> bool:
    """Whether the PyTorch script needs SIGMA_W: σ_w is the scheme's own parameter, or multiplies it."""
    ini = INITIALIZERS[cfg.init]
    return ini.sigma_w == "intrinsic" or (cfg.sigma_w != 1.0 and ini.uses_sigma_w)


def _torch_bias(cfg: RunConfig) -> list[str]:
    if not cfg.bias:
        return []
    bias = INITIALIZERS[cfg.init].bias
    if bias.torch_code is None:
        return []  # nn.Linear already drew its own default
    if bias.uses_sigma_b and cfg.sigma_b == 0.0:
        return [ZERO_BIAS.torch_code]
    return [bias.torch_code]


def _torch_init_block(cfg: RunConfig) -> list[str]:
    """The with-block that initializes every hidden nn.Linear `m`, from the entry's torch.nn.init lines."""
    ini = INITIALIZERS[cfg.init]
    scaled = cfg.sigma_w != 1.0 and ini.sigma_w == "multiplier"
    body = []
    for i, line in enumerate(ini.torch_code):
        line = line.replace("{g}", ", gain=SIGMA_W" if scaled and ini.torch_gain else "")
        if i == len(ini.torch_code) - 1 and ini.torch_comment:
            line += f"  # {ini.torch_comment}"
        body.append(line)
    if scaled and not ini.torch_gain:
        body.append("m.weight.mul_(SIGMA_W)  # σ_w multiplies the scheme's standard deviation")
    body += _torch_bias(cfg)
    out = list(ini.torch_note)
    if not body:
        return out + ["# Nothing to do."]
    out += ["hidden = [m for m in model if isinstance(m, nn.Linear)][:-1]  # the output layer keeps PyTorch's default",
            "with torch.no_grad():",
            "    for m in hidden:"]
    out += ["        " + line for line in body]
    out += ["    " + line for line in ini.torch_after]
    return out


def pytorch_code(cfg: RunConfig, share_url: str | None = None) -> str:
    """A runnable PyTorch script that builds, initializes and trains one step of `cfg`'s network.

    Defines `model` (an nn.Sequential: [Linear(, BatchNorm1d), activation] ×
    depth, then Linear(classes)), `optimizer` and `loss`. The initial
    weights follow the same distributions as the lab's (not the same
    numbers: the lab draws them from its own generator). An architecture with code of its own
    (`Architecture.code`) writes it there.
    """
    own = cfg.architecture.code_module()
    if own is not None:
        return own.pytorch_code(cfg, share_url)
    act = ACTIVATIONS[cfg.activation]
    ds = DATASETS[cfg.dataset]
    consts = [
        f"IN_FEATURES = {cfg.features}  # {ds.input_note or ds.label}",
        f"WIDTHS = {_widths_expr(cfg)}  # hidden layers",
        f"CLASSES = {cfg.classes}",
    ]
    if _uses_sigma_w_const(cfg):
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
    if INITIALIZERS[cfg.init].torch_helper:
        parts += INITIALIZERS[cfg.init].torch_helper.rstrip("\n").split("\n")
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

def _keras_bias(cfg: RunConfig) -> str:
    bias = INITIALIZERS[cfg.init].bias
    if bias.uses_sigma_b and cfg.sigma_b == 0.0:
        return ZERO_BIAS.keras_code
    return bias.keras_code


def keras_code(cfg: RunConfig, share_url: str | None = None) -> str:
    """The same network in TensorFlow/Keras: a tf.keras.Sequential of Dense layers.

    Named Keras initializers where one matches the scheme (HeNormal,
    GlorotNormal, LecunNormal, Orthogonal, ...), VarianceScaling /
    RandomNormal / RandomUniform otherwise; BatchNormalization with
    PyTorch's epsilon and momentum; the optimizer; compiled for
    sparse-label cross-entropy on logits. An architecture with code of its own writes it there.
    """
    own = cfg.architecture.code_module()
    if own is not None:
        return own.keras_code(cfg, share_url)
    ini = INITIALIZERS[cfg.init]
    kernel, comments = ini.keras_kernel(cfg.sigma_w)
    optimizer = OPTIMIZERS[cfg.optimizer]
    opt, opt_comment = optimizer.keras_code, f"  # {optimizer.keras_note}" if optimizer.keras_note else ""
    bias = _keras_bias(cfg) if cfg.bias else None
    uses_fan_in = "fan_in)" in kernel or (bias is not None and "fan_in)" in bias)
    consts = [
        f"IN_FEATURES = {cfg.features}  # {DATASETS[cfg.dataset].input_note or DATASETS[cfg.dataset].label}",
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
    act = ACTIVATIONS[cfg.activation]
    loop.append(f"    model.add({act.keras_code})" + (f"  # {act.keras_note}" if act.keras_note else ""))
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
    if ini.keras_helper:
        parts += ini.keras_helper.rstrip("\n").split("\n")
    if ini.keras_after:
        parts += ["", *ini.keras_after]
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
