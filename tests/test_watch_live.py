"""The live store: a training script writes (another process), a reader follows it,
and a writer killed with SIGKILL leaves a store that opens with every committed record."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core import watch
from core.watch import view
from core.watch.store import list_runs, read_store, store_path

ROOT = Path(__file__).resolve().parent.parent

WRITER = textwrap.dedent("""
    import sys, time, torch
    import torch.nn.functional as F
    from torch import nn
    from core import watch
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    with watch(model, live=sys.argv[1]) as w:
        for step in range(100000):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()
            w.step(loss)
            if step == 0:
                print("first record", flush=True)
            time.sleep(0.02)
""")


def wait_for(predicate, timeout=60.0):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_reader_follows_a_writer_in_another_process_and_survives_kill_9(tmp_path):
    live = tmp_path / "runs" / "proc"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(live)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "first record", proc.stderr.read()
        path = store_path(live)
        def at_least(n):
            state = read_store(path)
            return state if len(state.steps) >= n else None

        first = wait_for(lambda: at_least(3))
        assert first.live
        assert first.meta["layers"] == ["0", "2", "4"]
        later = wait_for(lambda: at_least(len(first.steps) + 3))
        # records arrive in order, and the older ones do not change while the writer goes on
        assert np.array_equal(later.steps[: len(first.steps)], first.steps)
        assert np.array_equal(later.stats[: len(first.steps)], first.stats, equal_nan=True)
        tail = read_store(path, after_step=int(later.steps[-3, 0]))  # what a follower asks for: the new ones
        assert list(tail.steps[:2, 0]) == list(later.steps[-2:, 0])
        run = view.from_store(later)
        assert run.status == "running" and run.names == ("0", "2", "4")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        after = read_store(path)  # readable, with at least every record seen before the kill
        assert len(after.steps) >= len(later.steps)
        assert np.array_equal(after.stats[: len(later.steps)], later.stats, equal_nan=True)
        assert not after.live
        assert view.from_store(after).status == "stopped"
        assert [n for n, _ in list_runs(live.parent)] == ["proc"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_the_store_holds_the_same_table_as_the_watch_and_its_end(tmp_path):
    model = small_model()
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    with watch(model, every=2, live=str(tmp_path / "same")) as w:
        for _ in range(5):
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            w.step(loss)
    state = read_store(tmp_path / "same.sqlite")
    stats, steps = w.arrays()
    assert np.array_equal(state.stats, stats, equal_nan=True) and np.array_equal(state.steps, steps)
    assert state.meta["status"] == "finished" and not state.live
    assert view.from_store(state).table().equals(w.table())


def test_an_exception_in_the_block_marks_the_store_failed(tmp_path):
    model = small_model()
    with pytest.raises(KeyError):
        with watch(model, live=str(tmp_path / "bad")) as w:
            F.cross_entropy(model(torch.randn(3, 4)), torch.tensor([0, 1, 0])).backward()
            w.step()
            raise KeyError("labels")
    state = read_store(tmp_path / "bad.sqlite")
    assert state.meta["status"] == "failed" and "KeyError" in state.meta["message"]
    assert len(state.steps) == 1


def test_a_file_that_is_not_a_store_gets_one_sentence(tmp_path):
    bad = tmp_path / "x.sqlite"
    bad.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValueError, match="not a readable run store"):
        read_store(bad)
    with pytest.raises(ValueError, match="no run store"):
        read_store(tmp_path / "missing.sqlite")


def test_the_example_script_trains_saves_and_says_how_to_open_it(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "watch_my_model.py"), "--steps", "6",
                          "--runs-dir", str(tmp_path), "--name", "ex"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Follow a run" in out.stdout and "Open a saved run" in out.stdout
    run = view.from_json((tmp_path / "ex.json").read_bytes())
    assert len(run.steps) == 6 and run.names[0] == "stem" and run.names[-1] == "head"
    state = read_store(tmp_path / "ex.sqlite")
    assert state.meta["status"] == "finished" and np.array_equal(state.stats, run.stats, equal_nan=True)
