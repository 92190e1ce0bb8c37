"""core/ is plain Python: no module in it imports Streamlit (STYLE.md, example 1)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            names.add(str(node.args[0].value))
    return names


def test_no_core_module_imports_streamlit():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 10
    offenders = {p.name: sorted(m for m in imported_modules(p) if m.split(".")[0] == "streamlit") for p in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_checker_sees_imports(tmp_path):
    probe = tmp_path / "m.py"
    probe.write_text("def f():\n    import streamlit as st\nfrom streamlit.runtime import x\n"
                     "import importlib\nimportlib.import_module('streamlit')\n")
    assert {"streamlit", "streamlit.runtime"} <= imported_modules(probe)


def test_importing_every_core_module_loads_no_streamlit():
    modules = sorted(f"core.{p.stem}" for p in CORE.glob("*.py") if p.stem != "__main__")
    code = ("import sys, importlib\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] == 'streamlit'))\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=CORE.parent, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"
