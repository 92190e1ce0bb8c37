"""`python -m core run` checks what it can before it trains: --out must be writable, and a
network far beyond the dashboard's limits gets an estimate of its time and memory first."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.io.cli import estimate_run, main
from core.limits import Limits
from core.schema import RunConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("where", ["missing-folder/run.json", "a-directory.json"])
def test_an_unwritable_out_fails_before_training_in_one_sentence(tmp_path, capsys, where):
    (tmp_path / "a-directory.json").mkdir()
    out = str(tmp_path / where)
    # far too long a run to finish within the test: it must be refused before the first step
    code = main(["run", "--steps", "10000000", "--depth", "3", "--dataset", "gaussian", "--out", out])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: Cannot write --out ") and repr(out) in err


def test_an_existing_out_keeps_its_contents_until_the_run_is_written(tmp_path, capsys):
    out = tmp_path / "run.csv"
    out.write_text("old")
    (tmp_path / "sub").mkdir()
    assert main(["run", "--steps", "0", "--depth", "2", "--width", "8", "--dataset", "gaussian",
                 "--out", str(tmp_path / "sub" / "new.csv")]) == 0
    assert out.read_text() == "old"
    assert main(["run", "--steps", "0", "--depth", "2", "--width", "8", "--dataset", "gaussian", "--out", str(out)]) == 0
    assert out.read_text().startswith("step,layer")
    capsys.readouterr()


def test_a_network_far_beyond_the_servers_limits_gets_an_estimate_first(tmp_path):
    cfg = RunConfig(depth=100, width=1024, steps=5000)
    assert Limits().violation(cfg) is not None
    seconds, memory = estimate_run(cfg)
    # 100 layers of 1024² weights at batch 128: ~8·10¹⁰ flops a step; the history alone is ~350 MB
    assert 10 * 60 < seconds < 10 * 3600 and 0.5 * 2**30 < memory < 8 * 2**30
    # the note comes before the first step: a run of 0 steps on a small net that is over the step limit
    p = subprocess.run([sys.executable, "-m", "core", "run", "--depth", "2", "--width", "8", "--steps", "0",
                        "--batch-size", "2048", "--dataset", "gaussian", "--out", str(tmp_path / "x.json")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0
    lines = p.stderr.splitlines()
    assert lines[0].startswith("note: beyond the dashboard's limits (batch_size 2,048 is over this server's limit of 1,024")
    assert "expect about" in lines[0] and "GiB of memory" in lines[0]
    assert lines[-1].startswith("finished:")


def test_the_memory_estimate_counts_every_position_a_weight_is_applied(tmp_path, capsys):
    # A recurrent layer keeps its units' tensors at every time step for the backward pass: 10 layers of 1,024
    # units, batch 2,048, 10⁵ time steps hold 4 tensors × 4 bytes × 2,048 × 10,240 × 10⁵ ≈ 3.4·10¹³ bytes,
    # beyond any machine here, though the weights (2·10⁷ parameters) are small.
    cfg = RunConfig(arch="rnn", depth=10, width=1024, batch_size=2048, seq_len=100_000, dataset="recall", steps=1)
    memory = estimate_run(cfg)[1]
    assert memory >= 16 * 2048 * 10 * 1024 * 100_000
    flat = RunConfig(depth=10, width=1024, batch_size=2048, dataset="gaussian", steps=1)   # the same MLP: 1 position
    assert estimate_run(flat)[1] < 2**31
    code = main(["run", "--arch", "rnn", "--depth", "10", "--width", "1024", "--batch-size", "2048",
                 "--seq-len", "100000", "--dataset", "recall", "--steps", "1", "--out", str(tmp_path / "x.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: This network needs about ") and "GiB of memory" in err[-1]


def test_a_run_within_the_limits_says_nothing_before_it_starts(tmp_path):
    p = subprocess.run([sys.executable, "-m", "core", "run", "--depth", "2", "--width", "8", "--steps", "0",
                        "--dataset", "gaussian", "--out", str(tmp_path / "x.json")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and p.stderr.splitlines()[0].startswith("finished:")
