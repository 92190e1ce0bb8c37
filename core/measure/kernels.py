"""Fused one-pass reductions for the per-layer statistics, compiled with Numba.

Eager PyTorch needs a separate pass over memory for every sum, square and
comparison (and boolean counting is slow on a CPU); these kernels read each
tensor once for its sum, its sum of squares and, for pre-activations, the
flat-region counts, and write the finished float64 variance and mean (and
the saturation and dead-unit fractions) straight into the caller's table.
Partial sums run in float32 over fixed-size chunks (so they vectorize) and
are accumulated in float64; ∂L/∂h can come from ∂L/∂a and a = φ(h) in the
same pass (`table_kernel`, compiled from the activation's φ' function). Where that cannot be trusted (float32 overflowed in an
exploding run, or the mean dwarfs the spread) the kernel redoes the tensor
exactly, in float64 with two passes, while it is still in hand.

Tensors are passed by address (`Tensor.data_ptr()`), so one call reads one
layer's tensors, or a whole record's, in place: no copies and one dispatch.
The callers check that every tensor is contiguous float32 on the CPU first
(`usable`), since a kernel trusts the shape it is given.

Without Numba (or for tensors the kernels can't read) `core.measure.reductions` falls
back to equivalent PyTorch code; `AVAILABLE` says which. Importing this module
compiles nothing: each kernel is loaded from Numba's cache (or compiled) on its
first call, and `python -m core.measure.warm_up` fills the cache (see the end).
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

from core.measure.reductions import CANCELLATION  # noqa: E402  (the kernels redo a tensor where PyTorch does)

if AVAILABLE:
    _jit = nb.njit(cache=True, nogil=True, fastmath=_FAST, boundscheck=False, error_model="numpy")
    # A helper holding a hot loop is inlined into its caller at Numba's level: called as a
    # separate function its loop was not vectorized (seven times slower).
    _inline = nb.njit(cache=True, nogil=True, fastmath=_FAST, boundscheck=False, error_model="numpy", inline="always")

    # Sums run in float32 over fixed-size chunks (a constant trip count is
    # what LLVM vectorizes and unrolls well: a variable block bound ran 4×
    # slower), each chunk's partial sums then accumulated in float64. With
    # 8 lanes × 4 interleaved accumulators a float32 partial holds 32 values.
    CHUNK = 1024

    @_jit
    def _sums(x):
        """(Σx, Σx²) of a C-contiguous float32 array of any shape."""
        f = x.reshape(x.size)
        n = f.size
        full = n // CHUNK
        s = 0.0
        q = 0.0
        for c in range(full):
            base = c * CHUNK
            bs = np.float32(0.0)
            bq = np.float32(0.0)
            for j in range(CHUNK):
                v = f[base + j]
                bs += v
                bq += v * v
            s += bs
            q += bq
        bs = np.float32(0.0)
        bq = np.float32(0.0)
        for j in range(full * CHUNK, n):
            v = f[j]
            bs += v
            bq += v * v
        return s + bs, q + bq

    @_inline
    def _flat_rows(x, r, k, below, beyond, mode, unit):
        """Σ, Σ² and the per-unit flat counts of rows r .. r+k-1 (k = 1 or 4):
        four rows at a time halve the traffic to `unit`; with fewer than 512
        units a float32 partial still holds at most 64 values per lane."""
        rows, cols = x.shape
        bs = np.float32(0.0)
        bq = np.float32(0.0)
        one = np.float32(1.0)
        zero = np.float32(0.0)
        if k == 4:
            if mode == 1:
                for j in range(cols):
                    v0 = x[r, j]
                    v1 = x[r + 1, j]
                    v2 = x[r + 2, j]
                    v3 = x[r + 3, j]
                    bs += (v0 + v1) + (v2 + v3)
                    bq += (v0 * v0 + v1 * v1) + (v2 * v2 + v3 * v3)
                    unit[j] += ((one if abs(v0) > beyond else zero) + (one if abs(v1) > beyond else zero)) + (
                        (one if abs(v2) > beyond else zero) + (one if abs(v3) > beyond else zero))
            else:
                for j in range(cols):
                    v0 = x[r, j]
                    v1 = x[r + 1, j]
                    v2 = x[r + 2, j]
                    v3 = x[r + 3, j]
                    bs += (v0 + v1) + (v2 + v3)
                    bq += (v0 * v0 + v1 * v1) + (v2 * v2 + v3 * v3)
                    unit[j] += ((one if v0 <= below else zero) + (one if v1 <= below else zero)) + (
                        (one if v2 <= below else zero) + (one if v3 <= below else zero))
        elif mode == 1:
            for j in range(cols):
                v = x[r, j]
                bs += v
                bq += v * v
                unit[j] += one if abs(v) > beyond else zero
        else:
            for j in range(cols):
                v = x[r, j]
                bs += v
                bq += v * v
                unit[j] += one if v <= below else zero
        return bs, bq

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
        r = 0
        if cols <= 512:
            while r + 4 <= rows:
                bs, bq = _flat_rows(x, r, 4, below, beyond, mode, unit)
                s += bs
                q += bq
                r += 4
        while r < rows:
            bs, bq = _flat_rows(x, r, 1, below, beyond, mode, unit)
            s += bs
            q += bq
            r += 1
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
    def _reduce_table(ptrs, rows, cols, out_row, out_col, kind, below, beyond, mode, unit, out, sat_col):
        """Tensor k at ptrs[k] into out[out_row[k], out_col[k]:+2]; kind 1 is a
        pre-activation (its flat counts too), kind 0 anything else."""
        for k in range(ptrs.shape[0]):
            _reduce_at(ptrs[k], rows[k], cols[k], kind[k] == 1, below, beyond, mode, unit, out, out_row[k],
                       out_col[k], sat_col)

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
    f32 = torch.float32
    return all(t is not None and t.dtype is f32 and t.is_cpu and t.is_contiguous() for t in tensors)


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
    import torch

    n = len(tensors)
    ptrs = np.fromiter(map(torch.Tensor.data_ptr, tensors), np.int64, n)
    if flat:  # the flat counts are per unit: (batch, units)
        shapes = np.array([shape2(t) for t in tensors], dtype=np.int64).reshape(n, 2)
        rows, cols = shapes[:, 0].copy(), shapes[:, 1].copy()
    else:  # sums don't care how a dense block is split into rows
        rows, cols = np.fromiter(map(torch.Tensor.numel, tensors), np.int64, n), np.ones(n, np.int64)
    b, c, mode = flat_args(below, beyond)
    unit = np.empty(max(int(cols.max()), 1) if n else 1, dtype=np.float32)
    _reduce_table(ptrs, rows, cols, np.arange(n, dtype=np.int64), np.zeros(n, np.int64),
                  np.full(n, 1 if flat else 0, np.int64), b, c, mode, unit, out, 2)


def weight_delta(w: np.ndarray, prev: np.ndarray, out: np.ndarray) -> None:
    """out[0] = (var, mean) of W, out[1] of W - prev (2-D float32 arrays of one shape)."""
    _weight_delta(w, prev, out)


# -- kernels specialised from an activation's φ' ----------------------------------------------
#
# ∂L/∂h = ∂L/∂a · φ'(h), with φ'(h) from a = φ(h) by the registry's scalar function
# (`Activation.slope_from_output`). One loop body, compiled once per function: Numba inlines
# the function into the loop, which then vectorizes as a hand-written one does. (Branching on a
# mode inside the loop ran 1.5× slower; one copy of the loop per mode was the old way.)
#
# The kernel is a closure over the function. Numba's cache keys a closure by its code and the
# pickled values of its free variables; a plain module-level function pickles by name, so the
# key is the same in every process (a jitted function would not be: it pickles with a
# per-process id, and every start compiled anew). `version`, a hash of the function's code,
# makes a changed function a new key.

_TABLES: dict = {}


def _code_version(fn) -> str:
    import hashlib

    code = fn.__code__
    consts = {n: fn.__globals__.get(n) for n in code.co_names if isinstance(fn.__globals__.get(n), (int, float))}
    text = repr((fn.__module__, fn.__qualname__, code.co_code, code.co_consts, code.co_names, sorted(consts.items())))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def table_kernel(slope):
    """The record kernel for an activation whose φ'(h) is `slope(a)`, compiled
    (or loaded from Numba's cache) on its first call:

        kernel(ptrs, ptrs2, rows, cols, out_row, out_col, kind, below, beyond, mode, unit, out,
               sat_col, slope_col, a_col)

    tensor k (at address ptrs[k], C-contiguous float32 rows[k] × cols[k]) goes to
    out[out_row[k], out_col[k]:+2]; kind 1 adds a pre-activation's flat counts at
    out[out_row[k], sat_col:+2]; kind 2 is ∂L/∂a with a at ptrs2[k], adding ∂L/∂h's moments
    at out[out_row[k], slope_col:+2] and a's at out[out_row[k], a_col:+2], in one pass."""
    kernel = _TABLES.get(slope)
    if kernel is None:
        kernel = _TABLES[slope] = _make_table_kernel(slope)
    return kernel


def _make_table_kernel(slope):
    from numba.extending import register_jitable

    register_jitable(slope)  # callable from the kernel; `slope` itself is unchanged
    version = _code_version(slope)

    @_jit
    def kernel(ptrs, ptrs2, rows, cols, out_row, out_col, kind, below, beyond, mode, unit, out,
               sat_col, slope_col, a_col):
        _ = version  # noqa: F841 - part of the cache key (see above)
        zero = np.float32(0.0)
        for k in range(ptrs.shape[0]):
            if kind[k] != 2:
                _reduce_at(ptrs[k], rows[k], cols[k], kind[k] == 1, below, beyond, mode, unit, out, out_row[k],
                           out_col[k], sat_col)
                continue
            if ptrs[k] == 0 or ptrs2[k] == 0:
                continue
            n = rows[k] * cols[k]
            g = nb.carray(_as_pointer(ptrs[k]), (n,), np.float32)
            a = nb.carray(_as_pointer(ptrs2[k]), (n,), np.float32)
            # Σg, Σg², Σd, Σd², Σa, Σa² with d = g·φ'(h): float32 partials over CHUNK entries
            # (a constant trip count vectorizes), accumulated in float64. A zero slope gives
            # exactly 0, as PyTorch's ReLU backward selects: ∞·0 would be NaN.
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            s4 = 0.0
            s5 = 0.0
            full = n // CHUNK
            for c in range(full + 1):
                base = c * CHUNK
                m = CHUNK if c < full else n - base
                b0 = zero
                b1 = zero
                b2 = zero
                b3 = zero
                b4 = zero
                b5 = zero
                if m == CHUNK:
                    for j in range(CHUNK):
                        v = g[base + j]
                        y = a[base + j]
                        t = np.float32(slope(y))
                        d = v * t if t != zero else zero
                        b0 += v
                        b1 += v * v
                        b2 += d
                        b3 += d * d
                        b4 += y
                        b5 += y * y
                else:
                    for j in range(m):
                        v = g[base + j]
                        y = a[base + j]
                        t = np.float32(slope(y))
                        d = v * t if t != zero else zero
                        b0 += v
                        b1 += v * v
                        b2 += d
                        b3 += d * d
                        b4 += y
                        b5 += y * y
                s0 += b0
                s1 += b1
                s2 += b2
                s3 += b3
                s4 += b4
                s5 += b5
            row = out_row[k]
            var, mean, trusted = _from_sums(s0, s1, n)
            if not trusted:
                var, mean = _exact(g.reshape((n, 1)))
            _put(out, row, out_col[k], var, mean)
            var, mean, trusted = _from_sums(s2, s3, n)
            if not trusted:  # d in float64, two passes (each entry rounded to float32 as above)
                e = 0.0
                for j in range(n):
                    t = np.float32(slope(a[j]))
                    e += np.float64(g[j] * t if t != zero else zero)
                mean = e / n
                q = 0.0
                for j in range(n):
                    t = np.float32(slope(a[j]))
                    dd = np.float64(g[j] * t if t != zero else zero) - mean
                    q += dd * dd
                var = q / n
            _put(out, row, slope_col, var, mean)
            var, mean, trusted = _from_sums(s4, s5, n)
            if not trusted:
                var, mean = _exact(a.reshape((n, 1)))
            _put(out, row, a_col, var, mean)

    return kernel


def unit_slope(a):
    return 1.0


# -- Numba's cache: filled by an explicit step, never by an import ----------------------------
#
# A kernel compiled afresh and the same kernel loaded from Numba's on-disk cache can be
# vectorized differently, which changes float32 partial sums in their last bits: a run would
# then give a slightly different table in a process that compiled the kernels than in one that
# loaded them. So the cache is filled before any run, by a process of its own:
# `python -m core.measure.warm_up` (`make`, the Dockerfile, the dashboard's start), and every
# run loads. A process that finds the cache cold compiles what it needs itself (correct, and
# only its last bits may differ from another process's).

def _slope_functions() -> list:
    from core.registry import ACTIVATIONS

    found = []
    for act in ACTIVATIONS.values():
        if act.slope_from_output is not None and act.slope_from_output not in found:
            found.append(act.slope_from_output)
    return found


def _stamp_path():
    """A file beside the kernels' cache that says it is complete (None if Numba's layout is unknown)."""
    import hashlib
    import sys
    from pathlib import Path

    try:
        cache_dir = Path(_reduce3._cache._cache_path)
    except Exception:  # pragma: no cover - another Numba's internals
        return None
    text = repr((Path(__file__).read_bytes(), nb.__version__, sys.version, [_code_version(f) for f in _slope_functions()]))
    return cache_dir / f"gfl-kernels-{hashlib.sha256(text.encode()).hexdigest()[:16]}.complete"


def cache_is_warm() -> bool:
    """Has `warm_up` filled Numba's cache with every kernel of this code? (True without Numba: nothing to fill.)"""
    if not AVAILABLE:
        return True
    stamp = _stamp_path()
    return stamp is None or stamp.exists()


def warm_up() -> None:
    """Compile (or load from Numba's cache) every kernel in this process, and mark the cache complete."""
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
    one = np.ones(1, np.int64)
    for slope in [unit_slope, *_slope_functions()]:
        table_kernel(slope)(one * p, one * p, one * 2, one * 3, one * 0, one * 0, one * 2, *flat_args(None, 1.0),
                            unit, out, 2, 2, 2)
    stamp = _stamp_path()
    if stamp is not None:
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.touch()
        except OSError:  # pragma: no cover - a read-only cache: it stays cold, and correct
            pass


def fill_cache(timeout: float = 900) -> bool:
    """Fill Numba's cache in a child process unless it is warm already (see
    above); True if it is warm afterwards. Explicit, never on import."""
    if cache_is_warm():
        return True
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]  # the project root, where `core` is importable
    try:
        subprocess.run([sys.executable, "-m", "core.measure.warm_up"], cwd=root, timeout=timeout,
                       capture_output=True, check=False)
    except (OSError, subprocess.SubprocessError):  # pragma: no cover - then a run compiles what it needs
        return False
    return cache_is_warm()
