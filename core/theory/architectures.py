"""Theory beside the measurement for the architectures beyond the MLP, at initialization.

Each function takes a RunConfig and returns a table with one row per block,
in the measured table's column names (so a figure draws both the same way),
and `attrs` = {"applies": bool, "note": sentences for people}. An
architecture's entry names its function (`Architecture.theory`).

* `residual_stream` (resmlp): the residual stream's variance recursion
  x_{l} = x_{l-1} + α·F(x_{l-1}): at initialization the branch is independent
  of the stream, so Var(x_l) = Var(x_{l-1}) + α²·Var(F), with Var(F) from the
  mean-field map of F = Linear → φ → Linear. Plain blocks (α = 1) multiply the
  variance by a constant each (geometric growth), α = 1/√L by 1 + O(1/L) (a
  bounded total), Fixup and ReZero by exactly 1 (F = 0 or α = 0).
* `cnn_layers` (cnn): the MLP's mean-field recursion for each convolution,
  pixel by pixel: q_{l+1}(p) = σ_w²·A[E φ(√q_l z)²](p) + σ_b², where A is the
  identity for a delta-orthogonal kernel (Xiao et al., 2018: exactly the
  MLP's theory at every pixel) and the zero-padded 3×3 mean for a kernel of
  independent entries (the border pixels see fewer inputs, so a small image
  loses variance at its edges layer after layer).
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.registry import DATASETS, INITIALIZERS, RESIDUAL_SCALES
from core.theory.quadrature import gaussian_moments

if TYPE_CHECKING:  # pragma: no cover
    from core.schema import RunConfig


def input_moments(cfg: "RunConfig") -> np.ndarray:
    """The mean square of each input feature over cfg's training set (standardized data: 1, or 0 for
    a feature that is constant, such as digits' blank corner pixels)."""
    from core.data import load_data

    x = load_data(cfg).x_train.double()
    return (x * x).mean(dim=0).numpy()


def _not_covered(rows: int, columns: list[str], note: str, key: str = "layer") -> pd.DataFrame:
    df = pd.DataFrame({key: np.arange(1, rows + 1), **{c: np.nan for c in columns}})
    df.attrs.update(applies=False, note=note)
    return df


def _sigma2(cfg: "RunConfig", fan_in: int, fan_out: int) -> tuple[float, float] | None:
    eff = INITIALIZERS[cfg.init].effective_sigma2(fan_in, fan_out, cfg.sigma_w, cfg.sigma_b)
    if eff is None:
        return None
    return eff[0], (eff[1] if cfg.bias else 0.0)


GRID = np.exp(np.linspace(np.log(1e-10), np.log(1e6), 800))  # q's a many-valued field is read off


@lru_cache(maxsize=32)
def _grid_moments(activation: str) -> dict[str, np.ndarray]:
    m = gaussian_moments(activation, GRID)
    return {k: np.asarray(v, dtype=float) for k, v in m.items()}


def _moment(activation: str, q: np.ndarray, key: str) -> np.ndarray:
    """gaussian_moments(activation, q)[key] elementwise. A field of many values is read off a fixed
    log-spaced grid, computed once per activation (the moments are smooth in log q); values off the grid
    are computed as they are."""
    q = np.maximum(np.asarray(q, dtype=float), 0.0)
    if q.size <= 64:
        return np.asarray(gaussian_moments(activation, q)[key], dtype=float).reshape(q.shape)
    out = np.empty(q.shape)
    on = (q >= GRID[0]) & (q <= GRID[-1])
    out[on] = np.interp(np.log(q[on]), np.log(GRID), _grid_moments(activation)[key])
    if (~on).any():
        out[~on] = np.asarray(gaussian_moments(activation, q[~on])[key], dtype=float)
    return out


def _conv_sigma2(cfg: "RunConfig", in_channels: int, out_channels: int) -> tuple[float, float] | None:
    """(fan_in · Var W, Var b) of a 3×3 convolution under cfg's initializer."""
    ini = INITIALIZERS[cfg.init]
    std = ini.conv_weight_std(in_channels, out_channels, 9, cfg.sigma_w)
    if std is None:
        return None
    fan_in = in_channels * 9
    return fan_in * std * std, (ini.bias_std(fan_in, cfg.sigma_b) ** 2 if cfg.bias else 0.0)


def _phi2(activation: str, q: np.ndarray) -> np.ndarray:
    return _moment(activation, q, "phi2")


def _dphi2(activation: str, q: np.ndarray) -> np.ndarray:
    return _moment(activation, q, "dphi2")


# -- the residual MLP --------------------------------------------------------------------------------
RESIDUAL_COLUMNS = ["preact_var", "stream_var", "branch_var", "grad_stream_rel", "grad_rel"]


def residual_stream(cfg: "RunConfig", input_second_moment: float | None = None) -> pd.DataFrame:
    """Per block (`layer` 1..depth): the predicted `preact_var` (the branch's h), `stream_var` (x after
    the block), `branch_var` (α·F(x) added there) and `grad_stream_rel`, E[(∂L/∂x)²] relative to the
    last block's. `input_second_moment` is mean(x²) of the inputs (default: measured on cfg's data)."""
    L, w = cfg.depth, cfg.width
    scale = RESIDUAL_SCALES[cfg.residual_scale]
    inp = _sigma2(cfg, cfg.features, w)
    branch = _sigma2(cfg, w, w)
    if inp is None or branch is None:
        return _not_covered(L, RESIDUAL_COLUMNS, "A data-driven initializer sets its scales from a batch, which "
                                                 "the theory cannot know in advance.")
    m = float(np.mean(input_moments(cfg))) if input_second_moment is None else float(input_second_moment)
    s_in, b_in = inp
    s1, b1 = branch[0] * scale.branch_in_scale(L) ** 2, (0.0 if scale.fixup else branch[1])
    s2, b2 = (0.0, 0.0) if scale.zero_last else (branch[0], 0.0 if scale.fixup else branch[1])
    alpha2 = scale.alpha(L) ** 2
    q_x = s_in * m + b_in
    pre, stream, added, back, into_h = (np.empty(L) for _ in range(5))
    with np.errstate(over="ignore", invalid="ignore"):
        for l in range(L):
            q_h = 1.0 if cfg.batchnorm else s1 * q_x + b1
            var_f = s2 * float(_phi2(cfg.activation, np.array([q_h]))[0]) + b2
            pre[l], added[l] = q_h, alpha2 * var_f
            # backward through the block: ∂L/∂x_{l-1} = ∂L/∂x_l (I + α J_F), J_F = W2 diag(φ') W1
            # (BatchNorm divides the branch's h by its std, √(s1·q_x): its slope s1 becomes 1/q_x)
            slope = (1.0 / q_x if q_x > 0 else math.inf) if cfg.batchnorm else s1
            d = float(_dphi2(cfg.activation, np.array([q_h]))[0])
            back[l] = 1.0 + alpha2 * s2 * slope * d
            into_h[l] = alpha2 * s2 * d  # ∂L/∂h = φ'(h) ⊙ W2ᵀ(α ∂L/∂x_l)
            q_x = q_x + added[l]
            stream[l] = q_x
        grad = np.ones(L)
        for l in range(L - 2, -1, -1):  # the stream after block l gets block l+1's factor
            grad[l] = grad[l + 1] * back[l + 1]
        grad_h = grad * into_h
        grad_h = grad_h / grad_h[-1] if grad_h[-1] > 0 else np.full(L, np.nan)
    notes = []
    if cfg.batchnorm:
        notes.append("With BatchNorm the branch's input is normalized (variance 1), so each block adds about the "
                     "same amount and the stream's variance grows linearly; the backward factor through BatchNorm "
                     "is approximate.")
    if not np.isfinite(grad_h).any():
        notes.append(f"With {scale.label} every block starts as the identity (its branch's output is 0), so at "
                     "initialization no gradient reaches a branch's h: ∂L/∂h is exactly 0 and the backward panel "
                     "has nothing to draw, while the stream's gradient is the same in every block. It appears "
                     "after the first step.")
    if w < 64:
        notes.append(f"Blocks of {w} units: mean-field theory assumes wide layers, so expect deviations.")
    df = pd.DataFrame({"layer": np.arange(1, L + 1), "preact_var": pre, "stream_var": stream, "branch_var": added,
                       "grad_stream_rel": grad, "grad_rel": grad_h})
    df.attrs.update(applies=True, note=" ".join(notes))
    return df


# -- the CNN ------------------------------------------------------------------------------------------
CNN_COLUMNS = ["preact_var", "grad_rel"]


def _spread(field: np.ndarray, centre_only: bool) -> np.ndarray:
    """A: the identity (a kernel with only its centre tap) or the zero-padded 3×3 mean of (..., H, W) fields."""
    if centre_only:
        return field
    padded = np.pad(field, [(0, 0)] * (field.ndim - 2) + [(1, 1), (1, 1)])
    hgt, wid = field.shape[-2:]
    return sum(padded[..., i:i + hgt, j:j + wid] for i in range(3) for j in range(3)) / 9.0


CNN_INPUTS = 256  # examples whose pixels start the theory's fields: a pixel's scale varies from image to image


def cnn_layers(cfg: "RunConfig", input_field: np.ndarray | None = None) -> pd.DataFrame:
    """Per convolution (`layer` 1..depth): the predicted `preact_var` (h averaged over pixels) and
    `grad_rel` (E[(∂L/∂h)²] relative to the last convolution's), from the per-pixel mean-field
    recursion (module docstring), run for each input image's own field: a single pixel's value, unlike a
    layer's 64 inputs, does not concentrate, so a pixel is a different Gaussian in every image.
    `input_field` is (images, H, W): each pixel's square averaged over the input channels (default:
    the first `CNN_INPUTS` training images of cfg's data)."""
    L = cfg.depth
    c0, hgt, wid = DATASETS[cfg.dataset].image_shape
    ini = INITIALIZERS[cfg.init]
    first = _conv_sigma2(cfg, c0, cfg.width)
    rest = _conv_sigma2(cfg, cfg.width, cfg.width)
    if first is None or rest is None:
        return _not_covered(L, CNN_COLUMNS, "A data-driven initializer sets its scales from a batch.")
    if cfg.batchnorm:
        df = _not_covered(L, CNN_COLUMNS, "BatchNorm normalizes each channel to variance 1 over the batch and "
                                          "the pixels, whatever the init; its backward pass is not covered.")
        df["preact_var"] = 1.0
        return df
    if input_field is None:
        from core.data import load_data

        x = load_data(cfg).x_train[:CNN_INPUTS].double().numpy()
        input_field = (x * x).reshape(-1, c0, hgt, wid).mean(axis=1)
    m = np.asarray(input_field, dtype=float).reshape(-1, hgt, wid)
    centre = ini.centre_only
    q_fields = []
    with np.errstate(over="ignore", invalid="ignore"):
        q = first[0] * _spread(m, centre) + first[1]
        for l in range(L):
            if l:
                q = rest[0] * _spread(_phi2(cfg.activation, q.ravel()).reshape(q.shape), centre) + rest[1]
            q_fields.append(q)
        # backward: ∂L/∂a_L is the same at every pixel (global average pooling); then through each conv
        g = _dphi2(cfg.activation, q_fields[-1].ravel()).reshape(m.shape)
        grads = [g]
        for l in range(L - 2, -1, -1):
            g = _dphi2(cfg.activation, q_fields[l].ravel()).reshape(m.shape) * rest[0] * _spread(g, centre)
            grads.append(g)
        grads = grads[::-1]
        pre = np.array([f.mean() for f in q_fields])
        grad_mean = np.array([g.mean() for g in grads])
        grad = grad_mean / grad_mean[-1] if grad_mean[-1] > 0 else np.full(L, np.nan)
    if centre:
        note = ("Delta-orthogonal kernels act on every pixel as one orthogonal matrix, so this is the MLP's "
                "mean-field theory at each pixel (Xiao et al., 2018).")
    else:
        note = ("For kernels of independent entries this is the mean-field variance, pixel by pixel: the zero "
                "padding of the 3×3 'same' convolution leaves border pixels fewer inputs, so an 8×8 image loses "
                "variance at its edges with every layer. Correlations between pixels are not covered.")
    if cfg.width < 64:
        note += f" With {cfg.width} channels (mean-field theory assumes many), expect deviations."
    df = pd.DataFrame({"layer": np.arange(1, L + 1), "preact_var": pre, "grad_rel": grad})
    df.attrs.update(applies=True, note=note)
    return df


def layer_profile(cfg: "RunConfig"):
    """The theory beside the by-layer chart, for any architecture: a table with `layer`, `q` (the predicted
    Var(h)) and `grad_rel` (Var(∂L/∂h) relative to the last row) and `attrs` applies/note. The MLP's
    mean-field prediction where it holds as it is (`Architecture.mlp_theory`; inputs of second moment
    1), else the architecture's own (`Architecture.theory`), else hidden with the entry's reason."""
    arch = cfg.architecture
    if arch.mlp_theory:
        from core.theory.predictions import predicted_profile

        return predicted_profile(cfg, 1.0)
    table = arch.theory_table(cfg)
    if table is None:
        df = _not_covered(cfg.rows, ["q", "grad_rel"], arch.theory_note)
        return df
    df = pd.DataFrame({"layer": table["layer"], "q": table["preact_var"], "grad_rel": table["grad_rel"]})
    note = " ".join(n for n in (arch.theory_note, table.attrs.get("note", "")) if n)
    df.attrs.update(applies=table.attrs.get("applies", True), note=note)
    return df


__all__ = ["layer_profile", "residual_stream", "cnn_layers", "input_moments", "RESIDUAL_COLUMNS", "CNN_COLUMNS"]
