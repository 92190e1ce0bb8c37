"""Settings in the URL: reading them (leniently), following them, and building share links.

A link carries every RunConfig field under its own name (CLI.md), e.g.
`/Explore?depth=30&activation=relu&init=kaiming_normal&seed=1`. Compare links
carry A's settings under the plain names and B's under the same names
prefixed `b_`. Invalid values fall back to the default and come back as notes
for people, which `show_notes` puts on the page; a value over this server's
limits is brought down to the limit (`Limits.clamp`) with a note.

A scenario link adds `scenario=<key>` (core.scenarios): its settings are the
base, its run starts on open unless `autorun=false`, and the page tells its
story.

The address bar follows the settings: `open_link` reads the URL when a link
arrives (a first visit, a page change, or a URL the page did not write) and
`follow_url` writes every setting back after each change, so the URL in the
address bar is always the current experiment. (Streamlit's `bind=
"query-params"` on each widget was not used: it names the parameter after the
widget's key, which is per page here, drops values equal to the widget's
default, so a link would not carry every setting, and ignores an invalid value
silently where this app names it.)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping
from urllib.parse import urlencode

import streamlit as st

from core.limits import Limits
from core.scenarios import SCENARIOS, Scenario
from core.schema import FIELDS, RunConfig

from .markdown import escape_markdown
from .nav import PAGES
from .session import server_limits
from .state import SlotKeys, just_arrived

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
                      other_prefixes: Iterable[str] = (), base: RunConfig | None = None,
                      using: str = "the default", limits: Limits | None = None) -> tuple[RunConfig, list[str]]:
    """The RunConfig in the URL (default: `st.query_params`) and notes on what
    could not be used, each naming the parameter. Lenient: a bad value falls
    back to `base`'s (default: RunConfig's), unknown parameters are ignored with
    one note, and a value over this server's `limits` (default: its own) is
    brought down to the limit with a note (`Limits.clamp`). Keys that start with
    one of `other_prefixes` (e.g. Compare's `b_`) are skipped."""
    params = _params(params)
    others = tuple(p for p in other_prefixes if p and p != prefix)
    unknown = [str(k) for k in params if not _known(str(k), (prefix, *others))]
    known = {k: v for k, v in params.items() if _known(str(k), (prefix, *others))}
    ignore = [k for k in known if others and str(k).startswith(others)]
    cfg, notes = RunConfig.from_query(known, prefix=prefix, ignore=ignore, base=base, using=using)
    cfg, over = (server_limits() if limits is None else limits).clamp(cfg)
    hint = f"known parameters: {', '.join(FIELDS)}" + (
        f" (and the same names prefixed {', '.join(others)})." if others else ".")
    return cfg, notes + over + _unknown_note(unknown, hint)


def compare_from_query(params: Mapping[str, Any] | None = None, *,
                       limits: Limits | None = None) -> tuple[RunConfig, RunConfig, list[str]]:
    """(A, B, notes) from a Compare URL: A under the plain names, B as A with
    the `b_` parameters changed. An invalid B value falls back to A's value;
    either over the server's limits is brought down to them, with a note."""
    params = _params(params)
    limits = server_limits() if limits is None else limits
    a, notes = config_from_query(params, other_prefixes=(B_PREFIX,), limits=limits)
    b_params = {k: v for k, v in params.items() if _known(str(k), (B_PREFIX,))}  # unknown ones: noted with A's
    b, b_notes = RunConfig.from_query(b_params, prefix=B_PREFIX, base=a, using="A's value")
    b, over = limits.clamp(b)
    return a, b, notes + [n if n.startswith("Parameter ") else f"Setting B: {n}" for n in b_notes + over]


# -- links as the pages open them: settings, notes, a scenario ---------------------------------------

SCENARIO_PARAM = "scenario"  # a scenario's key: its settings are the link's base, its story is shown
AUTORUN_PARAM = "autorun"    # false: a scenario link opens without starting its run
PAGE_PARAMS = (SCENARIO_PARAM, AUTORUN_PARAM)


@dataclass(frozen=True)
class Link:
    """What a page was opened with: the settings (B too, on Compare), the notes on what in the link could
    not be used as written, and the scenario it names (whose run starts on open when `autorun`)."""

    config: RunConfig
    notes: tuple[str, ...] = ()
    scenario: Scenario | None = None
    autorun: bool = False
    b_config: RunConfig | None = None
    query: tuple = field(default=(), compare=False)  # the query it was read from (its own echo test)


def _last(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return str(value[-1]) if value else ""
    return str(value)


def _page_params(params: dict[str, Any]) -> tuple[Scenario | None, bool, list[str]]:
    """The scenario and autorun of a link (popped from `params`), with notes on bad values."""
    notes = []
    raw = params.pop(SCENARIO_PARAM, None)
    scenario = None
    if raw is not None:
        key = _last(raw).strip()
        scenario = SCENARIOS.get(key)
        if scenario is None:
            notes.append(f"Unknown scenario {_show(key)} was ignored; known scenarios: {', '.join(SCENARIOS)}.")
    raw = params.pop(AUTORUN_PARAM, None)
    autorun = True
    if raw is not None:
        word = _last(raw).strip().lower()
        if word in ("true", "1", "yes", "on"):
            autorun = True
        elif word in ("false", "0", "no", "off"):
            autorun = False
        else:
            notes.append(f"Invalid autorun {_show(word)}: must be true or false. Using true.")
    return scenario, autorun and scenario is not None, notes


def _query_key(params: Mapping[str, Any]) -> tuple:
    return tuple(sorted((str(k), tuple(v) if isinstance(v, (list, tuple)) else (str(v),)) for k, v in params.items()))


def read_link(page: str = "Explore", params: Mapping[str, Any] | None = None, *,
              limits: Limits | None = None) -> Link:
    """The link in `params` (default: the URL) as `page` ("Explore" or "Compare") reads it. A scenario's
    settings are the base of the link's own (on Compare, A's and B's: `b_` parameters are B's differences from A)."""
    params = _params(params)
    query = _query_key(params)
    scenario, autorun, notes = _page_params(params)
    if page == "Compare":
        if scenario is not None and scenario.compare is not None:  # the link's own parameters over A's and B's
            params = {**compare_query(scenario.config, scenario.compare), **params}
        a, b, more = compare_from_query(params, limits=limits)
        return Link(a, tuple(notes + more), scenario, autorun, b, query)
    base = scenario.config if scenario is not None else None
    cfg, more = config_from_query(params, base=base, using="the scenario's value" if base else "the default",
                                  limits=limits)
    return Link(cfg, tuple(notes + more), scenario, autorun, None, query)


def _keys(keys: SlotKeys | str) -> SlotKeys:
    return SlotKeys(keys) if isinstance(keys, str) else keys


def open_link(keys: SlotKeys | str, page: str = "Explore") -> tuple[Link, bool]:
    """(the link this page shows, whether it arrived just now).

    A link arrives on a page's first visit in the session, after a visit to another page, or when the
    address bar holds a query this page did not write (`follow_url`): it is read (`read_link`) and becomes
    what the settings widgets are reset to. Otherwise the URL is the page's own echo of its widgets and the
    link it was opened with stays. Arriving with no query at all keeps the settings the session already has
    here (the sidebar's page links carry none)."""
    ss, keys = st.session_state, _keys(keys)
    current = _query_key(_params(None))
    previous: Link | None = ss.get(keys.link)
    echo = current == ss.get(keys.written)
    if echo:
        ss.pop(keys.replaced, None)  # the browser has caught up with what the page wrote
    elif current and current == ss.get(keys.replaced):
        echo = True  # a request sent before the browser's URL changed: stale, not a new link
    arrived = just_arrived()
    if previous is not None and (echo and not arrived or not current and arrived):
        return previous, False
    link = read_link(page)
    ss[keys.link] = link
    return link, True


def settle_link(keys: SlotKeys | str, link: Link, cfg: RunConfig, b: RunConfig | None = None) -> Link:
    """The link that just arrived, with the settings as its widgets hold them (the same, but for what a widget
    itself rounds or bounds): what its notes, its story and its scenario parameter are compared with."""
    link = dataclasses.replace(link, config=cfg, b_config=b if b is not None else link.b_config)
    st.session_state[_keys(keys).link] = link
    return link


def link_query(cfg: RunConfig, link: Link | None, b: RunConfig | None = None) -> list[tuple[str, str]]:
    """The query that describes what the widgets hold now: every setting (B's differences with `b_`), and the
    link's scenario while the settings still are the scenario's (with `autorun=false` if the link said so)."""
    query = list((compare_query(cfg, b) if b is not None else explore_query(cfg)).items())
    if link is not None and link.scenario is not None and cfg == link.config and (b is None or b == link.b_config):
        query.insert(0, (SCENARIO_PARAM, link.scenario.key))
        if not link.autorun:
            query.append((AUTORUN_PARAM, "false"))
    return query


def follow_url(keys: SlotKeys | str, query: list[tuple[str, str]]) -> None:
    """Put `query` in the address bar (if it is not there already), so a copied URL is the current
    experiment; remember it, so that the next run knows the URL is its own echo."""
    ss, keys, now, new = st.session_state, _keys(keys), _query_key(_params(None)), _query_key(dict(query))
    if now != new:
        st.query_params.from_dict(query)
        ss[keys.replaced] = now
    ss[keys.written] = new


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


SHARE_NOTE = ("The link holds every setting, the seed included, as the address bar does: opening it restores "
              "these settings, so pressing **Run** there replays this same run (same weights, same batches, "
              "same table). It does not carry the run's results; download them below.")


def share_box(url: str, *, label: str = "Share this experiment", note: str = SHARE_NOTE) -> None:
    """The link in a copyable code box (the copy button is in its corner), and what it does."""
    st.markdown(f"**{label}**")
    st.code(url, language=None, wrap_lines=True)
    st.caption(note)


def scenario_query(sc: Scenario) -> dict[str, str]:
    """A scenario's link: its key, then every setting (A's and B's differences for a Compare scenario)."""
    query = compare_query(sc.config, sc.compare) if sc.compare is not None else explore_query(sc.config)
    return {SCENARIO_PARAM: sc.key, **query}


__all__ = ["B_PREFIX", "config_from_query", "compare_from_query", "show_notes", "explore_query", "compare_query",
           "app_url", "page_url", "explore_url", "compare_url", "share_box", "Link", "read_link", "open_link",
           "link_query", "follow_url", "settle_link", "scenario_query", "SCENARIO_PARAM", "AUTORUN_PARAM", "SHARE_NOTE"]
