"""Property test: random links open every page safely.

Hypothesis throws random query strings at each page through AppTest (no Run
is pressed: rendering only): unknown keys, huge, negative, NaN and infinite
numbers, empty values, Unicode (right-to-left, emoji, control characters),
very long values, repeated keys, Markdown and HTML, and Compare's `b_` keys.
For every link:

- the page raises nothing and no element shows a traceback;
- every known parameter whose value is invalid on its own (by the field's
  declared parse and range) is named in a visible note (st.warning/st.info);
- the notes are escaped: a value from a link never renders as a link.

Home and Learn take no settings: for them only the first point applies.
The random tests (280 page renders, about a minute) are marked slow; the
fixed cases at the end are not.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from core.schema import FIELDS, ConfigError
from core.limits import HARD
from core.registry import ACTIVATIONS, DATASETS, INITIALIZERS, OPTIMIZERS

ROOT = Path(__file__).resolve().parent.parent
PAGES = {
    "Home": ROOT / "app.py",
    "Explore": ROOT / "pages" / "1_Explore.py",
    "Compare": ROOT / "pages" / "2_Compare.py",
    "Theory": ROOT / "pages" / "3_Theory.py",
    "Learn": ROOT / "pages" / "4_Learn.py",
}
TIMEOUT = 60
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                print_blob=True)

# -- values -------------------------------------------------------------------------------------------------

HOSTILE = [
    "", " ", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e309", "-1e309", "1e308", "-1", "-0", "0", "+3",
    "99999999999999999999", "1" * 13, "9" * 5000, "0x10", "1_000", "1e3", "3.", ".5", "1,2,3", "0,0", ",,,", "3,",
    "1," * 1001, "٣", "１２", "½", "²", "\u202e321", "\u200f12", "مرحبا", "שלום", "🔥", "👩‍👩‍👧‍👦", "\x00", "\x1b[31mred",
    "\n\r\t", "<script>alert(1)</script>", "[click here](https://evil.example/login)", "![x](https://evil.example/x.png)",
    "https://evil.example", "www.evil.example", "$\\frac{1}{0}$", "**bold** _it_", ":red[alarm]", "`code`",
    "../../etc/passwd", "__import__('os').system('id')", "{{7*7}}", "%s%s%n", "true", "false", "none", "null",
    "default", "TRUE", "yes", "maybe",
]
# Valid values too, so that bad values are mixed with good ones (kept small: rendering, not training, is tested).
VALID = {
    "depth": ["1", "3", "12", str(HARD.max_depth)], "width": ["1", "16", "64", str(HARD.max_width)],
    "widths": ["16,8", "4,4,4", "none"], "input_dim": ["4", "none"],
    "activation": list(ACTIVATIONS), "init": list(INITIALIZERS), "sigma_w": ["0", "0.5", "2.5", "100"],
    "sigma_b": ["0", "0.1"], "bias": ["true", "0"], "batchnorm": ["on", "false"], "dataset": list(DATASETS),
    "batch_size": ["2", "64", str(HARD.max_batch_size)], "steps": ["0", "50", str(HARD.max_steps)],
    "lr": ["0.01", "1000"], "optimizer": list(OPTIMIZERS), "seed": ["0", "7", str(2**31 - 1)],
    "record_every": ["0", "5"], "eval_every": ["0", "10"],
}
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)  # any Unicode a URL can carry
NUMBER = st.one_of(st.integers(-10**30, 10**30).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr))


def value_for(name: str | None):
    """Text for one parameter: hostile, random, numeric, or (for a known name) valid."""
    options = [st.sampled_from(HOSTILE), TEXT, NUMBER, st.text(min_size=300, max_size=3000)]
    if name in VALID:
        options.append(st.sampled_from(VALID[name]))
    return st.one_of(*options)


@st.composite
def queries(draw, prefixes=("",)):
    """A query as AppTest takes it: key → text, or a list of texts (a repeated key)."""
    known = st.sampled_from([p + name for p in prefixes for name in FIELDS])
    unknown = st.one_of(TEXT, st.sampled_from(["depht", "b_", "b_b_depth", "B_depth", "DEPTH", "depth ", "a" * 500,
                                               "embed", "embed_options", "page"]))
    keys = draw(st.lists(st.one_of(known, known, unknown), max_size=10, unique=True))
    query = {}
    for key in keys:
        name = key.split("_", 1)[1] if key.startswith("b_") and key[2:] in FIELDS else key
        value = value_for(name if name in FIELDS else None)
        query[key] = draw(st.one_of(value, st.lists(value, min_size=2, max_size=3)))
    return query


# -- the checks -------------------------------------------------------------------------------------------

def invalid_on_its_own(name: str, text: str) -> bool:
    """The field's own parse and range say no (cross-field checks aside)."""
    spec = FIELDS[name]
    try:
        value = spec.parse(text)
        if value is not None:
            spec.check(value)
    except ConfigError:
        return True
    return False


def test_the_oracle_agrees_with_common_sense():
    for name in ("depth", "width", "sigma_w", "lr", "seed", "steps"):
        for bad in ("nan", "inf", "-1", "1e309", "", "abc", "🔥", "9" * 5000):
            assert invalid_on_its_own(name, bad), (name, bad)
    assert not invalid_on_its_own("depth", "12") and not invalid_on_its_own("activation", "relu")
    assert invalid_on_its_own("activation", "[click](https://x)") and invalid_on_its_own("batchnorm", "maybe")


def _walk(node):
    yield node
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for child in children.values():
            yield from _walk(child)


def page_text(at: AppTest) -> str:
    """Every text on the page (labels, help, values, messages) from the element protos."""
    parts = []
    for node in _walk(at._tree):
        proto = getattr(node, "proto", None)
        if proto is not None and getattr(node, "type", "") != "plotly_chart":
            parts.append(str(proto))
    return "\n".join(parts)


def notes_text(at: AppTest) -> str:
    """What the visible notes say, without the list of known parameters in the unknown-parameter note."""
    text = "\n".join(str(e.value) for e in (*at.warning, *at.info))
    return re.sub(r"known parameters: [^\n]*", "", text)


def last(value):
    return value[-1] if isinstance(value, list) else value


def render(page: str, query: dict) -> AppTest:
    at = AppTest.from_file(str(PAGES[page]), default_timeout=TIMEOUT)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def check(page: str, query: dict, prefixes: tuple[str, ...]) -> None:
    at = render(page, query)
    assert not at.exception, (query, [e.value for e in at.exception])
    text = page_text(at)
    assert "Traceback (most recent call last)" not in text and 'File "/' not in text, query
    if not prefixes:
        return
    notes = notes_text(at)
    for key, value in query.items():
        for prefix in prefixes:
            name = key[len(prefix):] if key.startswith(prefix) else None
            if name in FIELDS and invalid_on_its_own(name, str(last(value))):
                assert re.search(rf"(?<![\w]){re.escape(key)}(?![\w])", notes), (key, value, notes)
    # a value from the link never turns into a link or an image
    assert not re.search(r"(?<!\\)\]\(", notes), notes


@pytest.mark.slow
@settings(max_examples=70, **SETTINGS)
@given(queries())
def test_explore_survives_any_link(query):
    check("Explore", query, ("",))


@pytest.mark.slow
@settings(max_examples=70, **SETTINGS)
@given(queries(prefixes=("", "b_")))
def test_compare_survives_any_link(query):
    check("Compare", query, ("", "b_"))


@pytest.mark.slow
@settings(max_examples=60, **SETTINGS)
@given(queries())
def test_theory_survives_any_link(query):
    check("Theory", query, ("",))


@pytest.mark.slow
@settings(max_examples=40, **SETTINGS)
@given(queries(prefixes=("", "b_")))
def test_home_and_learn_survive_any_link(query):
    for page in ("Home", "Learn"):
        check(page, query, ())


# -- fixed cases the fuzz might miss -------------------------------------------------------------------------

def test_markdown_in_a_link_stays_text():
    at = render("Explore", {"activation": "[log in here](https://evil.example/login)", "init": "$x^2$",
                            "dataset": "<img src=x onerror=alert(1)>", "optimizer": "www.evil.example"})
    notes = "\n".join(w.value for w in at.warning)
    assert "\\[log in here\\]" in notes and "\\$x^2\\$" in notes and "\\<img" in notes
    # no bare-URL autolinks either (GFM links them even when escaped; a word joiner stops it)
    assert "https:\u2060//evil" in notes and "www\u2060.evil" in notes


def test_hundreds_of_unknown_parameters_make_one_short_note():
    # (Streamlit itself ignores a query string of more than 1,000 parameters.)
    query = {f"junk{i}": "1" for i in range(900)} | {"depth": "abc"}
    t0 = time.perf_counter()
    at = render("Explore", query)
    assert not at.exception and time.perf_counter() - t0 < 30
    notes = "\n".join(w.value for w in at.warning)
    assert "and 895 more" in notes and "Invalid depth 'abc'" in notes and len(notes) < 3000


def test_repeated_b_key_is_noted():
    at = render("Compare", {"b_depth": ["3", "4"], "b_init": ["nope", "nope"]})
    notes = notes_text(at)
    assert "'b_depth' was given 2 times" in notes and "b_init" in notes
    assert at.slider(key="compare_b_depth").value == 4
