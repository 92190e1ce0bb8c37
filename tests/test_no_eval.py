"""Nothing a user supplies is ever evaluated as code.

Scans every source the app serves or runs (app.py, pages/, ui/, core/; not
tests/ or bench/, which are developer tools) for the ways
Python turns data into code: eval/exec/compile/__import__, unpickling
(pickle, marshal, shelve, dill, joblib, torch.load, numpy allow_pickle,
pandas read_pickle), yaml.load, and for HTML that Streamlit would render
unescaped. Two passes: a plain-text grep (what a reviewer would run) and the
syntax tree (which tells `eval(` from `model.eval()`).

`ALLOWED` lists the places where such a call is fine, each with the reason. (core/io/codegen.py builds code as *text* for the user to
copy; only tests/test_codegen.py executes it, in the tests.)
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([ROOT / "app.py", *(p for d in ("pages", "ui", "core") for p in (ROOT / d).rglob("*.py"))])

# (file relative to the repository, the matched text) → why it is fine
ALLOWED: dict[tuple[str, str], str] = {
    ("core/measure/kernels.py", "subprocess"): "runs one fixed command, this Python importing core.measure.kernels to fill "
                                       "Numba's cache; nothing a user supplies reaches it",
    ("core/workers.py", "subprocess"): "starts the worker processes, one fixed command (this Python running "
                                       "core.workers); the pipes carry our own jobs, validated RunConfigs and results "
                                       "between our own processes, nothing a user supplies",
    ("ui/nav.py", "st.html"): "one fixed style sheet written in the source (_ONE_STOP_CSS: hides Streamlit's own "
                              "Running/Stop widget); no text from a user or a file reaches it",
}

GREP = re.compile(
    r"(?<![\w.])(?:eval|exec|compile|__import__)\s*\("        # the builtins, not model.eval()
    r"|\bpickle\.loads?\b|\bmarshal\.loads?\b|\bshelve\.open\b|\bdill\.|\bcloudpickle\.|\bjoblib\.load\b"
    r"|\byaml\.(?:unsafe_|full_)?load\b|\btorch\.load\b|\bread_pickle\b|allow_pickle\s*=\s*True"
    r"|unsafe_allow_html\s*=\s*True|\bst\.html\b|components\.v1|\bos\.system\b|\bsubprocess\b"
)
DANGEROUS_BUILTINS = {"eval", "exec", "compile", "__import__", "breakpoint"}
DANGEROUS_MODULES = {"pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib", "subprocess", "yaml"}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_scan_covers_the_app():
    names = {_rel(p) for p in SOURCES}
    assert {"app.py", "pages/1_Explore.py", "ui/saved.py", "ui/share.py", "core/schema.py", "core/io/export.py"} <= names
    assert not any(n.startswith("tests/") for n in names)


def test_the_grep_tells_eval_from_a_method_called_eval():
    assert GREP.search("x = eval(text)") and GREP.search("exec (code)") and GREP.search("pickle.loads(b)")
    assert GREP.search("yaml.load(f)") and GREP.search("st.markdown(s, unsafe_allow_html=True)")
    assert not GREP.search("self.net.eval()") and not GREP.search("self._wants_eval(s)")
    assert not GREP.search('"model.compile("')  # codegen's Keras text: a string, not a call (see the AST pass)


def test_no_source_turns_data_into_code_grep():
    found = []
    for path in SOURCES:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in GREP.finditer(line):
                if (_rel(path), m.group(0)) not in ALLOWED:
                    found.append(f"{_rel(path)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


def test_no_source_turns_data_into_code_ast():
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            hit = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in DANGEROUS_BUILTINS:
                hit = node.func.id
            elif isinstance(node, ast.Import):
                hit = next((a.name for a in node.names if a.name.split(".")[0] in DANGEROUS_MODULES), None)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in DANGEROUS_MODULES:
                hit = node.module
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                base = owner.id if isinstance(owner, ast.Name) else None
                if (base, node.func.attr) in {("torch", "load"), ("np", "load"), ("numpy", "load"),
                                              ("pd", "read_pickle"), ("os", "system"), ("os", "popen")}:
                    hit = f"{base}.{node.func.attr}"
                if any(k.arg == "unsafe_allow_html" for k in node.keywords):
                    hit = "unsafe_allow_html"
            if hit is not None and (_rel(path), hit) not in ALLOWED:
                found.append(f"{_rel(path)}:{node.lineno}: {hit}")
    assert not found, "\n".join(found)
