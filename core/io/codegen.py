"""The code that builds and initializes a RunConfig's network, for people to copy.

`pytorch_code(cfg)` and `keras_code(cfg)` return a complete, self-contained
script: the network (input → [Linear (→ BatchNorm) → φ] × depth →
Linear(classes)), every hidden layer initialized as `core.models.init` does it —
written with `torch.nn.init` / `keras.initializers` calls, not with this
project's helpers — the optimizer with its learning rate, and one training
step on a random batch so the script runs as it is. A comment carries the
settings as URL query parameters and as a `python -m core run` command.

Both are executed by the tests - the Keras 3 one on the torch backend
(`KERAS_BACKEND=torch`) - and each hidden weight's standard deviation is held
to `Initializer.weight_std`.
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


def _torch_init_lines(cfg: RunConfig, conv: bool = False, guard_bias: bool = False) -> list[str]:
    """The lines that initialize one hidden layer `m` (an nn.Linear, or with `conv` an nn.Conv2d, whose
    fan_in is in_channels × 9), from the entry's torch.nn.init lines."""
    ini = INITIALIZERS[cfg.init]
    scaled = cfg.sigma_w != 1.0 and ini.sigma_w == "multiplier"
    code = ini.conv_torch_code if conv and ini.conv_torch_code is not None else ini.torch_code
    body = []
    for i, line in enumerate(code):
        line = line.replace("{g}", ", gain=SIGMA_W" if scaled and ini.torch_gain else "")
        if conv:
            line = line.replace("m.in_features", "m.weight[0].numel()")  # a convolution's fan_in
        if i == len(code) - 1 and ini.torch_comment and not (conv and ini.conv_torch_code is not None):
            line += f"  # {ini.torch_comment}"
        body.append(line)
    if scaled and not ini.torch_gain:
        body.append("m.weight.mul_(SIGMA_W)  # σ_w multiplies the scheme's standard deviation")
    bias = [line.replace("m.in_features", "m.weight[0].numel()") if conv else line for line in _torch_bias(cfg)]
    if guard_bias and bias:  # some of the layers have no bias vector (Fixup's branches)
        bias = ["if m.bias is not None:", *["    " + line for line in bias]]
    return body + bias


def _torch_init_block(cfg: RunConfig) -> list[str]:
    """The with-block that initializes every hidden nn.Linear `m`, from the entry's torch.nn.init lines."""
    ini = INITIALIZERS[cfg.init]
    body = _torch_init_lines(cfg)
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
    numbers: the lab draws them from its own generator). Other architectures: their entry's
    `Architecture.code` writes theirs (`architecture_code`).
    """
    if cfg.architecture.code is not None:
        return architecture_code(cfg, "pytorch", share_url)
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
        code = code.replace("import math\n\n", "", 1).replace("import math\n", "", 1)
    return code


# -- Keras ------------------------------------------------------------------------------------------

def _keras_bias(cfg: RunConfig) -> str:
    bias = INITIALIZERS[cfg.init].bias
    if bias.uses_sigma_b and cfg.sigma_b == 0.0:
        return ZERO_BIAS.keras_code
    return bias.keras_code


def keras_code(cfg: RunConfig, share_url: str | None = None) -> str:
    """The same network in Keras 3 (any backend; `KERAS_BACKEND=torch` runs it with this PyTorch):
    a keras.Sequential of Dense layers.

    Named Keras initializers where one matches the scheme (HeNormal,
    GlorotNormal, LecunNormal, Orthogonal, ...), VarianceScaling /
    RandomNormal / RandomUniform otherwise; BatchNormalization with
    PyTorch's epsilon and momentum; the optimizer; compiled for
    sparse-label cross-entropy on logits. Other architectures: their entry's `Architecture.code`
    writes theirs (`architecture_code`).
    """
    if cfg.architecture.code is not None:
        return architecture_code(cfg, "keras", share_url)
    ini = INITIALIZERS[cfg.init]
    kernel, comments = ini.keras_kernel(cfg.sigma_w)
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
            "    model.add(keras.layers.Dense(", *[f"        {a}," for a in dense_args], "    ))"]
    if cfg.batchnorm:
        loop.append("    model.add(keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9))"
                    "  # PyTorch's defaults")
    act = ACTIVATIONS[cfg.activation]
    loop.append(f"    model.add({act.keras_code})" + (f"  # {act.keras_note}" if act.keras_note else ""))
    if uses_fan_in:
        loop.append("    fan_in = width")
    parts = [
        _title(cfg, "Keras 3"),
        *share_comment(cfg, share_url),
        "import math",
        *_KERAS_HEADER,
        "",
        f"keras.utils.set_random_seed({cfg.seed})",
        "",
        *consts,
        "",
        "model = keras.Sequential([keras.Input(shape=(IN_FEATURES,))])",
        *(["fan_in = IN_FEATURES  # inputs of the next Dense layer"] if uses_fan_in else []),
        *loop,
        "model.add(keras.layers.Dense(CLASSES))  # the output layer (logits), Keras' default init",
    ]
    if ini.keras_helper:
        parts += ini.keras_helper.rstrip("\n").split("\n")
    if ini.keras_after:
        parts += ["", *ini.keras_after]
    parts += _keras_compile(cfg, "x_train")
    return _finish(parts)


# -- the other architectures -----------------------------------------------------------------------------
# Each entry of ARCHITECTURES beyond the MLP names its writer (`Architecture.code`, "module:function"):
# (cfg, framework "pytorch" or "keras", share_url) -> the script. The Keras scripts are Keras 3 (any
# backend: KERAS_BACKEND=torch runs them with this PyTorch; the tests do), as is the MLP's.

def architecture_code(cfg: RunConfig, framework: str, share_url: str | None = None) -> str:
    import importlib

    module, name = cfg.architecture.code.split(":")
    return getattr(importlib.import_module(module), name)(cfg, framework, share_url)


_KERAS_HEADER = [
    "import os",
    "",
    'os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 runs on torch, jax or tensorflow',
    "import keras",
]


def _consts(cfg: RunConfig, kernel_text: str = "", bias_text: str = "") -> list[str]:
    ini = INITIALIZERS[cfg.init]
    out = []
    if _uses_sigma_w_const(cfg) or "SIGMA_W" in kernel_text:
        out.append(f"SIGMA_W = {_num(cfg.sigma_w)}")
    if cfg.bias and ini.uses_sigma_b and cfg.sigma_b != 0.0 and ("SIGMA_B" in bias_text or not bias_text):
        out.append(f"SIGMA_B = {_num(cfg.sigma_b)}")
    return out


def _arch_title(cfg: RunConfig, framework: str) -> str:
    arch, act, ini = cfg.architecture, ACTIVATIONS[cfg.activation].label, INITIALIZERS[cfg.init]
    extra = f", {FIELDS_LABEL(cfg)}" if cfg.applies("residual_scale") else ""
    bn = ", BatchNorm" if cfg.batchnorm else ""
    sig = f" × σ_w = {cfg.sigma_w:g}" if cfg.sigma_w != 1.0 and ini.uses_sigma_w else ""
    return (f"# {framework}: a {act} {arch.label}, {cfg.depth} {arch.depth_means} of {cfg.width} {arch.width_means}"
            f"{extra}{bn}, {ini.label} initialization{sig}.")


def FIELDS_LABEL(cfg: RunConfig) -> str:  # noqa: N802 - the residual scaling in words
    from core.registry import RESIDUAL_SCALES

    return f"{RESIDUAL_SCALES[cfg.residual_scale].label} residual scaling"


def _train_step(cfg: RunConfig, x_shape: str) -> list[str]:
    return [
        f"optimizer = {OPTIMIZERS[cfg.optimizer].code.format(lr=_num(cfg.lr))}",
        "",
        f"# One training step on a random batch of {cfg.batch_size} (use your own data here).",
        f"x = torch.randn({cfg.batch_size}, {x_shape})",
        f"y = torch.randint(0, CLASSES, ({cfg.batch_size},))",
        "loss = nn.functional.cross_entropy(model(x), y)",
        "optimizer.zero_grad()",
        "loss.backward()",
        "optimizer.step()",
        'print(f"loss before the step: {loss.item():.4f}")',
    ]


def _keras_compile(cfg: RunConfig, fit: str) -> list[str]:
    optimizer = OPTIMIZERS[cfg.optimizer]
    comment = f"  # {optimizer.keras_note}" if optimizer.keras_note else ""
    return [
        "",
        "model.compile(",
        f"    optimizer={optimizer.keras_code.format(lr=_num(cfg.lr))},{comment}",
        "    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),",
        '    metrics=["accuracy"],',
        ")",
        "model.summary()",
        f"# Train with: model.fit({fit}, y_train, batch_size={cfg.batch_size}, epochs=...)",
    ]


def _keras_kernel(cfg: RunConfig, conv: bool = False) -> tuple[str, tuple[str, ...], str]:
    """(kernel_initializer expression, comment lines, helper code) for one hidden layer, Keras 3."""
    ini = INITIALIZERS[cfg.init]
    kernel = ini.conv_keras_kernel if conv and ini.conv_keras_kernel is not None else ini.keras_kernel
    expr, comments = kernel(cfg.sigma_w)
    helper = ini.conv_keras_helper if conv and ini.conv_keras_kernel is not None else ini.keras_helper
    return expr, tuple(comments), helper


def _keras_bias3(cfg: RunConfig) -> str | None:
    return _keras_bias(cfg) if cfg.bias else None


_KERAS_SCALAR_LAYERS = '''
class Scale(keras.layers.Layer):
    """y = α·x with one scalar α: ReZero's learnable α (from 0), Fixup's multiplier (from 1), or 1/√depth."""

    def __init__(self, value, learnable=True, **kwargs):
        super().__init__(**kwargs)
        self.value, self.learnable = float(value), learnable

    def build(self, input_shape):
        self.alpha = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.value),
                                     trainable=self.learnable, name="alpha")

    def call(self, x):
        return x * self.alpha


class Shift(keras.layers.Layer):
    """y = x + b with one learnable scalar b, from 0 (Fixup's scalar biases)."""

    def build(self, input_shape):
        self.b = self.add_weight(shape=(), initializer="zeros", name="b")

    def call(self, x):
        return x + self.b
'''

_TORCH_BLOCK = '''
class Block(nn.Module):
    """x ← x + α·F(x), F = Linear → {norm}φ → Linear.{fixup_doc}"""

    def __init__(self, width):
        super().__init__()
        self.first = nn.Linear(width, width{bias})
{norm_line}        self.act = {act}
        self.second = nn.Linear(width, width{bias})
{alpha_line}{fixup_lines}
    def forward(self, x):
{forward}
'''


def resmlp_code(cfg: RunConfig, framework: str, share_url: str | None = None) -> str:
    """The residual MLP (`core.models.resmlp`) as a runnable script: PyTorch, or Keras 3."""
    from core.registry import RESIDUAL_SCALES

    scale = RESIDUAL_SCALES[cfg.residual_scale]
    act = ACTIVATIONS[cfg.activation]
    ds = DATASETS[cfg.dataset]
    shape = [f"IN_FEATURES = {cfg.features}  # {ds.input_note or ds.label}", f"WIDTH = {cfg.width}",
             f"DEPTH = {cfg.depth}  # residual blocks", "CLASSES = 10" if cfg.classes == 10 else f"CLASSES = {cfg.classes}"]
    if framework == "pytorch":
        branch_bias = "" if cfg.bias and not scale.fixup else ", bias=False"
        if scale.learnable:
            alpha_line = f"        self.alpha = nn.Parameter(torch.tensor({_num(scale.alpha(cfg.depth))}))  # {scale.torch_note}\n"
        elif scale.fixup:
            alpha_line = ""
        else:
            alpha = "1.0" if scale.alpha(cfg.depth) == 1.0 else "DEPTH ** -0.5"
            alpha_line = f"        self.alpha = {alpha}  # {scale.torch_note}\n"
        fixup_lines = ("        self.bias = nn.Parameter(torch.zeros(4))  # Fixup's scalar biases, from 0\n"
                       "        self.scale = nn.Parameter(torch.ones(()))  # Fixup's scalar multiplier, from 1\n"
                       if scale.fixup else "")
        h = "self.first(x + self.bias[0])" if scale.fixup else "self.first(x)"
        forward = [f"        h = {h}"]
        if cfg.batchnorm:
            forward.append("        h = self.norm(h)")
        if scale.fixup:
            forward += ["        a = self.act(h + self.bias[1])",
                        "        return x + self.scale * self.second(a + self.bias[2]) + self.bias[3]"]
        else:
            forward.append("        return x + self.alpha * self.second(self.act(h))")
        block = _TORCH_BLOCK.format(
            norm="[BatchNorm1d] → " if cfg.batchnorm else "",
            fixup_doc=" Fixup (Zhang et al., 2019): scalar biases and a multiplier." if scale.fixup else "",
            bias=branch_bias, norm_line="        self.norm = nn.BatchNorm1d(width)\n" if cfg.batchnorm else "",
            act=act.module_code, alpha_line=alpha_line, fixup_lines=fixup_lines, forward="\n".join(forward))
        ini = INITIALIZERS[cfg.init]
        body = _torch_init_lines(cfg, guard_bias=scale.fixup)
        init = list(ini.torch_note) + [
            "blocks = list(model[1:-1])",
            "# the input projection and every branch Linear get the scheme; the output layer keeps PyTorch's default",
            "layers = [model[0]] + [b.first for b in blocks]  # Fixup: the branches' last layers start at zero"
            if scale.fixup else "layers = [model[0]] + [m for b in blocks for m in (b.first, b.second)]",
            "with torch.no_grad():",
            "    for m in layers:",
            *["        " + line for line in (body or ["pass"])],
        ]
        if scale.fixup:
            init += ["    for b in blocks:  # Fixup: the first layer × depth^(-1/2), the last layer zero",
                     "        b.first.weight.mul_(DEPTH ** -0.5)",
                     "        nn.init.zeros_(b.second.weight)"]
        parts = [
            _arch_title(cfg, "PyTorch"), *share_comment(cfg, share_url), "import math", "", "import torch",
            "from torch import nn", "", f"torch.manual_seed({cfg.seed})", "", *shape,
            *_consts(cfg), "", *block.rstrip("\n").split("\n"), "", "",
            f"model = nn.Sequential(nn.Linear(IN_FEATURES, WIDTH{'' if cfg.bias else ', bias=False'}), "
            "*[Block(WIDTH) for _ in range(DEPTH)], nn.Linear(WIDTH, CLASSES))",
            *(ini.torch_helper.rstrip("\n").split("\n") if ini.torch_helper else []), "", *init, "",
            *_train_step(cfg, "IN_FEATURES"),
        ]
        return _finish(parts)
    # Keras 3, functional
    kernel, comments, helper = _keras_kernel(cfg)
    bias = _keras_bias3(cfg)
    uses_fan_in = "fan_in)" in kernel or (bias is not None and "fan_in)" in bias)

    def dense(kernel_expr: str, bias_expr: str | None, fan: str) -> str:
        args = [f"kernel_initializer={kernel_expr}"]
        args += [f"bias_initializer={bias_expr}"] if bias_expr is not None else ["use_bias=False"]
        text = f"keras.layers.Dense(WIDTH, {', '.join(args)})"
        return text.replace("fan_in)", f"{fan})") if uses_fan_in else text

    branch_bias = None if scale.fixup else bias
    second = ('"zeros"', None if scale.fixup else bias) if scale.zero_last else (kernel, branch_bias)
    loop = ["for _ in range(DEPTH):"]
    loop += ["    " + c for c in comments]
    first_in = "Shift()(x)" if scale.fixup else "x"
    loop.append(f"    h = {dense(kernel, branch_bias, 'WIDTH')}({first_in})")
    if cfg.batchnorm:
        loop.append("    h = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9)(h)  # PyTorch's defaults")
    if scale.fixup:
        loop.append("    h = Shift()(h)")
    loop.append(f"    a = {act.keras_code}(h)" + (f"  # {act.keras_note}" if act.keras_note else ""))
    if scale.fixup:
        loop.append("    a = Shift()(a)")
    loop.append(f"    f = {dense(second[0], second[1], 'WIDTH')}(a)" + ("  # Fixup: the last layer zero"
                                                                     if scale.zero_last else ""))
    if scale.fixup:
        loop.append("    f = Shift()(Scale(1.0)(f))  # Fixup's multiplier (from 1) and bias")
    elif scale.learnable:
        loop.append(f"    f = Scale({_num(scale.alpha(cfg.depth))})(f)  # {scale.torch_note}")
    elif scale.alpha(cfg.depth) != 1.0:
        loop.append(f"    f = Scale(DEPTH ** -0.5, learnable=False)(f)  # {scale.torch_note}")
    loop.append("    x = keras.layers.Add()([x, f])")
    parts = [
        _arch_title(cfg, "Keras 3"), *share_comment(cfg, share_url), "import math", *_KERAS_HEADER, "",
        f"keras.utils.set_random_seed({cfg.seed})", "", *shape, *_consts(cfg, kernel, bias or ""),
        *(_KERAS_SCALAR_LAYERS.rstrip("\n").split("\n")), *(helper.rstrip("\n").split("\n") if helper else []), "",
        "inputs = keras.Input(shape=(IN_FEATURES,))",
        f"x = {dense(kernel, bias, 'IN_FEATURES')}(inputs)  # the input projection",
        *loop,
        "outputs = keras.layers.Dense(CLASSES)(x)  # the output layer (logits), Keras' default init",
        "model = keras.Model(inputs, outputs)",
    ]
    if scale.fixup:
        parts += ["# Fixup: each branch's first layer × depth^(-1/2)",
                  "for layer in [l for l in model.layers if isinstance(l, keras.layers.Dense)][1:-1:2]:",
                  "    layer.kernel.assign(layer.kernel * DEPTH ** -0.5)"]
    parts += _keras_compile(cfg, "x_train")
    return _finish(parts)


def cnn_code(cfg: RunConfig, framework: str, share_url: str | None = None) -> str:
    """The CNN (`core.models.cnn`) as a runnable script: PyTorch (NCHW), or Keras 3 (NHWC)."""
    act = ACTIVATIONS[cfg.activation]
    ds = DATASETS[cfg.dataset]
    c0, hgt, wid = ds.image_shape
    shape = [f"IN_CHANNELS, HEIGHT, WIDTH_PX = {c0}, {hgt}, {wid}  # {ds.input_note or ds.label}",
             f"CHANNELS = {cfg.width}", f"DEPTH = {cfg.depth}  # 3×3 convolutions", f"CLASSES = {cfg.classes}"]
    ini = INITIALIZERS[cfg.init]
    if framework == "pytorch":
        bias = "" if cfg.bias else ", bias=False"
        block = [f"nn.Conv2d(c, CHANNELS, 3, padding=1{bias})"] + (["nn.BatchNorm2d(CHANNELS)"] if cfg.batchnorm else [])
        block.append(act.module_code)
        helper = ini.conv_torch_helper if ini.conv_torch_code is not None else ini.torch_helper
        body = _torch_init_lines(cfg, conv=True)
        parts = [
            _arch_title(cfg, "PyTorch"), *share_comment(cfg, share_url), "import math", "", "import torch",
            "from torch import nn", "", f"torch.manual_seed({cfg.seed})", "", *shape, *_consts(cfg), "",
            "layers, c = [], IN_CHANNELS",
            "for _ in range(DEPTH):",
            f"    layers += [{', '.join(block)}]",
            "    c = CHANNELS",
            "model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(CHANNELS, CLASSES))",
            *(helper.rstrip("\n").split("\n") if helper else []), "",
            *ini.torch_note,
            "convs = [m for m in model if isinstance(m, nn.Conv2d)]  # the output Linear keeps PyTorch's default",
            "with torch.no_grad():",
            "    for m in convs:  # fan_in = in_channels × 9",
            *["        " + line for line in (body or ["pass"])],
            "",
            *_train_step(cfg, "IN_CHANNELS, HEIGHT, WIDTH_PX"),
        ]
        return _finish(parts)
    kernel, comments, helper = _keras_kernel(cfg, conv=True)
    bias = _keras_bias3(cfg)
    uses_fan_in = "fan_in)" in kernel or (bias is not None and "fan_in)" in bias)
    args = [f"kernel_initializer={kernel}"] + ([f"bias_initializer={bias}"] if bias is not None else ["use_bias=False"])
    conv = f"keras.layers.Conv2D(CHANNELS, 3, padding=\"same\", {', '.join(args)})"
    loop = ["for _ in range(DEPTH):", *["    " + c for c in comments], f"    model.add({conv})"]
    if uses_fan_in:
        loop.append("    fan_in = 9 * CHANNELS")
    if cfg.batchnorm:
        loop.append("    model.add(keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9))  # PyTorch's defaults")
    loop.append(f"    model.add({act.keras_code})" + (f"  # {act.keras_note}" if act.keras_note else ""))
    parts = [
        _arch_title(cfg, "Keras 3"), *share_comment(cfg, share_url), "import math", "", "import numpy as np",
        *_KERAS_HEADER, "", f"keras.utils.set_random_seed({cfg.seed})", "", *shape, *_consts(cfg, kernel, bias or ""),
        *(helper.rstrip("\n").split("\n") if helper else []), "",
        "model = keras.Sequential([keras.Input(shape=(HEIGHT, WIDTH_PX, IN_CHANNELS))])  # channels last",
        *(["fan_in = 9 * IN_CHANNELS  # inputs of the next convolution's unit"] if uses_fan_in else []),
        *loop,
        "model.add(keras.layers.GlobalAveragePooling2D())",
        "model.add(keras.layers.Dense(CLASSES))  # the output layer (logits), Keras' default init",
    ]
    parts += _keras_compile(cfg, "x_train.reshape(-1, HEIGHT, WIDTH_PX, IN_CHANNELS)")
    code = "\n".join(parts) + "\n"
    return code if "np." in code.replace("import numpy as np", "") else _finish(parts).replace("import numpy as np\n", "")
