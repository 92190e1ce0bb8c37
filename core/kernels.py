"""Fused one-pass reductions for the per-layer statistics, compiled with Numba.

Eager PyTorch needs a separate pass over memory for every sum, square and
comparison (and boolean counting is slow on a CPU); these kernels read each
tensor once for its sum, its sum of squares and, for pre-activations, the
flat-region counts, and write the finished float64 variance and mean (and
the saturation and dead-unit fractions) straight into the caller's table.
Partial sums run in float32 along each row (so they vectorize) and are
accumulated in float64; where that cannot be trusted (float32 overflowed in an
exploding run, or the mean dwarfs the spread) the kernel redoes the tensor
exactly, in float64 with two passes, while it is still in hand.

Tensors are passed by address (`Tensor.data_ptr()`), so one call reads one
layer's tensors, or a whole record's, in place: no copies and one dispatch.
The callers check that every tensor is contiguous float32 on the CPU first
(`usable`), since a kernel trusts the shape it is given.

Without Numba (or for tensors the kernels can't read) `core.reductions` falls
back to equivalent PyTorch code; `AVAILABLE` says which.
"""
from __future__ import annotations

import os

import numpy as np

try:  # pragma: no cover - exercised by whichever environment runs the tests
    if os.environ.get("GFL_NO_NUMBA"):
        raise ImportError("disabled by GFL_NO_NUMBA")
    import numba as nb
    from numba.core import cgutils
    from numba.extending import intrinsic

    AVAILABLE = True
except ImportError:  # pragma: no cover
    nb = None
    AVAILABLE = False

# Reassociation lets LLVM vectorize the sums; no 'nnan'/'ninf', so inf and
# nan propagate as they should in an exploding run, and the checks see them.
_FAST = {"reassoc", "contract", "nsz"}

# float32 partial sums keep ~7 digits: if var is under 1e-4 of E[x²], fewer than 3 are left.
CANCELLATION = 1e-4

if AVAILABLE:
    _jit = nb.njit(cache=True, nogil=True, fastmath=_FAST, boundscheck=False, error_model="numpy")

    # Every kernel walks a 2-D array row by row with float32 partial sums per
    # row: that inner loop is what LLVM vectorizes (a flat loop with a
    # variable block bound ran 4× slower).

    @_jit
    def _sums(x):
        """(Σx, Σx²) of a C-contiguous float32 (rows, cols) array."""
        rows, cols = x.shape
        s = 0.0
        q = 0.0
        for r in range(rows):
            bs = np.float32(0.0)
            bq = np.float32(0.0)
            for j in range(cols):
                v = x[r, j]
                bs += v
                bq += v * v
            s += bs
            q += bq
        return s, q

    @_jit
    def _sums_flat(x, below, beyond, mode, unit):
        """(Σh, Σh², flat entries, units flat in every row) of a (batch, units)
        float32 array: mode 1 = flat where |h| > beyond (tanh, sigmoid), mode
        2 = flat where h ≤ below (ReLU and friends). `unit`: float32 scratch.
        The mode test sits outside the inner loops so each vectorizes."""
        rows, cols = x.shape
        for j in range(cols):
            unit[j] = 0.0
        s = 0.0
        q = 0.0
        for r in range(rows):
            bs = np.float32(0.0)
            bq = np.float32(0.0)
            if mode == 1:
                for j in range(cols):
                    v = x[r, j]
                    bs += v
                    bq += v * v
                    unit[j] += np.float32(1.0) if abs(v) > beyond else np.float32(0.0)
            else:
                for j in range(cols):
                    v = x[r, j]
                    bs += v
                    bq += v * v
                    unit[j] += np.float32(1.0) if v <= below else np.float32(0.0)
            s += bs
            q += bq
        flat = 0.0
        dead = 0.0
        for j in range(cols):
            flat += unit[j]
            if unit[j] >= rows - 0.5:  # float32 counts are exact below 2^24 rows
                dead += 1.0
        return s, q, flat, dead

    @_jit
    def _exact(x):
        """(var, mean) in float64 with two passes: the trustworthy way."""
        rows, cols = x.shape
        s = 0.0
        for r in range(rows):
            for j in range(cols):
                s += np.float64(x[r, j])
        mean = s / (rows * cols)
        q = 0.0
        for r in range(rows):
            for j in range(cols):
                d = np.float64(x[r, j]) - mean
                q += d * d
        return q / (rows * cols), mean

    @_jit
    def _from_sums(s, q, n):
        """(var, mean, trusted) from float32-partial sums."""
        mean = s / n
        second = q / n
        var = second - mean * mean
        trusted = np.isfinite(var) and np.isfinite(mean) and not (var <= CANCELLATION * second and second > 0.0)
        return var, mean, trusted

    @_jit
    def _put(out, row, col, var, mean):
        out[row, col] = 0.0 if var < 0.0 else var  # NaN compares false and stays NaN
        out[row, col + 1] = mean

    @_jit
    def _reduce(x, flat, below, beyond, mode, unit, out, row, col, sat_col):
        """out[row, col:col+2] = (var, mean) of x; with `flat` (pre-activations)
        also out[row, sat_col:sat_col+2] = (saturation, dead units) fractions."""
        if flat and mode != 0:
            s, q, f, d = _sums_flat(x, below, beyond, mode, unit)
            out[row, sat_col] = f / x.size
            out[row, sat_col + 1] = d / x.shape[1]
        else:
            s, q = _sums(x)
            if flat:
                out[row, sat_col] = 0.0
                out[row, sat_col + 1] = 0.0
        var, mean, trusted = _from_sums(s, q, x.size)
        if not trusted:
            var, mean = _exact(x)
        _put(out, row, col, var, mean)

    @intrinsic
    def _as_pointer(typingctx, address):
        """An int64 address as a void pointer, so one call can read many tensors in place."""
        sig = nb.types.voidptr(nb.types.int64)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], cgutils.voidptr_t)

        return sig, codegen

    @_jit
    def _reduce_at(p, rows, cols, flat, below, beyond, mode, unit, out, row, col, sat_col):
        if p != 0:
            _reduce(nb.carray(_as_pointer(p), (rows, cols), np.float32), flat, below, beyond, mode, unit, out, row,
                    col, sat_col)

    @_jit
    def _reduce3(out, unit, below, beyond, mode, sat_col,
                 p0, r0, c0, row0, col0, flat0, p1, r1, c1, row1, col1, p2, r2, c2, row2, col2):
        """Up to three tensors in one call (address 0 = none); only the first can be a pre-activation."""
        _reduce_at(p0, r0, c0, flat0, below, beyond, mode, unit, out, row0, col0, sat_col)
        _reduce_at(p1, r1, c1, False, below, beyond, mode, unit, out, row1, col1, sat_col)
        _reduce_at(p2, r2, c2, False, below, beyond, mode, unit, out, row2, col2, sat_col)

    @_jit
    def _reduce_table(ptrs, rows, cols, out_row, out_col, flat, below, beyond, mode, unit, out, sat_col):
        for k in range(ptrs.shape[0]):
            _reduce_at(ptrs[k], rows[k], cols[k], flat[k], below, beyond, mode, unit, out, out_row[k], out_col[k],
                       sat_col)

    @_jit
    def _weight_delta(w, prev, out):
        """out[0, :] = (var, mean) of W and out[1, :] of Δ = W - prev, one pass over both."""
        rows, cols = w.shape
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        for r in range(rows):
            b0 = np.float32(0.0)
            b1 = np.float32(0.0)
            b2 = np.float32(0.0)
            b3 = np.float32(0.0)
            for j in range(cols):
                v = w[r, j]
                d = v - prev[r, j]
                b0 += v
                b1 += v * v
                b2 += d
                b3 += d * d
            a0 += b0
            a1 += b1
            a2 += b2
            a3 += b3
        var, mean, trusted = _from_sums(a0, a1, w.size)
        if not trusted:
            var, mean = _exact(w)
        _put(out, 0, 0, var, mean)
        var, mean, trusted = _from_sums(a2, a3, w.size)
        if not trusted:
            var, mean = _exact(w - prev)
        _put(out, 1, 0, var, mean)


def flat_args(below: float | None, beyond: float | None) -> tuple[np.float32, np.float32, int]:
    """(below, beyond, mode) for the kernels; mode 0 = no flat region."""
    mode = 1 if beyond is not None else (2 if below is not None else 0)
    return np.float32(below or 0.0), np.float32(beyond or 0.0), mode


def usable(tensors) -> bool:
    """Can the kernels read all these tensors in place (contiguous float32 on the CPU)?"""
    import torch

    if not AVAILABLE or not tensors:
        return False
    first = tensors[0]
    if first is None or first.device.type != "cpu" or first.dtype != torch.float32:
        return False
    for t in tensors:
        if t is None or t.dtype != first.dtype or t.device != first.device or not t.is_contiguous():
            return False
    return True


def contiguous(tensors) -> bool:
    """Is every tensor contiguous? (With `usable` on one of a kind whose
    dtype and device they share, enough for the kernels to read them.)"""
    import torch

    return all(map(torch.Tensor.is_contiguous, tensors))


def shape2(t) -> tuple[int, int]:
    """A tensor as (rows, cols): its first dimension by the rest (1 × 1 for a scalar)."""
    if t.dim() == 2:
        return t.shape[0], t.shape[1]
    if t.dim() == 0:
        return 1, 1
    rows = t.shape[0]
    return rows, (t.numel() // rows if rows else 0)


NONE = (0, 0, 0, 0, 0)  # an empty slot for reduce3


def reduce3(out: np.ndarray, unit: np.ndarray, flat_arg: tuple, sat_col: int, first: tuple, flat: bool,
            second: tuple = NONE, third: tuple = NONE) -> None:
    """The hot path: up to three tensors, each a slot (address, rows, cols,
    out row, out column), in one call; the first is a pre-activation (flat
    counts too) if `flat`. Address 0 is an empty slot."""
    _reduce3(out, unit, *flat_arg, sat_col, *first, flat, *second, *third)


def reduce_many(tensors, out: np.ndarray, flat: bool = False, below: float | None = None,
                beyond: float | None = None) -> None:
    """out[k, :2] = (var, mean) of tensors[k], and with `flat` out[k, 2:4] =
    (saturation, dead units) of each (batch, units) pre-activation, in one call
    that reads them all in place. The tensors must pass `usable`; the caller
    keeps them alive during the call."""
    n = len(tensors)
    ptrs = np.fromiter((t.data_ptr() for t in tensors), np.int64, n)
    shapes = np.array([shape2(t) for t in tensors], dtype=np.int64).reshape(n, 2)
    rows, cols = shapes[:, 0].copy(), shapes[:, 1].copy()
    b, c, mode = flat_args(below, beyond)
    unit = np.empty(max(int(cols.max()), 1) if n else 1, dtype=np.float32)
    _reduce_table(ptrs, rows, cols, np.arange(n, dtype=np.int64), np.zeros(n, np.int64), np.full(n, flat),
                  b, c, mode, unit, out, 2)


def reduce_table(ptrs: np.ndarray, rows: np.ndarray, cols: np.ndarray, out_row: np.ndarray, out_col: np.ndarray,
                 flat: np.ndarray, flat_arg: tuple, unit: np.ndarray, out: np.ndarray, sat_col: int) -> None:
    """The general form: tensor k (at address ptrs[k], C-contiguous float32
    rows[k] × cols[k]) goes to out[out_row[k], out_col[k]:+2], and its flat
    counts, where flat[k], to out[out_row[k], sat_col:+2]."""
    _reduce_table(ptrs, rows, cols, out_row, out_col, flat, *flat_arg, unit, out, sat_col)


def weight_delta(w: np.ndarray, prev: np.ndarray, out: np.ndarray) -> None:
    """out[0] = (var, mean) of W, out[1] of W - prev (2-D float32 arrays of one shape)."""
    _weight_delta(w, prev, out)


def warm_up() -> None:
    """Compile (or load from Numba's cache) every kernel now, not mid-run."""
    if not AVAILABLE:
        return
    import torch

    ts = [torch.ones(2, 3), torch.zeros(4, 5)]
    out = np.zeros((2, 4))
    reduce_many(ts, out)
    reduce_many(ts, out, True, None, 1.0)
    reduce_many(ts, out, True, 0.0, None)
    x = ts[0].numpy()
    weight_delta(x, x.copy(), out)
    unit = np.zeros(8, np.float32)
    p = ts[0].data_ptr()
    reduce3(out, unit, flat_args(None, 1.0), 2, (p, 2, 3, 0, 0), True, (p, 2, 3, 1, 0))
    reduce3(out, unit, flat_args(None, 1.0), 2, NONE, False)
