"""Each fact has one home: no registry name is written as a string outside the registry.

Every string literal in core/, ui/, pages/ and app.py (read with `tokenize`, so
comments and docstrings' prose inside longer strings do not count) that equals
the name of an entry of ACTIVATIONS, INITIALIZERS, ARCHITECTURES,
RESIDUAL_SCALES or RECURRENT_INITS, or one of an entry's `aliases` ("swish",
"he_normal"), is a per-name branch or table waiting to go
stale when an entry is added. The few exceptions are declared below, each with
its reason.
"""
from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

from core.registry import ACTIVATIONS, ARCHITECTURES, INITIALIZERS, RECURRENT_INITS, RESIDUAL_SCALES

ROOT = Path(__file__).resolve().parent.parent
# Entry names that are also everyday words of the code ("none" is how a link clears an optional setting),
# so a literal of them is not a name check.
COMMON_WORDS = {"none"}
SCANNED = ["core", "ui", "pages", "app.py"]

# Whole directories not scanned.
SKIPPED_DIRS = {
}

# Every name an entry answers to: its own, and its aliases (core.registry.resolve reads them).
NAMES = {n for reg in (ACTIVATIONS, INITIALIZERS, ARCHITECTURES, RECURRENT_INITS, RESIDUAL_SCALES)
         for name, entry in reg.items() for n in (name, *getattr(entry, "aliases", ()))} - COMMON_WORDS

# (file, names) allowed there, and why. Presets are data: a scenario *is* "sigmoid at depth 20".
ALLOWED: dict[str, tuple[set[str], str]] = {
    "core/registry.py": (NAMES, "the registry is the home of the names"),
    "core/scenarios.py": ({"sigmoid", "tanh", "relu", "selu", "xavier_normal", "kaiming_normal", "normal",
                           "lecun_normal", "orthogonal", "resmlp", "fixup", "cnn", "delta_orthogonal", "rnn",
                           "lstm"},
                          "the Home page's presets are data: settings with a story"),
    "core/sweep/scenarios.py": ({"tanh", "normal", "relu"}, "the shipped sweeps are presets, like the scenarios"),
    "pages/4_Learn.py": ({"sigmoid", "tanh", "relu", "kaiming_normal"},
                         "the lessons' mini-experiments are presets, like the scenarios"),
}


def _files():
    for entry in SCANNED:
        path = ROOT / entry
        yield from ([path] if path.is_file() else sorted(path.rglob("*.py")))


def _skipped(rel: str) -> bool:
    return any(rel == d or rel.startswith(d + "/") for d in SKIPPED_DIRS)


def name_literals(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) of every string literal in `source` whose value is one of `names`."""
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.STRING:
            continue
        try:
            value = ast.literal_eval(tok.string)
        except (ValueError, SyntaxError):  # an f-string: its pieces are not names
            continue
        if isinstance(value, str) and value in names:
            found.append((tok.start[0], value))
    return found


def test_no_registry_name_outside_the_registry():
    names = NAMES
    offences = []
    for path in _files():
        rel = path.relative_to(ROOT).as_posix()
        if _skipped(rel):
            continue
        allowed = ALLOWED.get(rel, (set(), ""))[0]
        offences += [f"{rel}:{line}: {name!r}" for line, name in name_literals(path.read_text(), names)
                     if name not in allowed]
    assert not offences, ("Registry names written outside core/registry.py (put the fact on the "
                          "entry instead):\n" + "\n".join(offences))


def test_the_scanner_finds_a_name_branch():
    """The scanner itself: a name check in code is found, the same word in a comment or in prose is not."""
    src = 'if cfg.activation == "relu":  # relu\n    x = "he said relu"\n    y = {"tanh": 1}\n'
    assert name_literals(src, {"relu", "tanh"}) == [(1, "relu"), (3, "tanh")]


def test_exceptions_are_few_and_still_needed():
    """Every allowed name is really there (a stale exception hides the next offence) and the list stays short."""
    names = NAMES
    assert len(ALLOWED) <= 8
    for rel, (allowed, reason) in ALLOWED.items():
        assert reason
        path = ROOT / rel
        present = {name for _, name in name_literals(path.read_text(), names)} if path.exists() else set()
        assert allowed <= present, f"{rel}: {sorted(allowed - present)} no longer there: drop them from ALLOWED"
