"""`python -m core run` and `python -m core theory`, per CLI.md."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.io.cli import main
from core.schema import RunConfig
from core.run.engine import train
from core.io.export import layers_equal, result_from_json

ROOT = Path(__file__).resolve().parents[1]
CLI_COLUMNS = ["step", "layer", "preact_mean", "preact_var", "act_mean", "act_var", "grad_preact_var", "grad_act_var",
               "weight_var", "weight_grad_var", "update_ratio", "saturation", "dead_units", "loss"]
SMALL = ["--depth", "3", "--width", "8", "--dataset", "gaussian", "--batch-size", "16", "--steps", "4", "--seed", "3"]
SMALL_CFG = RunConfig(depth=3, width=8, dataset="gaussian", batch_size=16, steps=4, seed=3)


def run_cli(args, capsys):
    code = main(["run", *args])
    out, err = capsys.readouterr()
    return code, out, err


def read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return result_from_json(path.read_bytes()).layers


@pytest.mark.parametrize("ext", ["csv", "parquet", "json"])
def test_run_writes_the_table_with_cli_md_columns(ext, tmp_path, capsys):
    out = tmp_path / f"run.{ext}"
    code, stdout, err = run_cli([*SMALL, "--out", str(out)], capsys)
    assert code == 0 and out.exists()
    assert "finished" in err and len(err.strip().splitlines()) == 1
    df = read(out)
    assert set(CLI_COLUMNS) <= set(df.columns)
    assert [c for c in df.columns if c in CLI_COLUMNS] == CLI_COLUMNS
    want = train(SMALL_CFG).layers  # the same config in-process: the same numbers
    assert len(df) == len(want) == 5 * 3
    for c in CLI_COLUMNS:
        np.testing.assert_array_equal(df[c].to_numpy(dtype=float), want[c].to_numpy(dtype=float), err_msg=c)
    if ext == "json":
        doc = json.loads(out.read_bytes())
        assert RunConfig.from_dict(doc["config"]) == SMALL_CFG and {"layers", "steps", "diagnosis"} <= set(doc)


def test_steps_zero_records_only_step_zero(tmp_path, capsys):
    out = tmp_path / "s0.csv"
    code, _, _ = run_cli([*SMALL, "--steps", "0", "--out", str(out)], capsys)
    df = pd.read_csv(out)
    assert code == 0 and df["step"].tolist() == [0, 0, 0] and df["layer"].tolist() == [1, 2, 3]
    assert df["update_ratio"].isna().all()


def test_record_every_zero_records_nothing(tmp_path, capsys):
    for ext in ("csv", "json"):
        out = tmp_path / f"r0.{ext}"
        code, _, _ = run_cli([*SMALL, "--record-every", "0", "--out", str(out)], capsys)
        assert code == 0
        if ext == "csv":
            df = pd.read_csv(out)
            assert len(df) == 0 and set(CLI_COLUMNS) <= set(df.columns)
        else:
            doc = json.loads(out.read_bytes())
            assert doc["layers"] == [] and doc["steps"] == []


def test_record_every_n(tmp_path, capsys):
    out = tmp_path / "r3.csv"
    run_cli([*SMALL, "--steps", "7", "--record-every", "3", "--out", str(out)], capsys)
    assert sorted(set(pd.read_csv(out)["step"])) == [0, 3, 6, 7]


def test_widths_and_booleans(tmp_path, capsys):
    out = tmp_path / "w.json"
    code, _, _ = run_cli(["--widths", "6,5,4", "--dataset", "moons", "--batch-size", "8", "--steps", "1",
                          "--no-bias", "--batchnorm", "--activation", "relu", "--init", "kaiming_normal",
                          "--optimizer", "adam", "--lr", "0.01", "--out", str(out)], capsys)
    assert code == 0
    r = result_from_json(out.read_bytes())
    assert r.config == RunConfig(widths=(6, 5, 4), dataset="moons", batch_size=8, steps=1, bias=False, batchnorm=True,
                                 activation="relu", init="kaiming_normal", optimizer="adam", lr=0.01)
    assert layers_equal(r, train(r.config))


BAD = [
    (["--depth", "0"], "depth"),
    (["--depth", "abc"], "depth"),
    (["--activation", "swishy"], "activation"),
    (["--init", "he"], "init"),
    (["--dataset", "mnist"], "dataset"),
    (["--sigma-w", "-1"], "sigma_w"),
    (["--lr", "nan"], "lr"),
    (["--widths", "8,0"], "widths"),
    (["--widths", "8,4", "--depth", "3"], "widths"),
    (["--dataset", "digits", "--batch-size", "5000"], "batch_size"),
    (["--dataset", "digits", "--input-dim", "3"], "input_dim"),
    (["--bogus", "1"], "--bogus"),
    (["--out"], "--out"),
]


@pytest.mark.parametrize("args,word", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_values_exit_2_with_one_sentence(args, word, tmp_path, capsys):
    out = tmp_path / "never.csv"
    argv = [*args, "--out", str(out)] if args != ["--out"] else ["--depth", "2"]  # the last one: no --out at all
    code, stdout, err = run_cli(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert word in lines[0] and "Traceback" not in err
    assert not out.exists() and stdout == ""


@pytest.mark.parametrize("name", ["run.txt", "run", "run.csv.bak"])
def test_bad_extension_exit_2(name, tmp_path, capsys):
    code, _, err = run_cli([*SMALL, "--out", str(tmp_path / name)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and ".csv" in err
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_exit_2(tmp_path, capsys):
    code, _, err = run_cli([*SMALL, "--steps", "0", "--out", str(tmp_path / "no" / "such" / "dir.csv")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_diverged_run_exits_0_and_says_where(tmp_path, capsys):
    out = tmp_path / "div.csv"
    code, _, err = run_cli(["--depth", "50", "--width", "16", "--dataset", "gaussian", "--batch-size", "16",
                            "--activation", "relu", "--init", "normal", "--sigma-w", "10", "--steps", "5",
                            "--out", str(out)], capsys)
    assert code == 0
    assert "diverged" in err and "layer" in err
    text = out.read_text()
    assert ",nan," in text or ",inf," in text


def test_theory_json_has_the_documented_keys(capsys):
    code = main(["theory", "--activation", "tanh", "--sigma-w", "1.5", "--sigma-b", "0.1", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0

    def no_constants(name):
        raise ValueError(name)

    doc = json.loads(out, parse_constant=no_constants)  # strict JSON: no NaN/Infinity
    for key in ("q_star", "chi1", "critical_sigma_w2", "depth_scale_q", "depth_scale_c"):
        assert key in doc
    assert doc["chi1"] > 1  # σ_w = 1.5 with tanh is in the chaotic phase
    # critical point of ReLU without biases: σ_w² = 2, χ₁ = 1 (He)
    main(["theory", "--activation", "relu", "--sigma-w", "1", "--sigma-b", "0", "--json"])
    doc = json.loads(capsys.readouterr()[0], parse_constant=no_constants)
    assert doc["critical_sigma_w2"] == pytest.approx(2.0, rel=1e-6)
    assert doc["chi1"] == pytest.approx(0.5, rel=1e-6)


@pytest.mark.parametrize("args", [["--activation", "nope", "--sigma-w", "1", "--sigma-b", "0"],
                                  ["--activation", "tanh", "--sigma-w", "x", "--sigma-b", "0"],
                                  ["--activation", "tanh", "--sigma-b", "0"]])
def test_theory_bad_values_exit_2(args, capsys):
    assert main(["theory", *args]) == 2
    assert len(capsys.readouterr()[1].strip().splitlines()) == 1


# -- the real entry point, in a fresh interpreter --------------------------------------------------------

def python_m_core(args, env_extra=None, timeout=120):
    env = {**os.environ, **(env_extra or {})}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_python_m_core_bad_value_exit_status_2_one_line():
    p = python_m_core(["run", "--depth", "-3", "--out", "x.csv"])
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1 and "depth" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.slow
def test_python_m_core_without_numba_gives_the_same_table(tmp_path):
    """GFL_NO_NUMBA=1: the PyTorch reductions, in a real process, agree with the in-process run."""
    out = tmp_path / "nonumba.json"
    args = ["run", "--widths", "32,24,16", "--activation", "tanh", "--dataset", "digits", "--batch-size", "32",
            "--steps", "3", "--optimizer", "adam", "--lr", "0.01", "--out", str(out)]
    p = python_m_core(args, {"GFL_NO_NUMBA": "1"})
    assert p.returncode == 0, p.stderr
    theirs = result_from_json(out.read_bytes())
    ours = train(theirs.config)
    np.testing.assert_array_equal(theirs.steps, ours.steps)
    np.testing.assert_allclose(theirs.stats, ours.stats, rtol=1e-4, atol=1e-12)


def test_an_argument_with_a_control_character_still_gets_one_line(capsys):
    """Found by the CLI fuzz test: a carriage return in an argument split the sentence in two,
    and the top-level parser pointed at `python -m core core --help`."""
    assert main(["run", "\r", "--out", "0"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "\r" not in err and "\\r" in err, err
    assert "`python -m core --help`" in err
    assert main(["run", "--depth", "3"]) == 2
    assert "`python -m core run --help`" in capsys.readouterr().err


def test_aliases_are_read_as_the_registered_names(tmp_path, capsys):
    out = tmp_path / "alias.json"
    code, _, err = run_cli([*SMALL, "--steps", "0", "--activation", "swish", "--init", "he_normal", "--out", str(out)],
                           capsys)
    assert code == 0, err
    r = result_from_json(out.read_bytes())
    assert (r.config.activation, r.config.init) == ("silu", "kaiming_normal")
    assert layers_equal(r, train(SMALL_CFG.replace(steps=0, activation="silu", init="kaiming_normal")))
    assert main(["theory", "--activation", "Swish", "--sigma-w", "1.4", "--sigma-b", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["q_star"] is not None
