"""ui.livechart in a real Streamlit script (AppTest): what each rerun sends for one live chart.

The payload is read off the component element the script emitted (as the browser would get it):
the full figure while the chart is new, then patches of only the new records; a chart drawn with
`every` gets a `pending` payload (draw nothing) between its patches while a run moves, and its next
patch still carries every record since the last one the browser applied."""
from __future__ import annotations

import numpy as np
from streamlit.testing.v1 import AppTest

import _charts


def _script():
    import numpy as np
    import streamlit as st

    from core.figures import live as LF
    from ui.livechart import live_chart, refresh

    n = st.session_state.get("n", 2)
    every = st.session_state.get("every")
    steps = np.column_stack([np.arange(n) * 10.0, 1.0 / (1 + np.arange(n)), np.full(n, 0.5), np.full(n, np.nan)])
    with refresh(True):
        live_chart(LF.live_loss(steps, owner="t"), "page__fig_loss", every=every)


def _sent(at: AppTest) -> dict:
    return _charts._live(at)["page__fig_loss"]


def test_a_slow_chart_is_patched_at_most_every_so_often_and_catches_up():
    at = AppTest.from_function(_script, default_timeout=60)
    at.session_state["every"] = 3600.0   # an hour: every later rerun of this test falls inside it
    at.run()
    assert not at.exception and "fig" in _sent(at)          # new: the full figure (sent FULL_SENDS times)
    at.session_state["n"] = 3
    at.run()
    assert "fig" in _sent(at)
    at.session_state["n"] = 4
    at.run()
    assert _sent(at) == {"pending": True}                   # within `every` of the last send: nothing to draw
    at.session_state["n"] = 5
    at.run()
    assert _sent(at) == {"pending": True}
    at.session_state["every"] = None                        # not throttled: the next patch goes out
    at.session_state["n"] = 6
    at.run()
    p = _sent(at)
    assert "fig" not in p and p["n"] == [6]
    # every record the browser lacks since the last patch it got (it holds 3: records 0-2), records 3, 4 and 5,
    # from an older count (ui.livechart.HISTORY): the browser appends only the ones it lacks
    r = p["extend"]["r"][0]
    assert r[-3:] == [3, 4, 5] and r[0] <= 3
    y = dict(zip(r, (float(v) for v in p["extend"]["y"][0].split(","))))
    np.testing.assert_allclose([y[3], y[4], y[5]], [1 / 4, 1 / 5, 1 / 6], rtol=1e-3)   # the loss column
