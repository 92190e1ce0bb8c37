"""Datasets: the registry's sizes, standardized features, a held-out split, seeded determinism."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.schema import RunConfig
from core.data import N_TEST, BatchSampler, load_data
from core.run.engine import Trainer
from core.registry import DATASETS


VECTOR = [n for n, d in DATASETS.items() if "vector" in d.kinds]  # sequences: tests/test_recurrent.py


def cfg_for(name, seed=0):
    return RunConfig(dataset=name, width=12, batch_size=16, seed=seed)


@pytest.mark.parametrize("name", VECTOR)
def test_shapes_labels_and_standardization(name):
    ds = DATASETS[name]
    cfg = cfg_for(name)
    d = load_data(cfg)
    features = ds.input_dim or 12
    assert tuple(d.x_train.shape) == (ds.train_size, features)
    n_test = 1797 - ds.train_size if name == "digits" else N_TEST
    assert tuple(d.x_test.shape) == (n_test, features)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    for y in (d.y_train, d.y_test):
        assert int(y.min()) >= 0 and int(y.max()) < ds.classes
    assert set(d.y_train.tolist()) == set(range(ds.classes))
    x = d.x_train.double().numpy()
    mean, var = x.mean(axis=0), x.var(axis=0)
    if name == "gaussian":  # N(0, 1) as drawn: within sampling error
        n = ds.train_size
        assert np.abs(mean).max() < 5 / math.sqrt(n) and np.abs(var - 1).max() < 5 * math.sqrt(2 / n)
    else:  # standardized on the training split (digits' always-blank pixels stay 0)
        assert np.abs(mean).max() < 1e-5
        live = var > 0
        np.testing.assert_allclose(var[live], 1.0, rtol=1e-4)
        assert (x[:, ~live] == 0).all()


@pytest.mark.parametrize("name", VECTOR)
def test_same_seed_same_data_other_seed_other_data(name):
    a, b = load_data(cfg_for(name, 1)), load_data(cfg_for(name, 1))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    c = load_data(cfg_for(name, 2))
    assert not torch.equal(a.x_train, c.x_train)


def test_digits_split_is_held_out():
    d = load_data(cfg_for("digits"))
    train_rows = {tuple(r) for r in d.x_train.numpy().round(5).tolist()}
    leaked = sum(tuple(r) in train_rows for r in d.x_test.numpy().round(5).tolist())
    assert leaked <= 5  # digits has a handful of exact duplicate images, no more


def test_gaussian_input_dim():
    d = load_data(RunConfig(dataset="gaussian", width=12, input_dim=5, batch_size=16))
    assert d.x_train.shape[1] == 5 and d.x_test.shape[1] == 5


def test_batch_sampler_epochs_cover_every_example_once():
    n, bs = 100, 16
    s = BatchSampler(n, bs, seed=4)
    batches = [s.next().tolist() for _ in range(n // bs)]
    flat = [i for b in batches for i in b]
    assert len(flat) == len(set(flat)) == (n // bs) * bs
    assert all(len(b) == bs for b in batches)
    s2 = BatchSampler(n, bs, seed=4)
    assert [s2.next().tolist() for _ in range(n // bs)] == batches
    assert BatchSampler(n, bs, seed=5).next().tolist() != batches[0]
    whole = BatchSampler(n, n, seed=0)
    assert sorted(whole.next().tolist()) == sorted(whole.next().tolist()) == list(range(n))


def test_test_accuracy_is_measured_on_the_held_out_split_in_eval_mode():
    cfg = RunConfig(depth=2, width=16, dataset="moons", batch_size=32, steps=4, eval_every=2, batchnorm=True)
    trainer = Trainer(cfg)
    recs = []
    while not trainer.done:
        r = trainer.advance()
        if r is not None:
            recs.append(r)
    evaluated = [r.step for r in recs if not math.isnan(r.test_accuracy)]
    assert evaluated == [0, 2, 4]
    net = trainer.net
    net.eval()  # BatchNorm with running statistics, as a held-out evaluation should be
    with torch.no_grad():
        want = float((net(trainer.data.x_test).argmax(1) == trainer.data.y_test).double().mean())
    net.train()
    assert recs[-1].test_accuracy == want
    assert 0 <= recs[-1].train_accuracy <= 1
