"""Settings in the URL: reading them (leniently) and building share links.

A link carries every RunConfig field under its own name (CLI.md), e.g.
`/Explore?depth=30&activation=relu&init=kaiming_normal&seed=1`. Compare links
carry A's settings under the plain names and B's under the same names
prefixed `b_`. Invalid values fall back to the default and come back as notes
for people, which `show_notes` puts on the page.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping
from urllib.parse import urlencode

import streamlit as st

from core.schema import FIELDS, RunConfig

from .markdown import escape_markdown
from .nav import PAGES

B_PREFIX = "b_"
DEFAULT_BASE = "http://localhost:8501"


# -- reading ----------------------------------------------------------------------------------------

def _params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    if params is None:
        qp = st.query_params
        return {k: (qp.get_all(k) if len(qp.get_all(k)) > 1 else qp[k]) for k in qp}
    return dict(params)


MAX_UNKNOWN_NAMED = 5  # a link with thousands of made-up keys gets one short note, not thousands


def _unknown_note(keys: list[str], hint: str) -> list[str]:
    """One note for every unknown parameter, naming the first few."""
    if not keys:
        return []
    named = ", ".join(_show(k) for k in keys[:MAX_UNKNOWN_NAMED])
    more = f" and {len(keys) - MAX_UNKNOWN_NAMED:,} more" if len(keys) > MAX_UNKNOWN_NAMED else ""
    what = "parameter" if len(keys) == 1 else "parameters"
    return [f"Unknown {what} {named}{more} {'was' if len(keys) == 1 else 'were'} ignored; {hint}"]


def _show(key: str) -> str:
    text = str(key)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _known(key: str, prefixes: Iterable[str]) -> bool:
    return any(key.startswith(p) and key[len(p):] in FIELDS for p in prefixes)


def config_from_query(params: Mapping[str, Any] | None = None, *, prefix: str = "",
                      other_prefixes: Iterable[str] = ()) -> tuple[RunConfig, list[str]]:
    """The RunConfig in the URL (default: `st.query_params`) and notes on what
    could not be used, each naming the parameter. Lenient: a bad value falls
    back to its default, unknown parameters are ignored with one note. Keys
    that start with one of `other_prefixes` (e.g. Compare's `b_`) are skipped."""
    params = _params(params)
    others = tuple(p for p in other_prefixes if p and p != prefix)
    unknown = [str(k) for k in params if not _known(str(k), (prefix, *others))]
    known = {k: v for k, v in params.items() if _known(str(k), (prefix, *others))}
    ignore = [k for k in known if others and str(k).startswith(others)]
    cfg, notes = RunConfig.from_query(known, prefix=prefix, ignore=ignore)
    hint = f"known parameters: {', '.join(FIELDS)}" + (
        f" (and the same names prefixed {', '.join(others)})." if others else ".")
    return cfg, notes + _unknown_note(unknown, hint)


def compare_from_query(params: Mapping[str, Any] | None = None) -> tuple[RunConfig, RunConfig, list[str]]:
    """(A, B, notes) from a Compare URL: A under the plain names, B as A with
    the `b_` parameters changed. An invalid B value falls back to A's value."""
    params = _params(params)
    a, notes = config_from_query(params, other_prefixes=(B_PREFIX,))
    b_params = {k: v for k, v in params.items() if _known(str(k), (B_PREFIX,))}  # unknown ones: noted with A's
    b, b_notes = RunConfig.from_query(b_params, prefix=B_PREFIX, base=a, using="A's value")
    return a, b, notes + [n if n.startswith("Parameter ") else f"Setting B: {n}" for n in b_notes]


MAX_NOTES = 40  # a screenful; a link that earns more gets "…and N more"


def show_notes(notes: list[str], what: str = "this link") -> None:
    """One st.warning listing what in the URL could not be used (each note
    names its parameter). The notes quote the link, so they are escaped:
    a value in a link can never become a link, an image or a formula here."""
    if notes:
        shown = notes[:MAX_NOTES]
        more = [f"…and {len(notes) - MAX_NOTES:,} more."] if len(notes) > MAX_NOTES else []
        st.warning(f"Some settings in {what} were not used as written:\n\n"
                   + "\n".join(f"- {escape_markdown(n)}" for n in shown + more), icon=":material/link_off:")


# -- writing ----------------------------------------------------------------------------------------

def explore_query(cfg: RunConfig) -> dict[str, str]:
    """Every setting of `cfg` as query parameters (for st.page_link(query_params=...))."""
    return cfg.to_query()


def compare_query(a: RunConfig, b: RunConfig) -> dict[str, str]:
    """A's settings under the plain names, B's that differ from A prefixed `b_`."""
    qa, qb = a.to_query(), b.to_query()
    query = dict(qa)
    for k, v in qb.items():
        if qa.get(k) != v:
            query[B_PREFIX + k] = v
    if b.widths is None and a.widths is not None:  # B went back to depth/width
        query[B_PREFIX + "widths"] = "none"
    if b.input_dim is None and a.input_dim is not None:
        query[B_PREFIX + "input_dim"] = "none"
    for k in qa.keys() - qb.keys() - {"widths", "input_dim", "depth", "width"}:
        # a setting A's link carries and B's leaves out (B is an MLP, or B's arch does not take A's option):
        # B's own value, so that B does not inherit A's
        query[B_PREFIX + k] = FIELDS[k].format(getattr(b, k))
    return query


def app_url() -> str:
    """The app's root URL as the browser sees it (no page, no query), e.g.
    http://localhost:8501; DEFAULT_BASE outside a browser session (tests)."""
    try:
        url = st.context.url
    except Exception:
        url = None
    if not url:
        return DEFAULT_BASE
    url = url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    for page in PAGES:
        if url.endswith("/" + page.label):
            return url[: -len(page.label) - 1]
    return url


def page_url(page: str, query: Mapping[str, str] | list[tuple[str, str]], base: str | None = None) -> str:
    base = (app_url() if base is None else base).rstrip("/")
    return f"{base}/{page}?{urlencode(query)}"


def explore_url(cfg: RunConfig, base: str | None = None) -> str:
    """The full Explore URL that replays `cfg` (every setting, seed included)."""
    return page_url("Explore", explore_query(cfg), base)


def compare_url(a: RunConfig, b: RunConfig, base: str | None = None) -> str:
    """The full Compare URL of A vs B."""
    return page_url("Compare", compare_query(a, b), base)


def share_box(url: str, *, label: str = "Share this experiment") -> None:
    """The link in a copyable code box (the copy button is in its corner)."""
    st.markdown(f"**{label}**")
    st.code(url, language=None, wrap_lines=True)
    st.caption("The link holds every setting, the seed included: opening it replays the same run.")


__all__ = ["B_PREFIX", "config_from_query", "compare_from_query", "show_notes", "explore_query", "compare_query",
           "app_url", "page_url", "explore_url", "compare_url", "share_box"]
