"""Initializers: each weight's std matches its published formula (gain / sqrt(fan)) within
sampling error, biases start as specified, σ_w multiplies, LSUV reaches unit variance, and
the same seed gives the same weights, also when networks are built in parallel threads."""
from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from scipy import stats as sps
from torch import nn

from core.schema import RunConfig
from core.data import load_data
from core.models.init import lsuv_
from core.models.mlp import build_network
from core.registry import INITIALIZERS

FAN_IN, FAN_OUT = 256, 2048  # rectangular, so fan_in, fan_out and their mean all differ; 524,288 weights

# The published formulas, written out here independently of Initializer.weight_std (core.registry):
# (std of one weight before the σ_w multiplier, distribution, bias rule)
R2 = math.sqrt(2.0)
EXPECTED = {
    "zeros": (lambda i, o: 0.0, "zero", "zero"),
    "normal": (lambda i, o: 1 / math.sqrt(i), "normal", "sigma_b"),
    "uniform": (lambda i, o: 1 / math.sqrt(i), "uniform", "sigma_b"),
    "xavier_uniform": (lambda i, o: math.sqrt(2 / (i + o)), "uniform", "zero"),
    "xavier_normal": (lambda i, o: math.sqrt(2 / (i + o)), "normal", "zero"),
    "kaiming_uniform": (lambda i, o: R2 / math.sqrt(i), "uniform", "zero"),
    "kaiming_normal": (lambda i, o: R2 / math.sqrt(i), "normal", "zero"),
    "kaiming_normal_fan_out": (lambda i, o: R2 / math.sqrt(o), "normal", "zero"),
    "lecun_normal": (lambda i, o: 1 / math.sqrt(i), "normal", "zero"),
    "lecun_uniform": (lambda i, o: 1 / math.sqrt(i), "uniform", "zero"),
    "orthogonal": (lambda i, o: 1 / math.sqrt(max(i, o)), "orthogonal", "zero"),
    "delta_orthogonal": (lambda i, o: 1 / math.sqrt(max(i, o)), "orthogonal", "zero"),  # a Linear: orthogonal
    "torch_default": (lambda i, o: 1 / math.sqrt(3 * i), "uniform", "torch_default"),
    "lsuv": (None, "orthogonal", "zero"),  # before the data-driven rescaling
}
EXCESS_KURTOSIS = {"normal": 0.0, "uniform": -1.2}


def init_layer(name: str, fan_in=FAN_IN, fan_out=FAN_OUT, sigma_w=1.0, sigma_b=0.0, seed=0) -> nn.Linear:
    cfg = RunConfig(init=name, sigma_w=sigma_w, sigma_b=sigma_b, depth=1, width=8)
    layer = nn.Linear(fan_in, fan_out)
    with torch.no_grad():
        INITIALIZERS[name].apply(layer, cfg, torch.Generator().manual_seed(seed))
    return layer


def sample_std_tolerance(n: int, kurtosis_excess: float, sds: float = 6.0) -> float:
    """Relative tolerance on a sample std: sd(s)/σ ≈ sqrt((κ - 1) / n) / 2, κ the kurtosis."""
    return sds * math.sqrt((kurtosis_excess + 2.0) / n) / 2


def test_formula_table_covers_every_registered_initializer():
    assert set(EXPECTED) == set(INITIALIZERS)


@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_core_weight_std_table_matches_published_formulas(name):
    formula = EXPECTED[name][0]
    for fan_in, fan_out in [(256, 2048), (100, 30), (64, 64)]:
        got = INITIALIZERS[name].weight_std(fan_in, fan_out)
        if formula is None:
            assert got is None
        else:
            assert got == pytest.approx(formula(fan_in, fan_out), rel=1e-12)
            assert INITIALIZERS[name].weight_std(fan_in, fan_out, sigma_w=3.0) == pytest.approx(3 * formula(fan_in, fan_out))


@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_weight_std_and_shape_match_formula_within_sampling_error(name):
    formula, dist, _ = EXPECTED[name]
    w = init_layer(name).weight.detach().double().numpy().ravel()
    n = w.size
    if dist == "zero":
        assert not w.any()
        return
    sigma = formula(FAN_IN, FAN_OUT) if formula else 1 / math.sqrt(max(FAN_IN, FAN_OUT))
    s = w.std()
    if dist == "orthogonal":
        assert s == pytest.approx(sigma, rel=1e-3)  # Σw² is fixed exactly by orthonormality
        return
    kurt = EXCESS_KURTOSIS[dist]
    assert abs(s / sigma - 1) < sample_std_tolerance(n, kurt), (s, sigma)
    assert abs(w.mean()) < 6 * sigma / math.sqrt(n)
    # the distribution's shape: normal vs uniform (sd of the sample kurtosis ≈ sqrt(24/n) for a normal)
    assert abs(sps.kurtosis(w) - kurt) < 6 * math.sqrt(24 / n)
    if dist == "uniform":
        bound = sigma * math.sqrt(3)
        assert np.abs(w).max() <= bound * (1 + 1e-6)
        assert np.abs(w).max() > bound * (1 - 1e-4)  # 500k draws reach the edge


@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_biases_as_specified(name):
    _, _, rule = EXPECTED[name]
    sigma_b = 0.3
    layer = init_layer(name, sigma_b=sigma_b)
    b = layer.bias.detach().double().numpy()
    assert INITIALIZERS[name].bias.name == rule
    if rule == "zero":
        assert not b.any()
        assert INITIALIZERS[name].bias_std(FAN_IN, sigma_b) == 0.0
        return
    expect = sigma_b if rule == "sigma_b" else 1 / math.sqrt(3 * FAN_IN)
    assert INITIALIZERS[name].bias_std(FAN_IN, sigma_b) == pytest.approx(expect)
    dist = "uniform" if name in ("uniform", "torch_default") else "normal"
    assert abs(b.std() / expect - 1) < sample_std_tolerance(b.size, EXCESS_KURTOSIS[dist])
    if dist == "uniform":
        assert np.abs(b).max() <= expect * math.sqrt(3) * (1 + 1e-6)
    # σ_b = 0 under normal/uniform: exactly zero biases
    if rule == "sigma_b":
        assert not init_layer(name, sigma_b=0.0).bias.detach().any()


@pytest.mark.parametrize("name", [n for n in INITIALIZERS if n not in ("normal", "uniform", "zeros")])
def test_sigma_w_multiplies_the_scheme_std_exactly(name):
    one = init_layer(name, 128, 64, seed=3).weight.detach()
    scaled = init_layer(name, 128, 64, sigma_w=2.5, seed=3).weight.detach()
    assert torch.equal(scaled, one * 2.5)  # same draws, scaled
    b_one = init_layer(name, 128, 64, seed=3).bias.detach()
    b_scaled = init_layer(name, 128, 64, sigma_w=2.5, seed=3).bias.detach()
    assert torch.equal(b_one, b_scaled)  # σ_w is about weights only


@pytest.mark.parametrize("name", ["normal", "uniform"])
def test_mean_field_parameterization_sigma_w(name):
    for sigma_w in (0.5, 2.0):
        w = init_layer(name, sigma_w=sigma_w).weight.detach().double().numpy()
        expect = sigma_w / math.sqrt(FAN_IN)
        kurt = EXCESS_KURTOSIS[name]
        assert abs(w.std() / expect - 1) < sample_std_tolerance(w.size, kurt)


@pytest.mark.parametrize("fan_in,fan_out", [(64, 32), (32, 64), (48, 48)])
@pytest.mark.parametrize("sigma_w", [1.0, 1.7])
def test_orthogonal_rows_or_columns_orthonormal(fan_in, fan_out, sigma_w):
    w = init_layer("orthogonal", fan_in, fan_out, sigma_w=sigma_w).weight.detach().double()
    gram = w @ w.T if fan_out <= fan_in else w.T @ w
    eye = torch.eye(min(fan_in, fan_out), dtype=torch.float64)
    torch.testing.assert_close(gram, sigma_w**2 * eye, atol=1e-5 * sigma_w**2, rtol=0)


def test_torch_default_is_nn_linear_default_in_distribution():
    ours = init_layer("torch_default", seed=11)
    torch.manual_seed(12)
    ref = nn.Linear(FAN_IN, FAN_OUT)  # its own reset_parameters
    for a, b in [(ours.weight, ref.weight), (ours.bias, ref.bias)]:
        a = a.detach().double().numpy().ravel()
        b = b.detach().double().numpy().ravel()
        assert sps.ks_2samp(a, b).pvalue > 1e-4
        assert np.abs(a).max() <= 1 / math.sqrt(FAN_IN) * (1 + 1e-6)
        assert np.abs(b).max() <= 1 / math.sqrt(FAN_IN) * (1 + 1e-6)
        assert abs(a.std() / b.std() - 1) < 2 * sample_std_tolerance(a.size, -1.2)


def test_every_hidden_layer_gets_the_initializer_and_output_keeps_default():
    cfg = RunConfig(widths=(512, 384, 256), dataset="gaussian", input_dim=300, init="kaiming_normal_fan_out",
                    sigma_w=1.3, batch_size=16)
    net = build_network(cfg)
    fans = [(300, 512), (512, 384), (384, 256)]
    for lin, (fi, fo) in zip(net.linears, fans):
        w = lin.weight.detach().double()
        assert tuple(w.shape) == (fo, fi)
        assert abs(float(w.std()) / (1.3 * R2 / math.sqrt(fo)) - 1) < sample_std_tolerance(w.numel(), 0.0)
        assert not lin.bias.detach().any()
    out = net.out.weight.detach().double()
    assert np.abs(out.numpy()).max() <= 1 / math.sqrt(256) * (1 + 1e-6)  # nn.Linear's U(±1/√fan_in)
    assert abs(float(out.std()) * math.sqrt(3 * 256) - 1) < 0.1


# -- LSUV ---------------------------------------------------------------------------------

def linear_output_variances(net, x):
    """Each hidden Linear's output variance over all entries, by a manual forward (float64 stats)."""
    out = []
    a = x
    with torch.no_grad():
        for l, lin in enumerate(net.linears):
            z = a @ lin.weight.T + (lin.bias if lin.bias is not None else 0)
            out.append(float(z.double().var(unbiased=False)))
            h = net.norms[l](z) if net.norms is not None else z
            a = net.activation.fn(h)
    return out


@pytest.mark.parametrize("activation,batchnorm,dataset", [
    ("tanh", False, "digits"), ("relu", False, "gaussian"), ("sigmoid", False, "moons"), ("selu", True, "digits"),
    ("relu", True, "spirals"),
])
def test_lsuv_unit_variance_on_the_calibration_batch(activation, batchnorm, dataset):
    cfg = RunConfig(depth=12, width=64, activation=activation, init="lsuv", batchnorm=batchnorm, dataset=dataset,
                    sigma_w=3.0, batch_size=16)
    calib = load_data(cfg).x_train[:256]
    net = build_network(cfg, calib)
    net.train()
    measured = linear_output_variances(net, calib)
    for l, v in enumerate(measured):
        assert abs(v - 1) < 0.1, (l + 1, v)
    # lsuv_ reports what it reached, and a second pass changes nothing (already within tolerance)
    before = [lin.weight.detach().clone() for lin in net.linears]
    reported = lsuv_(net, calib)
    np.testing.assert_allclose(reported, measured, rtol=1e-5)
    for w0, lin in zip(before, net.linears):
        assert torch.equal(w0, lin.weight.detach())


def test_lsuv_needs_a_calibration_batch():
    with pytest.raises(ValueError, match="calibration"):
        build_network(RunConfig(depth=2, width=8, init="lsuv"))


# -- determinism ------------------------------------------------------------------------------

def weights_of(cfg: RunConfig) -> list[torch.Tensor]:
    calib = load_data(cfg).x_train[:128] if cfg.init == "lsuv" else None
    return [p.detach().clone() for p in build_network(cfg, calib).state_dict().values()]


DET_CONFIGS = [RunConfig(depth=4, width=32, init=name, sigma_b=0.1, batchnorm=bn, dataset="digits", batch_size=16,
                         seed=seed)
               for name, bn, seed in [("normal", False, 1), ("orthogonal", True, 2), ("lsuv", False, 3),
                                      ("torch_default", False, 4), ("xavier_uniform", True, 5)]]


def test_same_seed_same_weights_other_seed_other_weights():
    for cfg in DET_CONFIGS:
        a, b = weights_of(cfg), weights_of(cfg)
        assert all(torch.equal(x, y) for x, y in zip(a, b))
        c = weights_of(cfg.replace(seed=cfg.seed + 100))
        assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_global_rng_does_not_change_weights():
    cfg = DET_CONFIGS[0]
    torch.manual_seed(1)
    a = weights_of(cfg)
    torch.manual_seed(2)
    torch.randn(1000)
    b = weights_of(cfg)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_building_in_parallel_threads_gives_the_same_weights():
    alone = [weights_of(cfg) for cfg in DET_CONFIGS]
    stop = threading.Event()

    def noise():  # someone else using the global RNG meanwhile
        while not stop.is_set():
            torch.randn(256)
            torch.manual_seed(int(torch.randint(0, 1000, (1,))))

    t = threading.Thread(target=noise, daemon=True)
    t.start()
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            together = list(pool.map(weights_of, DET_CONFIGS * 3))
    finally:
        stop.set()
        t.join()
    for i, got in enumerate(together):
        want = alone[i % len(DET_CONFIGS)]
        assert all(torch.equal(x, y) for x, y in zip(want, got)), DET_CONFIGS[i % len(DET_CONFIGS)]
