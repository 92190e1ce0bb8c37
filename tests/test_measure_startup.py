"""What a short run costs to start: it loads only what it uses.

A trivial `python -m core run` imports neither Numba (a run that records too
little for the kernels to pay is measured with PyTorch), nor sklearn.datasets
(the digits are read from scikit-learn's data file), nor torch._dynamo (which
torch.optim imports on an optimizer's first calls). The figures themselves
are in bench/bench_startup.py.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.data import _digits

ROOT = Path(__file__).resolve().parent.parent

WHAT_A_RUN_IMPORTED = """
import sys
from core.io.cli import main
for args in {runs!r}:
    assert main(args) == 0
print(" ".join(str(m in sys.modules) for m in ("numba", "sklearn", "torch._dynamo")))
"""


def imported_by(runs: list[list[str]]) -> list[str]:
    code = WHAT_A_RUN_IMPORTED.format(runs=runs)
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout.split()


def test_a_trivial_run_imports_neither_numba_nor_sklearn_nor_dynamo(tmp_path):
    out = str(tmp_path / "x.json")
    assert imported_by([["run", "--steps", "0", "--depth", "3", "--out", out]]) == ["False", "False", "False"]


def test_no_optimizer_imports_torch_dynamo(tmp_path):
    out = str(tmp_path / "x.csv")
    runs = [["run", "--steps", "3", "--depth", "2", "--width", "8", "--batch-size", "8", "--dataset", "gaussian",
             "--optimizer", opt, "--out", out] for opt in ("sgd", "momentum", "adam")]
    assert imported_by(runs)[2] == "False"


def test_digits_are_scikit_learns_digits():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    want = sklearn_datasets.load_digits()
    x, y = _digits()
    np.testing.assert_array_equal(x, want.data)
    np.testing.assert_array_equal(y, want.target)
    assert x.dtype == np.float64 and y.dtype == np.int64
