"""Random argument lists at the CLI: never a traceback, always exit 0 or 2 with one sentence."""
import io
import contextlib

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

import core.run.engine
from core.io import cli
from core.schema import FIELDS
from core.run.record import RunRecord
from core.measure.probes import STAT_COLUMNS

FLAGS = ["--" + n.replace("_", "-") for n in FIELDS] + ["--no-bias", "--no-batchnorm", "--out", "--threads",
                                                       "--quiet", "--json", "--q0", "--help-me", "-x", "--"]
VALUES = st.one_of(
    st.sampled_from(["0", "-1", "1", "3", "1e309", "nan", "inf", "-inf", "", " ", "2.5", "10" * 30, "relu", "tanh",
                     "zeros", "lsuv", "digits", "gaussian", "adam", "true", "false", "8,8", "8,,8", "0,4", "é",
                     "\u202e", "x.csv", "x.parquet", "x.json", "x.txt", "/nonexistent/dir/x.csv"]),
    st.text(max_size=12),
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
ARGV = st.lists(st.one_of(st.sampled_from(FLAGS), VALUES), max_size=12)


def fake_train(cfg, progress=None, threads=1):
    """Validation is what is under test, not training: an empty, finished result."""
    L = len(cfg.hidden_widths)
    return RunRecord(cfg, np.empty((0, L, len(STAT_COLUMNS))), np.empty((0, 4)), "finished")


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as e:  # --help exits 0 through argparse
            code = e.code
    return code, out.getvalue(), err.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["run", "theory", "bogus"]), argv=ARGV)
def test_random_arguments_never_crash(command, argv, monkeypatch, tmp_path):
    monkeypatch.setattr(core.run.engine, "train", fake_train)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli([command, *argv])
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err and "Traceback" not in out
    if code == 2:
        lines = [l for l in err.splitlines() if l.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert lines[0].endswith((".", ")")), lines[0]
