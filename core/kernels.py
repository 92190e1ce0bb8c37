"""Fused one-pass reductions for the per-layer statistics, compiled with Numba.

Eager PyTorch needs a separate pass over memory for every sum, square and
comparison (and boolean counting is slow on a CPU); these kernels read each
tensor once and return its sum, its sum of squares and, for pre-activations,
the flat-region counts. Partial sums run in float32 along each row (so they
vectorize) and are accumulated in float64. The caller (`probes`) checks the
results and redoes a layer in float64 where float32 overflowed or the mean
dwarfs the spread.

Without Numba (or for tensors that are not contiguous float32 on the CPU)
`probes` falls back to equivalent PyTorch code; `AVAILABLE` says which.
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
# nan propagate as they should in an exploding run.
_FAST = {"reassoc", "contract", "nsz"}

if AVAILABLE:
    _jit = nb.njit(cache=True, nogil=True, fastmath=_FAST, boundscheck=False, error_model="numpy")

    # Every kernel walks a 2-D array row by row with float32 partial sums per
    # row: that inner loop is what LLVM vectorizes (a flat loop with a
    # variable block bound ran 4× slower).

    @_jit
    def _moments(x, out):
        """out[0] = Σx, out[1] = Σx² of a C-contiguous float32 (rows, cols) array."""
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
        out[0] = s
        out[1] = q

    @_jit
    def _moments_flat(x, below, beyond, mode, unit, out):
        """out = [Σh, Σh², flat entries, units flat in every row] of a (batch,
        units) float32 array: mode 1 = flat where |h| > beyond (tanh, sigmoid),
        mode 2 = flat where h ≤ below (ReLU and friends). `unit`: float32
        scratch. The mode test sits outside the inner loops so each vectorizes."""
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
        out[0] = s
        out[1] = q
        out[2] = flat
        out[3] = dead

    @_jit
    def _weight_moments(w, prev, out):
        """out = [ΣW, ΣW², ΣΔ, ΣΔ²] with Δ = W - prev, one pass over both."""
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
        out[0] = a0
        out[1] = a1
        out[2] = a2
        out[3] = a3

    @intrinsic
    def _as_pointer(typingctx, address):
        """An int64 address as a void pointer, so one call can read many tensors in place."""
        sig = nb.types.voidptr(nb.types.int64)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], cgutils.voidptr_t)

        return sig, codegen

    @_jit
    def _moments_many(ptrs, rows, cols, out):
        for k in range(ptrs.shape[0]):
            _moments(nb.carray(_as_pointer(ptrs[k]), (rows[k], cols[k]), np.float32), out[k])

    @_jit
    def _moments_flat_many(ptrs, rows, cols, below, beyond, mode, unit, out):
        for k in range(ptrs.shape[0]):
            _moments_flat(nb.carray(_as_pointer(ptrs[k]), (rows[k], cols[k]), np.float32), below, beyond, mode, unit,
                          out[k])


def _flat_args(below: float | None, beyond: float | None) -> tuple[np.float32, np.float32, int]:
    """(below, beyond, mode) for `_moments_flat`; mode 0 = no flat region."""
    mode = 1 if beyond is not None else (2 if below is not None else 0)
    return np.float32(below or 0.0), np.float32(beyond or 0.0), mode


def _2d(x: np.ndarray) -> np.ndarray:
    return x.reshape(1, -1) if x.ndim == 1 else x.reshape(x.shape[0], -1)


def _layout(tensors) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Addresses and 2-D shapes (rows = first dim) of contiguous float32 CPU tensors."""
    ptrs = np.array([t.data_ptr() for t in tensors], dtype=np.int64)
    if all(t.dim() == 2 for t in tensors):
        shapes = np.array([t.shape for t in tensors], dtype=np.int64).reshape(-1, 2)
        return ptrs, shapes[:, 0].copy(), shapes[:, 1].copy()
    rows = np.array([t.shape[0] if t.dim() else 1 for t in tensors], dtype=np.int64)
    cols = np.array([t.numel() // max(t.shape[0], 1) if t.dim() else 1 for t in tensors], dtype=np.int64)
    return ptrs, rows, cols


def usable(tensors) -> bool:
    """Can the kernels read all these tensors in place (contiguous float32 on the CPU)?"""
    import torch

    if not AVAILABLE or not tensors:
        return False
    first = tensors[0]
    if first is None or first.device.type != "cpu" or first.dtype != torch.float32:
        return False
    for t in tensors:
        if t is None or t.dtype != first.dtype or not t.is_contiguous():
            return False
    return True


def moments(x: np.ndarray, out: np.ndarray) -> None:
    """out[:2] = (Σx, Σx²) of a float32 array."""
    _moments(_2d(x), out)


def moments_flat(x: np.ndarray, below: float | None, beyond: float | None, unit: np.ndarray, out: np.ndarray) -> None:
    """out[:4] = (Σh, Σh², flat entries, units flat in every row) for h of shape
    (batch, units); flat means |h| > beyond, or else h ≤ below. `unit` is
    float32 scratch with at least `units` entries."""
    _moments_flat(x, *_flat_args(below, beyond), unit, out)


def weight_moments(w: np.ndarray, prev: np.ndarray, out: np.ndarray) -> None:
    """out[:4] = (ΣW, ΣW², ΣΔ, ΣΔ²), Δ = W - prev."""
    _weight_moments(_2d(w), _2d(prev), out)


def moments_many(tensors, out: np.ndarray) -> None:
    """out[k, :2] = (Σ, Σ²) of tensors[k], for contiguous float32 CPU tensors
    (see `usable`), read in place by one call: no stacking copy, no per-tensor
    call overhead. The caller keeps the tensors alive during the call."""
    ptrs, rows, cols = _layout(tensors)
    _moments_many(ptrs, rows, cols, out)


def moments_flat_many(tensors, below: float | None, beyond: float | None, out: np.ndarray) -> None:
    """out[k, :4] = `moments_flat` of each (batch, units) tensor, in one call."""
    ptrs, rows, cols = _layout(tensors)
    unit = np.empty(int(cols.max()), dtype=np.float32)
    _moments_flat_many(ptrs, rows, cols, *_flat_args(below, beyond), unit, out)


def raw_moments(x: np.ndarray, out: np.ndarray) -> None:
    """`moments` for a 2-D C-contiguous float32 array, without reshaping (hot path)."""
    _moments(x, out)


def raw_flat_kernel(below: float | None, beyond: float | None):
    """(kernel, args) to call as kernel(x, *args, unit, out) on the hot path,
    or (None, None) for an activation with no flat region."""
    args = _flat_args(below, beyond)
    return (_moments_flat, args) if args[2] else (None, None)


def warm_up() -> None:
    """Compile (or load from Numba's cache) every kernel now, not mid-run."""
    if not AVAILABLE:
        return
    import torch

    x = np.ones((2, 3), np.float32)
    out = np.zeros(6)
    unit = np.zeros(3, np.float32)
    moments(x, out)
    moments_flat(x, None, 1.0, unit, out)
    moments_flat(x, 0.0, None, unit, out)
    weight_moments(x, x.copy(), out)
    ts = [torch.ones(2, 3), torch.zeros(4, 5)]
    out2 = np.zeros((2, 4))
    moments_many(ts, out2)
    moments_flat_many(ts, None, 1.0, out2)
    moments_flat_many(ts, 0.0, None, out2)
