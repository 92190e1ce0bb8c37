"""Recurrent networks through time: a vanilla RNN, an LSTM and a GRU, hand-unrolled.

`depth` stacked layers of `width` units read a sequence of `seq_len` steps; the
output Linear reads the top layer's last state h_T. Each step of each layer is
written out (no cuDNN-style fused kernel), so every h_t is a tensor in the graph
and a measuring strategy (`core.models.Watcher`) sees it the moment it exists.

A block is (layer, time step), numbered layer-major: block b is layer b // T,
step b % T (0-based; `block_coordinates`). For each block the watcher gets

* vanilla RNN: z = h = the pre-activation W_ih x_t + W_hh h_{t-1} + b, a = h_t = φ(z);
* LSTM: z = the four gates' pre-activations, h = the cell state c_t (the input of
  the tanh that makes h_t), a = h_t = o_t ⊙ tanh(c_t);
* GRU: z = the three gates' pre-activations, h = the candidate's pre-activation
  W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn), a = h_t.

So `grad_act_var` is Var(∂L/∂h_t), the gradient through time; `grad_preact_var`
is Var(∂L/∂c_t) for an LSTM (its memory's gradient). For the gated cells a is
not φ(h), and the model's `activation` says so: its `slope_from_output` is None
(a measuring strategy then asks autograd for ∂L/∂h instead of deriving it).

The block's weight is the layer's hidden-to-hidden matrix W_hh (shared by its
time steps). The cells follow torch.nn.RNN/LSTM/GRU exactly (gate order i, f, g, o
and r, z, n; the GRU's b_hn inside r ⊙ (...)), which the tests use as an oracle.

Initialization: the input weights W_ih by `init` at its published scale (σ_b for
the biases where the scheme uses it); every H×H gate block of W_hh by
`recurrent_init`, times σ_w (for orthogonal, σ_w is then W_hh's spectral radius);
an LSTM's forget-gate bias starts at `forget_bias`.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import nn

from core.measure.reductions import preact_statistics
from core.registry import ACTIVATIONS, INITIALIZERS, RECURRENT_INITS

Tensor = torch.Tensor


class RecurrentNet(nn.Module):
    """`depth` stacked recurrent layers over the time steps, then Linear(classes) on the top layer's h_T.

    Subclasses set `gates` (how many H-blocks W_ih and W_hh have) and `cell`
    (one time step of one layer). Input x: (batch, T, features)."""

    gates = 1
    gated = False  # the state is a mix of gates, not φ(h): a measuring strategy can't derive ∂L/∂h from a
    recurrent_bias = False  # a separate bias inside the recurrent term (the GRU's b_hn)
    chained = False  # a block's weight layer (W_hh) reads h_{t-1}, which the layer above reads too
    torch_module = "nn.RNN"  # the framework layers of the same cell (core.io.codegen_recurrent)
    keras_layer = "SimpleRNN"
    forget_block = None  # which H-block of the gates is the forget gate (its bias starts at forget_bias)
    candidate_block = 0  # which H-block makes the candidate state (its W_hh block: `spectral_radius`)

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        H, G = cfg.width, self.gates
        self.width, self.depth, self.time_steps = H, cfg.depth, cfg.seq_len
        sizes = (cfg.features, *(H,) * cfg.depth)
        # W_ih (+ b): the input projection of every time step at once
        self.linears = nn.ModuleList(nn.Linear(a, G * H, bias=cfg.bias) for a in sizes[:-1])
        # W_hh: the hidden-to-hidden matrices, the blocks' weights
        self.recurrent = nn.ModuleList(nn.Linear(H, G * H, bias=self.recurrent_bias and cfg.bias)
                                       for _ in range(cfg.depth))
        self.out = nn.Linear(H, cfg.classes)
        phi = ACTIVATIONS[cfg.activation]
        # For gated cells a = h_t is not φ(h): no slope from the output (see the module docstring).
        self.activation = dataclasses.replace(phi, slope_from_output=None) if self.gated else phi
        self.phi = phi.fn
        gate = cfg.architecture.gate_activation
        self.gate_activation = ACTIVATIONS[gate] if gate is not None else None  # its flat region: gate saturation
        self._gate_flat: list = []  # per block of a watched forward: its sigmoid gates' pre-activations

    # -- what the measuring code sees --------------------------------------------------------------
    def block_weights(self) -> list[Tensor]:
        """W_hh of each block: a layer's matrix once per time step (the same tensor)."""
        return [rec.weight for rec in self.recurrent for _ in range(self.time_steps)]

    def block_units(self) -> list[int]:
        """Each block's units: a layer's H (W_hh has a row per gate unit, gates × H)."""
        return [self.width] * (self.depth * self.time_steps)

    def block_coordinates(self) -> np.ndarray:
        """(blocks, 2) int64: each block's layer and time step, 1-based (the table's `layer` and `time`)."""
        T, L = self.time_steps, self.depth
        return np.stack([np.repeat(np.arange(1, L + 1), T), np.tile(np.arange(1, T + 1), L)], axis=1)

    def probe_parameter(self) -> Tensor:
        """The first layer's input bias (or weight): every overflow of the backward pass reaches it."""
        first = self.linears[0]
        return first.bias if first.bias is not None else first.weight

    def gate_blocks(self, layer: int) -> list[Tensor]:
        """W_hh of `layer` (0-based) as its H×H gate blocks."""
        return list(self.recurrent[layer].weight.detach().split(self.width, dim=0))

    @torch.no_grad()
    def spectral_radius(self) -> np.ndarray:
        """Per layer, the largest |eigenvalue| of W_hh's candidate block (the vanilla RNN's whole W_hh; an LSTM's
        g block, a GRU's n block: the one a state passes through as in a vanilla RNN). One 128 × 128
        eigenvalue problem takes ~3 ms here, so one block, in float32, per record."""
        out = np.empty(self.depth)
        for l in range(self.depth):
            block = self.gate_blocks(l)[self.candidate_block]
            out[l] = float(torch.linalg.eigvals(block).abs().max()) if torch.isfinite(block).all() else math.nan
        return out

    # -- the forward pass --------------------------------------------------------------------------
    def _zeros(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[1], self.width)

    def forward(self, x: Tensor, watch=None, keep: bool = False):
        """Logits from x (batch, T, features); `watch` sees every block's z, h, a,
        then the logits. With `keep`, also the lists of every block's h and a."""
        kept = ([], []) if keep else None
        seq = x.transpose(0, 1)  # time-major: each step's rows are one contiguous block
        self._gate_flat = []
        b = 0
        for l in range(self.depth):
            # every step's input term in one matmul, then one view per step (unbind: one backward op, not T)
            xp = self.linears[l](seq).unbind(0)
            w_hh = self.recurrent[l].weight.T
            b_hh = self.recurrent[l].bias
            state = self.initial_state(seq)
            outs = []
            for t in range(self.time_steps):
                z, h, a, state = self.cell(xp[t], w_hh, b_hh, state, t, watch, b)
                if watch is not None:
                    watch.forward(b, z, h, a)
                if kept is not None:
                    kept[0].append(h)
                    kept[1].append(a)
                outs.append(a)
                b += 1
            seq = torch.stack(outs) if l + 1 < self.depth else None
        logits = self.out(outs[-1])
        if watch is not None:
            watch.output(logits)
        return (logits, *kept) if keep else logits

    def initial_state(self, seq: Tensor):
        return self._zeros(seq)

    def _gates_seen(self, block: int, pre: Tensor) -> None:
        """Keep the sigmoid gates' pre-activations (batch × gate units, dense) of a watched forward: their flat
        fractions are counted together, in one pass, after the step (`extra_statistics`)."""
        self._gate_flat.append(pre.detach() if pre.is_contiguous() else pre.detach().contiguous())

    def extra_statistics(self, fused: bool | None = None) -> dict[str, np.ndarray]:
        """The architecture's own columns for the last watched forward, one value per block:
        `gate_saturation` (gated cells: the fraction of sigmoid-gate entries in its flat region) and
        `spectral_radius` (the block's layer's W_hh). `fused` as the measuring strategy's."""
        out = {"spectral_radius": np.repeat(self.spectral_radius(), self.time_steps)}
        if self.gate_activation is not None and len(self._gate_flat) == self.depth * self.time_steps:
            out["gate_saturation"] = preact_statistics(self._gate_flat, self.gate_activation, None, fused)[2]
        self._gate_flat = []
        return out

    def extra_repr(self) -> str:
        c = self.cfg
        return (f"depth={c.depth}, width={c.width}, seq_len={c.seq_len}, activation={c.activation}, "
                f"init={c.init}, recurrent_init={c.recurrent_init}, sigma_w={c.sigma_w}")


class VanillaRNN(RecurrentNet):
    """h_t = φ(W_ih x_t + b + W_hh h_{t-1}) (Elman); tanh or ReLU as the activation setting says."""

    def cell(self, xp, w_hh, b_hh, h, t, watch, block):
        z = xp if t == 0 else xp + h @ w_hh  # h_0 = 0
        a = self.phi(z)
        return z, z, a, a


class LSTM(RecurrentNet):
    """Hochreiter & Schmidhuber (1997) with a forget gate (Gers et al., 2000), as torch.nn.LSTM:
    i, f, g, o = σ(·), σ(·), φ(·), σ(·) of W_ih x_t + b + W_hh h_{t-1};
    c_t = f ⊙ c_{t-1} + i ⊙ g; h_t = o ⊙ φ(c_t)."""

    gates = 4
    gated = True
    forget_block = 1
    candidate_block = 2  # i, f, g, o
    torch_module, keras_layer = "nn.LSTM", "LSTM"

    def initial_state(self, seq):
        return self._zeros(seq), self._zeros(seq)

    def cell(self, xp, w_hh, b_hh, state, t, watch, block):
        h, c = state
        z = xp if t == 0 else xp + h @ w_hh
        H = self.width
        if watch is not None:
            self._gates_seen(block, torch.cat([z[:, :2 * H], z[:, 3 * H:]], dim=1))  # i, f and o; g is the candidate
        i, f, g, o = z.chunk(4, dim=1)
        sig = torch.sigmoid
        c = sig(i) * self.phi(g) if t == 0 else sig(f) * c + sig(i) * self.phi(g)
        a = sig(o) * self.phi(c)
        return z, c, a, (a, c)


class GRU(RecurrentNet):
    """Cho et al. (2014), as torch.nn.GRU: r, u = σ(·) of W_i x_t + b_i + W_h h_{t-1} + b_h;
    n = φ(W_in x_t + b_in + r ⊙ (W_hn h_{t-1} + b_hn)); h_t = (1 - u) ⊙ n + u ⊙ h_{t-1}."""

    gates = 3
    gated = True
    recurrent_bias = True
    candidate_block = 2  # r, u, n
    torch_module, keras_layer = "nn.GRU", "GRU"

    def cell(self, xp, w_hh, b_hh, h, t, watch, block):
        H = self.width
        if t == 0:  # h_0 = 0: the recurrent term is its bias alone
            gh = b_hh
        else:
            gh = h @ w_hh if b_hh is None else torch.addmm(b_hh, h, w_hh)
        z = xp[:, :2 * H] if gh is None else xp[:, :2 * H] + gh[..., :2 * H]  # r's and u's pre-activations
        if watch is not None:
            self._gates_seen(block, z)
        ru = torch.sigmoid(z)
        r, u = ru[:, :H], ru[:, H:]
        n_pre = xp[:, 2 * H:] if gh is None else xp[:, 2 * H:] + r * gh[..., 2 * H:]
        n = self.phi(n_pre)
        a = (1 - u) * n if t == 0 else n + u * (h - n)
        return z, n_pre, a, a


def _draw(net: RecurrentNet, cfg, gen: torch.Generator) -> None:
    """Initialize in place (see the module docstring)."""
    H = net.width
    ini = INITIALIZERS[cfg.init]
    rec = RECURRENT_INITS[cfg.recurrent_init]
    for linear, recurrent in zip(net.linears, net.recurrent):
        ini.weight(linear.weight, 1.0, gen)  # the input weights at the scheme's published scale: σ_w is W_hh's
        if linear.bias is not None:
            ini.bias.draw(linear.bias, linear.in_features, cfg.sigma_b, gen)
        for block in recurrent.weight.split(H, dim=0):
            rec.weight(block, cfg.sigma_w, gen)  # each gate's H×H block
        if recurrent.bias is not None:
            nn.init.zeros_(recurrent.bias)
        fb = net.forget_block
        if fb is not None and linear.bias is not None:
            linear.bias[fb * H:(fb + 1) * H].fill_(cfg.forget_bias)


def build(kind: type[RecurrentNet], cfg, calibration: Tensor | None = None) -> RecurrentNet:
    """Build and initialize `kind` for `cfg`, deterministically from cfg.seed (the output layer keeps
    nn.Linear's default, as in the MLP)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    net = kind(cfg)
    with torch.no_grad():
        _draw(net, cfg, gen)
        out_gen = torch.Generator().manual_seed(cfg.seed + 7919)
        nn.init.kaiming_uniform_(net.out.weight, a=math.sqrt(5), generator=out_gen)
        bound = 1 / math.sqrt(net.out.in_features)
        nn.init.uniform_(net.out.bias, -bound, bound, generator=out_gen)
    return net


def build_rnn(cfg, calibration=None) -> VanillaRNN:
    return build(VanillaRNN, cfg, calibration)


def build_lstm(cfg, calibration=None) -> LSTM:
    return build(LSTM, cfg, calibration)


def build_gru(cfg, calibration=None) -> GRU:
    return build(GRU, cfg, calibration)


__all__ = ["RecurrentNet", "VanillaRNN", "LSTM", "GRU", "build", "build_rnn", "build_lstm", "build_gru"]
