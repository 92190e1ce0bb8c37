"""Recurrent nets (rnn, lstm, gru): the statistics per (layer, time step) against independent oracles.

* The hand-unrolled cells equal torch.nn.RNN / LSTM / GRU given the same weights.
* Every recorded column of a step equals a hand-written float64 pass (the textbook cell
  equations written here), with ∂L/∂h_t for every t (and ∂L/∂c_t, the candidate's
  ∂L/∂(pre-activation)) from torch.autograd.grad, for every measuring strategy.
* The initial weights follow their schemes: W_hh's gate blocks orthogonal with spectral radius σ_w,
  identity, normal; the input weights by `init`; the LSTM's forget-gate bias.
* Every architecture × a couple of settings runs 2 steps with a complete table (`time` filled), the same
  seed gives the same table, and the CLI takes --arch/--seq-len/--dataset recall and refuses what does
  not apply with one sentence (exit 2).
"""
from __future__ import annotations

import copy
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from _oracle import next_batch
from core.data import load_data
from core.measure import kernels
from core.measure.records import COL
from core.registry import ACTIVATIONS, ARCHITECTURES, RECURRENT_INITS
from core.run.engine import Trainer, train
from core.schema import ConfigError, RunConfig

ROOT = Path(__file__).resolve().parent.parent
RECURRENT = [name for name, a in ARCHITECTURES.items() if a.per_time]
STRATEGIES = ["torch", "batched", "streaming"] if kernels.AVAILABLE else ["torch"]


def small(arch: str, **kw) -> RunConfig:
    base = dict(arch=arch, depth=2, width=16, seq_len=5, dataset="recall", batch_size=8, steps=2, lr=0.1,
                eval_every=0, seed=3)
    base.update(kw)
    return RunConfig(**base)


# -- the cells equal torch.nn's ---------------------------------------------------------------------

def _torch_module(net, arch):
    """torch.nn.RNN/LSTM/GRU with the lab model's weights (same gate order, b_ih = ours, b_hh = the GRU's)."""
    cfg = net.cfg
    kind = {1: torch.nn.RNN, 4: torch.nn.LSTM, 3: torch.nn.GRU}[net.gates]
    kw = {"nonlinearity": cfg.activation} if net.gates == 1 else {}
    ref = kind(cfg.features, cfg.width, num_layers=cfg.depth, batch_first=True, bias=cfg.bias, **kw).double()
    with torch.no_grad():
        for l in range(cfg.depth):
            getattr(ref, f"weight_ih_l{l}").copy_(net.linears[l].weight)
            getattr(ref, f"weight_hh_l{l}").copy_(net.recurrent[l].weight)
            if cfg.bias:
                getattr(ref, f"bias_ih_l{l}").copy_(net.linears[l].bias)
                b_hh = net.recurrent[l].bias
                getattr(ref, f"bias_hh_l{l}").copy_(b_hh if b_hh is not None else torch.zeros_like(net.linears[l].bias))
    return ref


@pytest.mark.parametrize("arch", RECURRENT)
def test_the_hand_unrolled_cells_equal_torch_nn(arch):
    # sigma_b > 0 and a normal init put every bias to work (the GRU's b_hn sits inside r ⊙ (...))
    cfg = small(arch, init="normal", sigma_b=0.3, sigma_w=0.9)
    net = ARCHITECTURES[arch].build(cfg).double()
    if net.recurrent[0].bias is not None:
        with torch.no_grad():
            for rec in net.recurrent:
                rec.bias.normal_(0.0, 0.3)
    x = load_data(cfg).x_train[:8].double()
    ref = _torch_module(net, arch)
    out, _ = ref(x)
    torch.testing.assert_close(net(x), net.out(out[:, -1]), rtol=1e-10, atol=1e-12)


# -- the statistics equal a float64 hand pass ---------------------------------------------------------

def _sig(v):
    return 1.0 / (1.0 + torch.exp(-v))


def hand_pass(net, x: torch.Tensor, y: torch.Tensor) -> dict:
    """The textbook cell equations in float64, written here; autograd.grad for every ∂L/∂(·)."""
    cfg = net.cfg
    H, T, L = cfg.width, cfg.seq_len, cfg.depth
    phi = {"tanh": torch.tanh, "relu": torch.relu}[cfg.activation] if cfg.activation in ("tanh", "relu") else None
    Wi = [lin.weight.detach().double().clone() for lin in net.linears]
    bi = [lin.bias.detach().double().clone() if lin.bias is not None else torch.zeros(lin.out_features,
                                                                                     dtype=torch.float64)
          for lin in net.linears]
    Wh = [rec.weight.detach().double().clone().requires_grad_(True) for rec in net.recurrent]
    bh = [rec.bias.detach().double().clone() if rec.bias is not None else None for rec in net.recurrent]
    seq = [x[:, t].double() for t in range(T)]
    pre, state, gates = [], [], []  # per block: the "h" the table describes, h_t, the sigmoid gates' pre-activations
    for l in range(L):
        h = torch.zeros(x.shape[0], H, dtype=torch.float64)
        c = torch.zeros_like(h)
        outs = []
        for t in range(T):
            gi = seq[t] @ Wi[l].T + bi[l]
            gh = h @ Wh[l].T + (bh[l] if bh[l] is not None else 0.0)
            if net.gates == 1:
                z = gi + gh
                h = phi(z)
                pre.append(z)
            elif net.gates == 4:
                i, f, g, o = (gi + gh).split(H, dim=1)
                c = _sig(f) * c + _sig(i) * torch.tanh(g)
                h = _sig(o) * torch.tanh(c)
                pre.append(c)
                gates.append(torch.cat([i, f, o], dim=1))
            else:
                r = _sig(gi[:, :H] + gh[:, :H])
                u = _sig(gi[:, H:2 * H] + gh[:, H:2 * H])
                n_pre = gi[:, 2 * H:] + r * gh[:, 2 * H:]
                h = (1 - u) * torch.tanh(n_pre) + u * h
                pre.append(n_pre)
                gates.append(torch.cat([gi[:, :H] + gh[:, :H], gi[:, H:2 * H] + gh[:, H:2 * H]], dim=1))
            state.append(h)
            outs.append(h)
        seq = outs
    logits = seq[-1] @ net.out.weight.detach().double().T + net.out.bias.detach().double()
    loss = (torch.logsumexp(logits, 1) - logits.gather(1, y[:, None]).squeeze(1)).mean()
    grads = torch.autograd.grad(loss, [*pre, *state, *Wh])
    n = len(pre)
    return {"pre": pre, "state": state, "gates": gates, "loss": float(loss.detach()), "grad_pre": grads[:n],
            "grad_state": grads[n:2 * n], "grad_W": grads[2 * n:], "W": [w.detach() for w in Wh]}


def _mv(t):
    v = t.detach().double().numpy().ravel()
    return v.mean(), ((v - v.mean()) ** 2).mean()


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("arch", RECURRENT)
def test_every_time_steps_statistics_equal_the_hand_pass(arch, strategy):
    cfg = small(arch, width=24, seq_len=6, batch_size=16, optimizer="momentum")
    trainer = Trainer(cfg, strategy=strategy)
    net = trainer.net
    flat_h, flat_gate = net.activation, ACTIVATIONS[cfg.architecture.gate_activation or cfg.activation]
    T = cfg.seq_len
    for _ in range(cfg.steps + 1):
        x, y = next_batch(trainer)
        o = hand_pass(net, x, y)
        # W_hh's candidate block: the vanilla RNN's whole matrix, an LSTM's g (i, f, g, o), a GRU's n (r, u, n)
        radius = [float(torch.linalg.eigvals(w.split(cfg.width)[2 if net.gates > 1 else 0]).abs().max())
                  for w in o["W"]]
        rec = trainer.advance()
        s = rec.stats
        assert s.shape[0] == cfg.depth * T
        assert rec.loss == pytest.approx(o["loss"], rel=1e-5)
        for b in range(cfg.depth * T):
            layer = b // T
            ctx = f"{arch} {strategy} step {rec.step} layer {layer + 1} t {b % T + 1}"
            m_pre, v_pre = _mv(o["pre"][b])
            m_act, v_act = _mv(o["state"][b])
            want = {"preact_var": v_pre, "act_var": v_act, "grad_preact_var": _mv(o["grad_pre"][b])[1],
                    "grad_act_var": _mv(o["grad_state"][b])[1], "weight_var": _mv(o["W"][layer])[1],
                    "weight_grad_var": _mv(o["grad_W"][layer])[1]}
            for col, v in want.items():
                assert s[b, COL[col]] == pytest.approx(v, rel=2e-4), f"{col} {ctx}"
            assert abs(s[b, COL["preact_mean"]] - m_pre) <= 2e-5 * math.sqrt(v_pre + m_pre ** 2) + 1e-30, ctx
            assert abs(s[b, COL["act_mean"]] - m_act) <= 2e-5 * math.sqrt(v_act + m_act ** 2) + 1e-30, ctx
            sat = float(flat_h.flat(o["pre"][b].detach()).double().mean())
            assert abs(s[b, COL["saturation"]] - sat) <= 1.01 / o["pre"][b].numel(), ctx
            assert s[b, COL["spectral_radius"]] == pytest.approx(radius[layer], rel=1e-5), ctx
            if o["gates"]:
                g = o["gates"][b].detach()
                assert abs(s[b, COL["gate_saturation"]] - float(flat_gate.flat(g).double().mean())) <= 1.01 / g.numel()
            else:
                assert math.isnan(s[b, COL["gate_saturation"]])


def test_the_gradient_through_time_is_autograd_for_every_t():
    """grad_act_var is Var(∂L/∂h_t), the total gradient (through time and up the stack) at every t."""
    cfg = small("rnn", depth=1, width=32, seq_len=12, batch_size=32)
    trainer = Trainer(cfg, strategy="torch")
    x, y = next_batch(trainer)
    logits, hs, acts = trainer.net(x, keep=True)
    grads = torch.autograd.grad(F.cross_entropy(logits, y), acts)
    rec = trainer.advance()
    want = np.array([float(g.double().var(unbiased=False)) for g in grads])
    np.testing.assert_allclose(rec.stats[:, COL["grad_act_var"]], want, rtol=1e-4)
    assert np.all(np.diff(np.log(want)) != 0)


# -- initialization -----------------------------------------------------------------------------------

def test_orthogonal_recurrent_weights_have_spectral_radius_sigma_w():
    cfg = small("lstm", width=32, sigma_w=0.8, forget_bias=1.5)
    net = ARCHITECTURES["lstm"].build(cfg)
    for rec, lin in zip(net.recurrent, net.linears):
        for block in rec.weight.detach().double().split(32):
            torch.testing.assert_close(block @ block.T, 0.64 * torch.eye(32, dtype=torch.float64), atol=1e-5, rtol=0)
            assert float(torch.linalg.eigvals(block).abs().max()) == pytest.approx(0.8, rel=1e-5)
        torch.testing.assert_close(lin.bias[32:64], torch.full((32,), 1.5))
        assert float(lin.bias.detach()[:32].abs().max()) == 0.0 and float(lin.bias.detach()[64:].abs().max()) == 0.0
    np.testing.assert_allclose(net.spectral_radius(), 0.8, rtol=1e-5)


def test_identity_and_normal_recurrent_inits():
    net = ARCHITECTURES["rnn"].build(small("rnn", width=64, recurrent_init="identity", sigma_w=0.5))
    torch.testing.assert_close(net.recurrent[0].weight, 0.5 * torch.eye(64))
    wide = small("rnn", depth=1, width=512, recurrent_init="normal", sigma_w=1.3, init="kaiming_normal")
    net = ARCHITECTURES["rnn"].build(wide)
    w = net.recurrent[0].weight.detach().double()
    assert float(w.std()) == pytest.approx(1.3 / math.sqrt(512), rel=0.01)
    assert float(torch.linalg.eigvals(w).abs().max()) == pytest.approx(1.3, rel=0.05)  # the circular law
    wi = net.linears[0].weight.detach().double()  # input weights: He at its published scale, not σ_w
    assert float(wi.std()) == pytest.approx(math.sqrt(2 / wi.shape[1]), rel=0.05)
    assert RECURRENT_INITS[wide.recurrent_init].weight_std(512, 512, 1.3) == pytest.approx(1.3 / math.sqrt(512))


# -- whole runs ------------------------------------------------------------------------------------

GRID = [(arch, kw) for arch in RECURRENT for kw in (
    dict(), dict(recurrent_init="identity", sigma_w=0.9, init="kaiming_normal", optimizer="adam"),
    dict(dataset="digits_rows", seq_len=8, depth=1, bias=False),
)] + [("rnn", dict(activation="relu", recurrent_init="identity", init="kaiming_normal"))]


@pytest.mark.parametrize("arch,kw", GRID, ids=[f"{a}-{i}" for i, (a, _) in enumerate(GRID)])
def test_two_steps_give_a_complete_table_and_the_same_seed_the_same_table(arch, kw):
    cfg = small(arch, **kw)
    first = train(cfg).layers
    again = train(cfg).layers
    T = cfg.seq_len
    assert len(first) == 3 * cfg.depth * T  # steps 0, 1, 2 × (layer, time)
    assert list(first["time"][: T]) == list(range(1, T + 1))
    assert list(first["layer"][: cfg.depth * T]) == [l for l in range(1, cfg.depth + 1) for _ in range(T)]
    needed = ["preact_var", "act_var", "grad_preact_var", "grad_act_var", "weight_var", "weight_grad_var",
              "saturation", "spectral_radius", "loss"]
    if ARCHITECTURES[arch].columns and "gate_saturation" in ARCHITECTURES[arch].columns:
        needed.append("gate_saturation")
    assert first[needed].notna().all().all(), first[needed].isna().sum()
    assert first["update_ratio"][first["step"] > 0].notna().all()
    import pandas as pd
    pd.testing.assert_frame_equal(first, again)


def test_digits_rows_is_eight_steps_of_eight_pixels():
    cfg = small("gru", dataset="digits_rows", seq_len=8)
    data = load_data(cfg)
    assert tuple(data.x_train.shape[1:]) == (8, 8)
    with pytest.raises(ConfigError) as e:
        small("gru", dataset="digits_rows", seq_len=20)
    assert e.value.field == "seq_len" and "8" in e.value.message


def test_recall_shows_the_class_once_then_noise():
    cfg = small("lstm", seq_len=30)
    data = load_data(cfg)
    x, y = data.x_train.numpy(), data.y_train.numpy()
    classes = cfg.classes
    assert x.shape[1:] == (30, classes + 1)
    np.testing.assert_array_equal(x[:, 0, :classes].argmax(1), y)
    assert np.all(x[:, 0, -1] == 1) and np.all(x[:, 1:, -1] == 0)
    assert abs(x[:, 1:, :classes].std() - 1) < 0.02
    again = load_data(cfg)
    assert torch.equal(again.x_train, data.x_train)


# -- the command line -----------------------------------------------------------------------------------

def _cli(*args, tmp_path=None):
    return subprocess.run([sys.executable, "-m", "core", "run", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_cli_runs_an_lstm_on_recall(tmp_path):
    out = tmp_path / "lstm.csv"
    r = _cli("--arch", "lstm", "--seq-len", "20", "--dataset", "recall", "--depth", "1", "--width", "16",
             "--steps", "2", "--batch-size", "16", "--out", str(out))
    assert r.returncode == 0, r.stderr
    import pandas as pd
    df = pd.read_csv(out)
    assert len(df) == 3 * 20 and list(df["time"][:20]) == list(range(1, 21))
    assert df["gate_saturation"].notna().all() and df["spectral_radius"].notna().all()


@pytest.mark.parametrize("args,field", [
    (("--arch", "lstm", "--seq-len", "100001"), "seq_len"),
    (("--arch", "gru", "--forget-bias", "1.0"), "forget_bias"),
])
def test_cli_refuses_what_does_not_apply_in_one_sentence(args, field, tmp_path):
    r = _cli(*args, "--dataset", "recall", "--out", str(tmp_path / "x.csv"))
    assert r.returncode == 2
    err = r.stderr.strip()
    assert field in err and err.count("\n") == 0 and "Traceback" not in err


def test_the_verdict_reads_a_recurrent_run_through_time():
    cfg = small("rnn", depth=1, width=64, seq_len=30, sigma_w=0.9, batch_size=64, steps=0)
    d = train(cfg).diagnosis
    assert d.verdict == "vanishing" and "through time" in d.headline and "t = 30" in d.headline
    changes = [s.changes for s in d.findings[0].suggestions]
    assert {"arch": cfg.architecture.gated_alternative} in changes and {"sigma_w": 1.0} in changes
    for s in d.findings[0].suggestions:
        s.apply(cfg)  # every suggestion is a valid config


@pytest.mark.skipif(not kernels.AVAILABLE, reason="the Numba strategies need Numba")
@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_the_measuring_strategy_is_chosen_by_a_blocks_units_not_its_gate_rows(arch, monkeypatch):
    # batch 64 × 128 units = 8,192 entries per h_t: below core.measure.strategy.SMALL (32,768), so the
    # small-tensor strategy, though an LSTM's W_hh has 4 × 128 rows (64 × 512 would pass SMALL)
    from core.measure.strategy import SMALL

    monkeypatch.delenv("GFL_MEASURE", raising=False)
    cfg = RunConfig(arch=arch, depth=1, width=128, seq_len=6, batch_size=64, dataset="recall", steps=10**6)
    gates = ARCHITECTURES[arch].build(cfg).gates
    assert 64 * 128 < SMALL and (gates < 4 or 64 * 128 * gates >= SMALL)
    assert Trainer(cfg).strategy.name == "batched"
