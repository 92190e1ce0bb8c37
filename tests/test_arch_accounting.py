"""Per-architecture accounting: rows named in the arch's words, a step's work, the sweep's gradient ratio.

The divergence sentence names the row where the run blew up as its architecture names its rows.

Each run is forced to overflow (σ_w = 100 on a tiny network with a linear or ReLU φ); the oracle for
where is the run's own table: the first row of the divergence record with a non-finite forward value,
read from the `layer` and `time` columns. The sentence must say that row in the arch's words ("layer 20",
"block 9", "convolution 2", "layer 1, time step 22"), and the saved run's message must say it too.
The work limit counts parameters × batch × positions (the scenarios' fit is test_app's
test_every_scenario_can_run_on_this_server); a recurrent sweep cell's gradient ratio is through time.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.registry import ARCHITECTURES
from core.run.engine import train
from core.schema import RunConfig

# The words a reader should see for a row: the test's own spelling, not the registry's.
WORDS = {"mlp": "layer {l}", "resmlp": "block {l}", "cnn": "convolution {l}", "rnn": "layer {l}, time step {t}",
         "lstm": "layer {l}, time step {t}", "gru": "layer {l}, time step {t}"}
assert set(WORDS) == set(ARCHITECTURES)

FORCED = {
    "mlp": dict(depth=25, width=8, activation="linear", init="normal", sigma_w=100.0),
    "resmlp": dict(depth=12, width=8, activation="linear", init="kaiming_normal", sigma_w=100.0),
    "cnn": dict(depth=12, width=4, activation="linear", init="kaiming_normal", sigma_w=100.0),
    "rnn": dict(depth=1, width=8, seq_len=30, dataset="recall", activation="relu", init="xavier_normal",
                sigma_w=100.0),
}
FORWARD = ["preact_mean", "preact_var", "act_mean", "act_var"]


@pytest.mark.parametrize("arch", list(FORCED))
def test_the_divergence_sentence_names_the_row_the_table_shows(arch):
    cfg = RunConfig(arch=arch, batch_size=16, steps=2, **FORCED[arch])
    result = train(cfg)
    dv = result.divergence
    assert str(result.status) == "diverged" and dv is not None and dv.where == "forward"
    table = result.layers
    rec = table[table["step"] == dv.step]
    bad = rec[~np.isfinite(rec[FORWARD].to_numpy(dtype=float)).all(axis=1)].iloc[0]
    t = bad["time"]
    want = WORDS[arch].format(l=int(bad["layer"]), t=None if math.isnan(t) else int(t))
    sentence = dv.sentence(cfg)
    assert f"The activations of {want} became non-finite (inf/nan) at step {dv.step}." == sentence
    assert result.message == sentence
    assert any(sentence in f.sentence for f in result.diagnosis.findings)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_row_is_named_as_the_tables_layer_and_time_columns_say(arch):
    """LSTM and GRU do not overflow at these sizes (gates and tanh bound them): their rows' names are held to
    the table's columns directly, row by row, for the sentence to use."""
    kw = dict(depth=2, width=4, steps=0, batch_size=4)
    if ARCHITECTURES[arch].per_time:
        kw.update(seq_len=3, dataset="recall")
    cfg = RunConfig(arch=arch, **kw)
    result = train(cfg)
    table = result.layers
    assert len(table) == cfg.rows
    for row, (l, t) in enumerate(zip(table["layer"], table["time"]), 1):
        want = WORDS[arch].format(l=int(l), t=None if math.isnan(t) else int(t))
        assert cfg.architecture.row_name(row, cfg.time_steps) == want


def test_a_loss_only_divergence_names_the_arch_rows():
    from core.run.trainer import Divergence

    cfg = RunConfig(arch="cnn", depth=2, width=4)
    assert "every hidden convolution was still finite" in Divergence(3, None, "loss").sentence(cfg)


# -- the server's work limit counts what a step costs ------------------------------------------------------

def test_work_is_parameters_times_batch_times_positions():
    """The oracle: multiply-adds counted by hand from the layer shapes (a 3×3 convolution applies each
    weight at every pixel of the 8×8 image; a recurrent layer at every time step)."""
    mlp = RunConfig(depth=3, width=16, batch_size=8, dataset="digits")
    assert mlp.architecture.work(mlp) == mlp.parameter_count() * 8  # the MLP's number, unchanged
    cnn = RunConfig(arch="cnn", depth=3, width=16, batch_size=8, dataset="digits")
    assert cnn.architecture.work(cnn) == cnn.parameter_count() * 8 * 64
    lstm = RunConfig(arch="lstm", depth=2, width=16, seq_len=25, batch_size=8, dataset="recall")
    assert lstm.architecture.work(lstm) == lstm.parameter_count() * 8 * 25


def test_a_cnn_or_lstm_over_the_work_limit_gets_the_sentence():
    from core.limits import Limits

    cnn = RunConfig(arch="cnn", depth=50, width=32, batch_size=32, dataset="digits")
    lstm = RunConfig(arch="lstm", depth=2, width=256, seq_len=100, batch_size=64, dataset="recall")
    for cfg, per in ((cnn, "× 64 pixels"), (lstm, "× 100 time steps")):
        # parameters × batch alone fits: only the positions put it over
        assert cfg.parameter_count() * cfg.batch_size < Limits().max_work
        field, sentence = Limits().violation(cfg)
        assert field == "width"
        assert (f"{cfg.parameter_count():,} parameters × batch {cfg.batch_size} {per} = "
                f"{cfg.architecture.work(cfg):,}, over this server's limit of 400,000,000") in sentence


# -- the sweep's gradient ratio for recurrent rows ------------------------------------------------------------

@pytest.mark.parametrize("arch", [a for a, e in ARCHITECTURES.items() if e.per_time])
def test_sweep_grad_ratio_of_a_recurrent_cell_is_through_time_in_the_top_layer(arch):
    """Oracle: the run's own table read by hand - Var(∂L/∂h_t) of the top layer at t = 1 over t = T, step 0."""
    from core.sweep.cells import metrics

    cfg = RunConfig(arch=arch, depth=2, width=8, seq_len=6, dataset="recall", batch_size=8, steps=1,
                    sigma_w=0.5)
    result = train(cfg)
    t = result.layers
    top = t[(t["step"] == 0) & (t["layer"] == 2)]
    g1 = float(top[top["time"] == 1]["grad_act_var"].iloc[0])
    gT = float(top[top["time"] == 6]["grad_act_var"].iloc[0])
    got = metrics(result)["grad_ratio_init"]
    assert got == pytest.approx(math.log10(g1 / gT), rel=1e-12)
    if arch == "rnn":  # ρ(W_hh) = 0.5: the gradient through time shrinks by ≥ 4× a step back
        assert got < -5 * math.log10(4) + 0.5
