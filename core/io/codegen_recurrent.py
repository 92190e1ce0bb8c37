"""The code of a recurrent net (rnn, lstm, gru) for people to copy: PyTorch and Keras 3.

The scripts use the frameworks' own layers (torch.nn.RNN/LSTM/GRU, keras.layers.SimpleRNN/LSTM/GRU)
and initialize them as `core.models.recurrent` does: the input kernels by `init` at its published
scale, every H×H gate block of the recurrent kernel by `recurrent_init` times σ_w (for orthogonal, σ_w
is the spectral radius), the biases by `init`'s bias scheme (the second bias torch keeps, b_hh, at 0),
an LSTM's forget-gate bias at `forget_bias`. The initializer lines come from the registry entries
(`Initializer.torch_code`, `Initializer.keras_kernel`); the cell's facts from the model class
(`torch_module`, `keras_layer`, `gates`, `forget_block`).

The Keras script is Keras 3 on any backend (the tests run it with KERAS_BACKEND=torch). Keras
applies a recurrent initializer to the whole (H, gates·H) kernel at once, which for orthogonal is a
semi-orthogonal matrix, not one orthogonal block per gate: the script's `PerGate` draws each block.
"""
from __future__ import annotations

from core.registry import ACTIVATIONS, DATASETS, INITIALIZERS, OPTIMIZERS, RECURRENT_INITS, ZERO_BIAS

__all__ = ["recurrent_code", "pytorch_code", "keras_code"]


def _num(x: float) -> str:
    return repr(float(x))


def _net(cfg):
    """The model class's facts (gates, names of the framework layers): read from a built network."""
    return cfg.architecture.build(cfg)


def _title(cfg, framework: str, net) -> str:
    rec = RECURRENT_INITS[cfg.recurrent_init]
    forget = f", forget-gate bias {cfg.forget_bias:g}" if net.forget_block is not None else ""
    return (f"# {framework}: {cfg.architecture.label}, {cfg.depth} stacked layer{'s' if cfg.depth > 1 else ''} of "
            f"{cfg.width} units over {cfg.seq_len} time steps; W_ih {INITIALIZERS[cfg.init].label}, "
            f"W_hh {rec.label} × σ_w = {cfg.sigma_w:g}{forget}.")


def _consts(cfg, net) -> list[str]:
    ds = DATASETS[cfg.dataset]
    out = [f"IN_FEATURES = {cfg.features}  # per time step: {ds.input_note or ds.label}",
           f"SEQ_LEN = {cfg.seq_len}  # time steps", f"HIDDEN = {cfg.width}", f"LAYERS = {cfg.depth}",
           f"CLASSES = {cfg.classes}", f"SIGMA_W = {_num(cfg.sigma_w)}  # scales W_hh (orthogonal: its spectral radius)"]
    if INITIALIZERS[cfg.init].uses_sigma_b and cfg.bias and cfg.sigma_b != 0.0:
        out.append(f"SIGMA_B = {_num(cfg.sigma_b)}")
    if net.forget_block is not None and cfg.bias:
        out.append(f"FORGET_BIAS = {_num(cfg.forget_bias)}")
    return out


def _torch_lines(ini, weight: str, fan_in: str, sigma_w: bool) -> list[str]:
    """An entry's torch.nn.init lines for the tensor `weight` (σ_w applied when `sigma_w`)."""
    scaled = sigma_w and ini.sigma_w == "multiplier"
    if not ini.torch_code:  # nn.Linear's own default, drawn explicitly: an RNN module draws U(±1/√HIDDEN)
        lines = [f"nn.init.kaiming_uniform_({weight}, a=math.sqrt(5))  # U(±1/√fan_in)"]
    else:
        lines = [line.replace("{g}", ", gain=SIGMA_W" if scaled and ini.torch_gain else "") for line in ini.torch_code]
    if scaled and not (ini.torch_gain and ini.torch_code):
        lines.append(f"{weight}.mul_(SIGMA_W)")
    text = [line.replace("m.weight", weight).replace("m.in_features", fan_in) for line in lines]
    if not sigma_w:
        text = [line.replace("SIGMA_W", "1.0") for line in text]  # the input weights: the scheme as published
    return text


def _torch_bias(ini, cfg, bias: str, fan_in: str) -> list[str]:
    b = ini.bias
    if b.uses_sigma_b and cfg.sigma_b == 0.0:
        b = ZERO_BIAS
    if b.torch_code is None:  # nn.Linear's default: U(±1/√fan_in)
        return [f"nn.init.uniform_({bias}, -1 / math.sqrt({fan_in}), 1 / math.sqrt({fan_in}))"]
    return [b.torch_code.replace("m.bias", bias)]


def pytorch_code(cfg, share_url: str | None = None) -> str:
    """A runnable PyTorch script: `model` (torch.nn.RNN/LSTM/GRU and a Linear on h_T), initialized as the lab
    does, an optimizer and one training step on a random batch of sequences."""
    from core.io.codegen import _finish, share_comment

    net = _net(cfg)
    ini, rec = INITIALIZERS[cfg.init], RECURRENT_INITS[cfg.recurrent_init]
    act = ACTIVATIONS[cfg.activation]
    module_args = ["IN_FEATURES", "HIDDEN", "num_layers=LAYERS", "batch_first=True"]
    if net.gates == 1:
        module_args.append(f'nonlinearity="{act.torch_name}"')
    if not cfg.bias:
        module_args.append("bias=False")
    init = ["with torch.no_grad():", "    for l in range(LAYERS):",
            "        fan_in = IN_FEATURES if l == 0 else HIDDEN",
            '        w_ih = getattr(model.rnn, f"weight_ih_l{l}")  # (gates·HIDDEN, fan_in), gates in torch\'s order',
            *["        " + line for line in _torch_lines(ini, "w_ih", "fan_in", sigma_w=False)],
            '        for block in getattr(model.rnn, f"weight_hh_l{l}").split(HIDDEN):  # each gate\'s H×H block',
            *["            " + line for line in _torch_lines(rec, "block", "HIDDEN", sigma_w=True)]]
    if cfg.bias:
        init += ['        b_ih = getattr(model.rnn, f"bias_ih_l{l}")',
                 *["        " + line for line in _torch_bias(ini, cfg, "b_ih", "fan_in")],
                 '        nn.init.zeros_(getattr(model.rnn, f"bias_hh_l{l}"))  # the lab has one bias (the GRU\'s '
                 'b_hn from 0)']
        if net.forget_block is not None:
            fb = net.forget_block
            init.append(f"        b_ih[{fb} * HIDDEN:{fb + 1} * HIDDEN] = FORGET_BIAS  # the forget gate: remember at first")
    parts = [
        _title(cfg, "PyTorch", net), *share_comment(cfg, share_url), "import math", "", "import torch",
        "from torch import nn", "", f"torch.manual_seed({cfg.seed})", "", *_consts(cfg, net), "", "",
        "class Net(nn.Module):",
        "    def __init__(self):",
        "        super().__init__()",
        f"        self.rnn = {net.torch_module}({', '.join(module_args)})",
        "        self.out = nn.Linear(HIDDEN, CLASSES)  # reads h_T of the top layer; PyTorch's default init",
        "",
        "    def forward(self, x):  # x: (batch, SEQ_LEN, IN_FEATURES)",
        "        h, _ = self.rnn(x)",
        "        return self.out(h[:, -1])",
        "", "", "model = Net()", *init, "",
        f"optimizer = {OPTIMIZERS[cfg.optimizer].code.format(lr=_num(cfg.lr))}", "",
        f"# One training step on a random batch of {cfg.batch_size} sequences (use your own data here).",
        f"x = torch.randn({cfg.batch_size}, SEQ_LEN, IN_FEATURES)",
        f"y = torch.randint(0, CLASSES, ({cfg.batch_size},))",
        "loss = nn.functional.cross_entropy(model(x), y)", "optimizer.zero_grad()", "loss.backward()",
        "optimizer.step()", 'print(f"loss before the step: {loss.item():.4f}")',
    ]
    return _finish(parts)


_PER_GATE = '''
class PerGate(keras.initializers.Initializer):
    """Draw each gate's HIDDEN × HIDDEN block of a recurrent kernel with a fresh `make()` initializer
    (as PyTorch's lab initializes W_hh's blocks), instead of the whole (HIDDEN, gates·HIDDEN) kernel."""

    def __init__(self, make, gates):
        self.make, self.gates = make, gates

    def __call__(self, shape, dtype=None):
        rows, cols = shape
        blocks = [self.make()((rows, cols // self.gates), dtype=dtype) for _ in range(self.gates)]
        return keras.ops.concatenate(blocks, axis=1)
'''


def keras_code(cfg, share_url: str | None = None) -> str:
    """The same network in Keras 3: keras.layers.SimpleRNN/LSTM/GRU stacked, then Dense(CLASSES) on h_T."""
    from core.io.codegen import _finish, share_comment

    net = _net(cfg)
    ini, rec = INITIALIZERS[cfg.init], RECURRENT_INITS[cfg.recurrent_init]
    act = ACTIVATIONS[cfg.activation]
    kernel, k_notes = ini.keras_kernel(1.0)
    kernel = kernel.replace("SIGMA_W", "1.0")
    recurrent, r_notes = rec.keras_kernel(cfg.sigma_w)
    if "SIGMA_W" not in recurrent and rec.uses_sigma_w and cfg.sigma_w != 1.0:
        recurrent = rec.keras_kernel(1.0)[0]
        scaled = True  # a named scheme without a gain: scale its draws
    else:
        scaled = False
    recurrent = recurrent.replace("fan_in", "HIDDEN")
    bias = ini.bias
    if bias.uses_sigma_b and cfg.sigma_b == 0.0:
        bias = ZERO_BIAS
    args = ["HIDDEN", "return_sequences=i < LAYERS - 1,  # the top layer hands on h_T only"]
    if net.gates == 1:
        args.append(f'activation="{act.keras_name}",')
    args.append(f"kernel_initializer={kernel},")
    make = f"lambda: {recurrent}" if not scaled else f"lambda: Scaled({recurrent}, SIGMA_W)"
    args.append(f"recurrent_initializer=PerGate({make}, {net.gates}),")
    if cfg.bias:
        args.append(f"bias_initializer={bias.keras_code},")
    else:
        args.append("use_bias=False,")
    if net.forget_block is not None:
        args.append("unit_forget_bias=False,  # the forget gate's bias is set below")
    if net.recurrent_bias:
        args.append("reset_after=True,  # r ⊙ (W_hn h + b_hn), as PyTorch's GRU")
    comments = [c for c in (*k_notes, *r_notes) if c]
    helpers = _PER_GATE.rstrip("\n").split("\n")
    if scaled:
        helpers += ["", "", "class Scaled(keras.initializers.Initializer):",
                    "    def __init__(self, inner, factor):",
                    "        self.inner, self.factor = inner, factor", "",
                    "    def __call__(self, shape, dtype=None):",
                    "        return self.inner(shape, dtype=dtype) * self.factor  # σ_w multiplies the scheme's std"]
    parts = [
        _title(cfg, "Keras 3", net), *share_comment(cfg, share_url), "import math", "import os", "",
        'os.environ.setdefault("KERAS_BACKEND", "torch")  # any backend works; this one needs only PyTorch',
        "import keras  # noqa: E402", "", f"keras.utils.set_random_seed({cfg.seed})", "", *_consts(cfg, net), "",
        *helpers, "", "",
        "model = keras.Sequential([keras.Input(shape=(SEQ_LEN, IN_FEATURES))])",
        "fan_in = IN_FEATURES  # inputs of the next layer's kernel",
        "for i in range(LAYERS):",
        *["    " + c for c in comments],
        f"    model.add(keras.layers.{net.keras_layer}(",
        *[f"        {a}" if a.endswith(",") or "#" in a else f"        {a}," for a in args],
        "    ))",
        "    fan_in = HIDDEN",
        "model.add(keras.layers.Dense(CLASSES))  # the output layer (logits) on h_T, Keras' default init",
    ]
    if net.forget_block is not None and cfg.bias:
        fb = net.forget_block
        parts += ["for layer in model.layers[:-1]:  # the forget gate: remember at first",
                  "    b = keras.ops.convert_to_numpy(layer.cell.bias)",
                  f"    b[{fb} * HIDDEN:{fb + 1} * HIDDEN] = FORGET_BIAS",
                  "    layer.cell.bias.assign(b)"]
    if net.recurrent_bias and cfg.bias:
        parts += ["for layer in model.layers[:-1]:  # the recurrent bias (row 1) from 0, as in the lab",
                  "    b = keras.ops.convert_to_numpy(layer.cell.bias)",
                  "    b[1] = 0.0",
                  "    layer.cell.bias.assign(b)"]
    opt = OPTIMIZERS[cfg.optimizer]
    parts += [
        "", "model.compile(",
        f"    optimizer={opt.keras_code.format(lr=_num(cfg.lr))},"
        + (f"  # {opt.keras_note}" if opt.keras_note else ""),
        "    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),",
        '    metrics=["accuracy"],', ")", "model.summary()",
        f"# Train with: model.fit(x_train, y_train, batch_size={cfg.batch_size}, epochs=...)"
        "  # x_train: (examples, SEQ_LEN, IN_FEATURES)",
    ]
    return _finish(parts)


def recurrent_code(cfg, framework: str, share_url: str | None = None) -> str:
    """The arch entry's code writer (`Architecture.code`): "pytorch" or "keras"."""
    return (pytorch_code if framework == "pytorch" else keras_code)(cfg, share_url)
