"""The deployment files say what the hosting issue asks for."""
import tomllib
from pathlib import Path

import pytest

from core.limits import Limits

ROOT = Path(__file__).resolve().parent.parent


def test_streamlit_config_is_production_ready():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["headless"] is True
    assert cfg["server"]["fileWatcherType"] == "none"
    assert cfg["server"]["enableXsrfProtection"] is True
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["client"]["showErrorDetails"] == "none"


def test_dockerfile_runs_as_non_root_with_a_health_check():
    lines = [l.strip() for l in (ROOT / "Dockerfile").read_text().splitlines()]
    users = [l.split()[1] for l in lines if l.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(l.startswith("EXPOSE 8501") for l in lines)
    health = "\n".join(lines[lines.index(next(l for l in lines if l.startswith("HEALTHCHECK"))):])
    assert "/_stcore/health" in health
    assert any("download.pytorch.org/whl/cpu" in l and "torch==2.13.0" in l for l in lines)


def test_limits_come_from_environment_variables():
    lim = Limits.from_env({"GFL_MAX_DEPTH": "7", "GFL_MAX_RUN_SECONDS": "12.5", "GFL_MAX_CONCURRENT_RUNS": "3"})
    assert (lim.max_depth, lim.max_run_seconds, lim.max_concurrent_runs) == (7, 12.5, 3)
    assert Limits.from_env({}) == Limits()


@pytest.mark.parametrize("value", ["abc", "-3", "0"])
def test_bad_limit_environment_variable_is_one_sentence(value):
    with pytest.raises(ValueError, match="GFL_MAX_DEPTH"):
        Limits.from_env({"GFL_MAX_DEPTH": value})


def test_limit_violation_names_the_field_and_the_variable():
    from core.schema import RunConfig

    lim = Limits(max_depth=10, max_steps=100, max_work=10**12)
    field, sentence = lim.violation(RunConfig(depth=11))
    assert field == "depth" and "GFL_MAX_DEPTH" in sentence and "11" in sentence
    field, sentence = lim.violation(RunConfig(depth=5, steps=101))
    assert field == "steps" and "GFL_MAX_STEPS" in sentence
    assert lim.violation(RunConfig(depth=5, steps=100)) is None
    small = Limits(max_work=1000)
    field, sentence = small.violation(RunConfig(depth=2, width=8))
    assert field == "width" and "parameters" in sentence


def test_no_full_garbage_collection_after_every_rerun():
    # A watched run's training ran 5-9x slower with Streamlit's default post-script gc.collect().
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["runner"]["postScriptGC"] is False
