"""Every `st.session_state` key the pages use, named in one place.

A page's keys hang off its *slot*, a short name ("explore", "compare_a",
"theory", ...): `SlotKeys(slot)` names each key a slot can have, so no module
writes a key as a bare string. Each page declares its slots (and its own few
page-level keys) once, at the top of its ui module or page file:

    KEYS = SlotKeys("explore")
    st.session_state[KEYS.run]           # this page's Run, or None

`slot(name)` returns the SlotKeys with the slot's stored values set up to
their defaults (behind `if key not in st.session_state`), so code that reads
them may index `st.session_state` directly.

Widget keys (`widget(field)`, buttons, charts) are Streamlit's: the widget
itself creates and defaults them, they are only named here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st


@dataclass(frozen=True)
class SlotKeys:
    """The session keys of one slot: one page's run, its saved-run box, its settings widgets, its charts."""

    slot: str

    # -- stored values, with their defaults (`setup`) ---------------------------------------------------
    @property
    def run(self) -> str:
        """The slot's `core.run.background.Run` (None before the first Run)."""
        return f"{self.slot}__run"

    @property
    def flash(self) -> str:
        """A message shown once on the next render: (kind, text) or None."""
        return f"{self.slot}__flash"

    @property
    def opened(self) -> str:
        """What was made of the uploaded run file: a SavedRun, a Refused or None (ui.saved)."""
        return f"{self.slot}__opened"

    @property
    def show_saved(self) -> str:
        """True while the page shows the opened file's run instead of the live one."""
        return f"{self.slot}__show_saved"

    @property
    def file_generation(self) -> str:
        """How often **Close the file** emptied the uploader (each time it gets a new widget key)."""
        return f"{self.slot}__file_generation"

    @property
    def widget_defaults(self) -> str:
        """The RunConfig the settings widgets were last reset to (ui.sidebar.prepare_widgets)."""
        return f"{self.slot}__defaults"

    @property
    def link(self) -> str:
        """The link (`ui.share.Link`) the page was last opened with: its settings, notes and scenario."""
        return f"{self.slot}__link"

    @property
    def written(self) -> str:
        """The query string the page last put in the address bar (`ui.share.follow_url`): a URL equal to it
        is the page's own echo, not a new link."""
        return f"{self.slot}__written"

    @property
    def replaced(self) -> str:
        """The query `follow_url` replaced with `written`, until the browser's URL shows `written`: a rerun the
        browser asked for before it heard of the new URL (a fragment's timer, say) still carries this one."""
        return f"{self.slot}__replaced"

    @property
    def suggested(self) -> str:
        """Settings changes a verdict's button asked for, applied to the widgets on the next full run."""
        return f"{self.slot}__suggested"

    @property
    def built(self) -> str:
        """The RunConfig the settings widgets described on the last full run (ui.sidebar)."""
        return f"{self.slot}__built"

    def memo(self, group: str) -> str:
        """Figures and verdicts built for one snapshot version (ui.live.memo)."""
        return f"{self.slot}__memo_{group}"

    def stored(self) -> dict[str, Any]:
        """Every stored key of the slot with its default."""
        return {self.run: None, self.flash: None, self.opened: None, self.show_saved: False,
                self.file_generation: 0}

    def setup(self) -> "SlotKeys":
        """Set every stored key that is not in the session yet to its default."""
        ss = st.session_state
        for key, default in self.stored().items():
            if key not in ss:
                ss[key] = default
        return self

    # -- widget keys (Streamlit creates them) -------------------------------------------------------------
    def widget(self, field: str) -> str:
        """The settings widget of a RunConfig field (ui.sidebar), e.g. 'explore_depth'."""
        return f"{self.slot}_{field}"

    def button(self, name: str) -> str:
        """A run button: 'run', 'pause', 'step', 'stop' (ui.session)."""
        return f"{self.slot}__btn_{name}"

    def control(self, name: str) -> str:
        """Any other widget of the slot: 'use_saved', 'close_saved', 'quantity', 'dl_csv', ..."""
        return f"{self.slot}__{name}"

    def file(self, generation: int) -> str:
        """The file uploader; a new key after each **Close the file**, which empties it."""
        return f"{self.slot}__file" if generation == 0 else f"{self.slot}__file_{generation}"

    def fig(self, name: str) -> str:
        """A chart (st.plotly_chart's key)."""
        return f"{self.slot}__fig_{name}"


# The page of the session's previous full script run and of this one (`enter_page`): a link that arrives with a
# page change is opened afresh, even when it equals what that page last wrote in the address bar.
_PAGE_BEFORE = "gfl__page_before"
_PAGE_NOW = "gfl__page_now"


def enter_page() -> None:
    """Note which page this full script run draws (ui.nav.nav calls it at the top of every page)."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx
        ctx = get_script_run_ctx()
        page = ctx.page_script_hash if ctx is not None else None
    except Exception:  # not in a Streamlit run
        page = None
    ss = st.session_state
    ss[_PAGE_BEFORE], ss[_PAGE_NOW] = ss.get(_PAGE_NOW), page


def just_arrived() -> bool:
    """This run is the first of a visit to this page (the session's first run, or one after another page's)."""
    ss = st.session_state
    return _PAGE_NOW not in ss or ss.get(_PAGE_BEFORE) != ss.get(_PAGE_NOW)


def slot(name: str) -> SlotKeys:
    """The keys of slot `name`, its stored values set up."""
    return SlotKeys(name).setup()


__all__ = ["SlotKeys", "slot", "enter_page", "just_arrived"]
