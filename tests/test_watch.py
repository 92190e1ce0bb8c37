"""watch(model) against independent oracles, on user-style models the tests define.

Oracles: for every step, a hand-written pass of the same model (F.linear,
F.conv2d, the LSTM's gate equations written out) gives each measured module's
output (in float64, from float64 copies of the weights) and, through
`torch.autograd.grad` on its float32 twin, ∂L/∂output; weights, weight
gradients and updates are copied before and after `opt.step()`, and every
statistic is numpy's float64 variance over all entries.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core import watch
from core.registry import ACTIVATIONS

RTOL = 2e-5  # float32 module vs float64 oracle


def var(t) -> float:
    return float(np.var(torch.as_tensor(t).detach().to(torch.float64).numpy()))


def pooled_var(ts) -> float:
    return float(np.var(np.concatenate([t.detach().to(torch.float64).reshape(-1).numpy() for t in ts])))


# -- user-style models and their hand-written passes ------------------------------------------------
# Each `manual(P, x, y)` takes a dict of parameters (name -> tensor) and returns the loss and, for
# every measured module's name, the list of its outputs in the order they were computed.

class ResidualMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(6, 12)
        self.block = nn.Sequential(nn.Linear(12, 12), nn.Tanh(), nn.Linear(12, 12))
        self.act = nn.ReLU()
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        h = self.inp(x)
        return self.head(self.act(h + self.block(h)))  # a skip around the block


def residual_manual(P, x, y):
    h = F.linear(x, P["inp.weight"], P["inp.bias"])
    b0 = F.linear(h, P["block.0.weight"], P["block.0.bias"])
    b2 = F.linear(torch.tanh(b0), P["block.2.weight"], P["block.2.bias"])
    out = F.linear(torch.clamp(h + b2, min=0), P["head.weight"], P["head.bias"])
    return F.cross_entropy(out, y), {"inp": [h], "block.0": [b0], "block.2": [b2], "head": [out]}


class SharedLayer(nn.Module):
    """The same Linear applied twice in one forward pass."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(5, 10)
        self.shared = nn.Linear(10, 10)
        self.head = nn.Linear(10, 2)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        h = torch.tanh(self.shared(h))
        h = torch.tanh(self.shared(h))
        return self.head(h)


def shared_manual(P, x, y):
    a = F.linear(x, P["inp.weight"], P["inp.bias"])
    s1 = F.linear(torch.tanh(a), P["shared.weight"], P["shared.bias"])
    s2 = F.linear(torch.tanh(s1), P["shared.weight"], P["shared.bias"])
    out = F.linear(torch.tanh(s2), P["head.weight"], P["head.bias"])
    return F.cross_entropy(out, y), {"inp": [a], "shared": [s1, s2], "head": [out]}


class Frozen(nn.Module):
    """A frozen first layer (as a pretrained stem) and a frozen layer between trained ones."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(5, 8)
        self.mid = nn.Linear(8, 8)
        self.top = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)
        self.act = nn.Sigmoid()
        for p in [*self.stem.parameters(), *self.top.parameters()]:
            p.requires_grad_(False)

    def forward(self, x):
        h = self.act(self.stem(x))
        h = self.act(self.mid(h))
        return self.head(self.act(self.top(h)))


def frozen_manual(P, x, y):
    s = F.linear(x, P["stem.weight"], P["stem.bias"])
    m = F.linear(torch.sigmoid(s), P["mid.weight"], P["mid.bias"])
    t = F.linear(torch.sigmoid(m), P["top.weight"], P["top.bias"])
    out = F.linear(torch.sigmoid(t), P["head.weight"], P["head.bias"])
    return F.cross_entropy(out, y), {"stem": [s], "mid": [m], "top": [t], "head": [out]}


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 7, batch_first=True)
        self.head = nn.Linear(7, 3)

    def forward(self, x):
        seq, _ = self.lstm(x)
        return self.head(seq[:, -1])


def recurrent_manual(P, x, y):
    B, T, _ = x.shape
    h = x.new_zeros(B, 7)
    c = x.new_zeros(B, 7)
    hs = []
    for t in range(T):  # PyTorch's LSTM equations, gates in the order i, f, g, o
        z = x[:, t] @ P["lstm.weight_ih_l0"].T + P["lstm.bias_ih_l0"] + h @ P["lstm.weight_hh_l0"].T + P["lstm.bias_hh_l0"]
        i, f, g, o = z.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
    seq = torch.stack(hs, dim=1)
    out = F.linear(seq[:, -1], P["head.weight"], P["head.bias"])
    return F.cross_entropy(out, y), {"lstm": [seq], "head": [out]}


class ResCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.head = nn.Linear(4 * 6 * 6, 2)

    def forward(self, x):
        h = self.relu(self.stem(x))
        h = h + self.conv(h)
        return self.head(h.flatten(1))


def rescnn_manual(P, x, y):
    s = F.conv2d(x, P["stem.weight"], P["stem.bias"], padding=1)
    h = torch.clamp(s, min=0)
    c = F.conv2d(h, P["conv.weight"], P["conv.bias"], padding=1)
    out = F.linear((h + c).flatten(1), P["head.weight"], P["head.bias"])
    return F.cross_entropy(out, y), {"stem": [s], "conv": [c], "head": [out]}


def batch(model_name: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shapes = {"residual": (16, 6), "shared": (16, 5), "frozen": (16, 5), "recurrent": (8, 5, 4), "rescnn": (6, 1, 6, 6)}
    classes = {"residual": 3, "shared": 2, "frozen": 2, "recurrent": 3, "rescnn": 2}
    x = torch.randn(*shapes[model_name], generator=g)
    return x, torch.randint(0, classes[model_name], (x.shape[0],), generator=g)


def expected_records(model, manual, x, y, steps: int, every: int = 1, lr: float = 0.05):
    """Train `model` under watch and, step by step, compute every statistic from the oracle."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    expected = []
    before = None  # the weights one step back
    with watch(model, every=every) as w:
        for s in range(steps):
            P = dict(model.named_parameters())
            P64 = {n: p.detach().to(torch.float64) for n, p in P.items()}
            _, outs64 = manual(P64, x.to(torch.float64), y)
            P32 = {n: p.detach().clone().requires_grad_(p.requires_grad) for n, p in P.items()}
            loss32, outs32 = manual(P32, x, y)
            names = list(outs32)
            # no gradient reaches an output that does not depend on anything trained (a frozen stem's)
            flat = [t for n in names for t in outs32[n] if t.requires_grad]
            grads = iter(torch.autograd.grad(loss32, flat))
            grad_of = {n: [next(grads) for t in outs32[n] if t.requires_grad] for n in names}
            now = {n: p.detach().clone() for n, p in P.items()}
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            wgrad = {n: (None if p.grad is None else p.grad.clone()) for n, p in P.items()}
            opt.step()
            w.step(loss)
            if s % every == 0:
                rec = {}
                for n in names:
                    ws = [k2 for k2 in P if k2.startswith(n + ".") and k2.rsplit(".", 1)[-1].startswith("weight")]
                    trained = [k2 for k2 in ws if P[k2].requires_grad]
                    rec[n] = {
                        "out_var": pooled_var(outs64[n]),
                        "out_mean": float(torch.cat([t.reshape(-1) for t in outs64[n]]).mean()),
                        "grad_out_var": pooled_var(grad_of[n]) if grad_of[n] else math.nan,
                        "weight_var": pooled_var([now[k2] for k2 in ws]),
                        "weight_grad_var": pooled_var([wgrad[k2] for k2 in trained]) if trained else math.nan,
                        "update_ratio": math.sqrt(pooled_var([now[k2] - before[k2] for k2 in trained])
                                                  / pooled_var([now[k2] for k2 in trained]))
                        if (trained and before is not None) else math.nan,
                        "calls": len(outs64[n]),
                        "loss": float(loss.detach()),
                    }
                expected.append((s, rec))
            before = now
    return w, expected


def assert_matches(w, expected, skip=()):
    table = w.table()
    assert list(table["step"].unique()) == [s for s, _ in expected]
    for s, rec in expected:
        rows = table[table["step"] == s].set_index("name")
        assert set(rows.index) == set(rec), (set(rows.index), set(rec))
        for name, cols in rec.items():
            for c, v in cols.items():
                if c in skip:
                    continue
                got = rows.loc[name, c]
                if math.isnan(v):
                    assert math.isnan(got), (s, name, c, got)
                else:
                    assert got == pytest.approx(v, rel=RTOL, abs=1e-12), (s, name, c, got, v)


@pytest.mark.parametrize("kind", ["residual", "shared", "frozen", "recurrent", "rescnn"])
def test_values_match_a_hand_written_pass_and_autograd(kind):
    model_cls, manual = {"residual": (ResidualMLP, residual_manual), "shared": (SharedLayer, shared_manual),
                         "frozen": (Frozen, frozen_manual), "recurrent": (Recurrent, recurrent_manual),
                         "rescnn": (ResCNN, rescnn_manual)}[kind]
    torch.manual_seed(3)
    model = model_cls()
    x, y = batch(kind)
    w, expected = expected_records(model, manual, x, y, steps=3)
    assert_matches(w, expected)


def test_forward_order_and_module_paths():
    torch.manual_seed(0)
    w, _ = expected_records(ResidualMLP(), residual_manual, *batch("residual"), steps=1)
    assert w.names == ["inp", "block.0", "block.2", "head"]
    t = w.table()
    assert list(t["layer"]) == [1, 2, 3, 4] and list(t["name"]) == w.names
    assert list(t.columns[:10]) == ["step", "layer", "name", "out_mean", "out_var", "grad_out_var", "weight_var",
                                    "weight_grad_var", "update_ratio", "loss"]


def test_shared_layer_is_one_row_pooled_over_its_calls():
    torch.manual_seed(1)
    w, expected = expected_records(SharedLayer(), shared_manual, *batch("shared"), steps=2)
    t = w.table()
    assert (t.loc[t["name"] == "shared", "calls"] == 2).all()
    assert len(t) == 2 * 3


def test_frozen_layers_have_output_statistics_but_no_weight_gradient_or_update():
    torch.manual_seed(2)
    w, _ = expected_records(Frozen(), frozen_manual, *batch("frozen"), steps=2)
    t = w.table().set_index(["step", "name"])
    for name in ("stem", "top"):
        assert np.isnan(t.loc[(1, name), "weight_grad_var"]) and np.isnan(t.loc[(1, name), "update_ratio"])
        assert t.loc[(1, name), "out_var"] > 0 and t.loc[(1, name), "weight_var"] > 0
    assert np.isnan(t.loc[(1, "stem"), "grad_out_var"])  # nothing trained before it: no gradient reaches it
    assert t.loc[(1, "top"), "grad_out_var"] > 0           # frozen, but between trained layers
    assert t.loc[(1, "mid"), "update_ratio"] > 0


def test_every_n_records_every_nth_step_and_its_update():
    torch.manual_seed(4)
    w, expected = expected_records(ResidualMLP(), residual_manual, *batch("residual"), steps=7, every=3)
    assert [s for s, _ in expected] == [0, 3, 6]
    assert_matches(w, expected)  # update_ratio at step 3 is W3 - W2, measured although step 2 was not recorded


def test_saturation_is_the_flat_fraction_of_the_output_entering_a_known_activation():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
    with torch.no_grad():
        model[0].weight.mul_(4.0)
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    h1 = F.linear(x.double(), model[0].weight.double(), model[0].bias.double())
    h2 = F.linear(torch.tanh(h1), model[2].weight.double(), model[2].bias.double())
    with watch(model) as w:
        F.cross_entropy(model(x), y).backward()
        w.step()
    t = w.table().set_index("name")
    assert t.loc["0", "saturation"] == pytest.approx(float((h1.abs() > 1.818).double().mean()))
    assert t.loc["2", "saturation"] == pytest.approx(float((h2 <= 0).double().mean()))
    assert np.isnan(t.loc["4", "saturation"])  # the logits feed no activation module
    assert w.activations == ["tanh", "relu", None]
    assert ACTIVATIONS["tanh"].module_class is nn.Tanh


def test_float64_models_use_the_device_path_with_the_same_values():
    torch.manual_seed(6)
    model = ResidualMLP().double()
    x, y = batch("residual")
    w, expected = expected_records(model, residual_manual, x.double(), y, steps=2)
    assert_matches(w, expected)


# -- hooks live inside the block ----------------------------------------------------------------------

def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


def test_hooks_are_gone_after_the_block():
    model = ResidualMLP()
    x, y = batch("residual")
    with watch(model) as w:
        assert hook_count(model) > 0 and len(w) > 0
        F.cross_entropy(model(x), y).backward()
        w.step()
    assert hook_count(model) == 0 and len(w) == 0
    F.cross_entropy(model(x), y).backward()  # the model runs as before, and nothing more is recorded
    assert len(w.table()) == 4


def test_hooks_are_gone_after_an_exception_mid_step():
    model = ResidualMLP()
    x, y = batch("residual")
    with pytest.raises(RuntimeError, match="boom"):
        with watch(model) as w:
            F.cross_entropy(model(x), y).backward()
            w.step()
            loss = F.cross_entropy(model(x), y)  # forward done, its tensor hooks set: then the script fails
            raise RuntimeError("boom")
    assert hook_count(model) == 0 and len(w) == 0
    loss.backward()  # the outputs' tensor hooks were removed too: nothing fires
    assert len(w.table()) == 4
    with pytest.raises(ValueError, match="outside"):
        w.step()


def test_between_recorded_steps_no_hook_is_registered():
    model = ResidualMLP()
    x, y = batch("residual")
    with watch(model, every=5) as w:
        F.cross_entropy(model(x), y).backward()
        w.step()
        assert hook_count(model) == 0   # steps 1-4 run without hooks
        for _ in range(4):
            w.step()
        assert hook_count(model) > 0    # step 5 is recorded


# -- non-finite values ------------------------------------------------------------------------------

def test_nonfinite_values_are_kept_and_the_first_is_reported():
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    with watch(model) as w, pytest.warns(RuntimeWarning, match="step 1 in layer 2"):
        for s in range(3):
            if s == 1:
                with torch.no_grad():
                    model[2].weight[0, 0] = float("inf")  # as an exploding update would leave it
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            w.step(loss)
    t = w.table().set_index(["step", "layer"])
    assert np.isfinite(t.loc[(0, 2), "out_var"])
    assert not np.isfinite(t.loc[(1, 2), "out_var"])
    nf = w.first_nonfinite
    assert (nf.step, nf.layer, nf.name) == (1, 2, "2")
    assert "step 1" in w.nonfinite_sentence and "layer 2 (2)" in w.nonfinite_sentence
    assert len(t) == 3 * 3  # nothing dropped


# -- bad input -------------------------------------------------------------------------------------

def test_bad_arguments_get_one_sentence():
    model = ResidualMLP()
    with pytest.raises(ValueError, match=r"Invalid every 0"):
        watch(model, every=0)
    with pytest.raises(ValueError, match=r"Invalid layers entry 'nope'.*inp"):
        watch(model, layers=["nope"])
    with pytest.raises(ValueError, match="no Linear, Conv"):
        watch(nn.Sequential(nn.ReLU()))
    w = watch(model, layers=["block", "head"])  # a user-named container is measured like a layer
    x, y = batch("residual")
    with w:
        F.cross_entropy(model(x), y).backward()
        w.step()
    assert w.names == ["block", "head"]
    assert w.table().loc[0, "out_var"] > 0


def test_memory_stays_flat_over_many_records():
    import tracemalloc

    model = ResidualMLP()
    x, y = batch("residual")
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with watch(model) as w:
        def steps(n):
            for _ in range(n):
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                w.step(loss)
        steps(20)
        tracemalloc.start()
        a = tracemalloc.get_traced_memory()[0]
        steps(200)
        b = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    per_record = (b - a) / 200
    assert per_record < 2_000  # a few numbers per layer, no tensors


# -- the package ------------------------------------------------------------------------------------

def test_importing_core_watch_loads_no_torch_and_stays_callable():
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys; import core.watch; assert 'torch' not in sys.modules, 'torch imported'; "
            "import core.watch.view; from core import watch; assert callable(watch); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent,
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


def test_every_activation_names_the_torch_module_it_is():
    from core.registry import activation_of_module

    for a in ACTIVATIONS.values():
        module = a.module_class()
        assert isinstance(module, nn.Module)
        assert activation_of_module(module) is a
        x = torch.linspace(-4, 4, 101)
        assert torch.allclose(module(x), a.fn(x))  # the module computes the entry's φ
    assert activation_of_module(nn.Linear(2, 2)) is None
