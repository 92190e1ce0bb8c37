"""The charts an AppTest page shows, as figure dicts keyed by their element key ('explore__fig_variance').

`st.plotly_chart` carries its whole figure; a live chart (ui/livechart.py, a custom component)
carries the figure the first time and patches afterwards. `charts(at)` asks the session to send
every live chart in full once (it forgets what it sent, as when the browser asks to resync), reruns,
and applies each payload (`core.figures.live.apply_patch`): what a browser would draw.
"""
from __future__ import annotations

import json

from core.figures.live import _plain, apply_patch
from ui.livechart import _state_key


def _plain_all(v):
    if isinstance(v, dict):
        if "bdata" in v and "dtype" in v:
            return _plain(v)
        return {k: _plain_all(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain_all(x) for x in v]
    return v


def _live(at) -> dict[str, dict]:
    out = {}
    for el in at.get("bidi_component"):
        proto = el.proto
        payload = json.loads(proto.mixed.json) if proto.WhichOneof("data") == "mixed" else json.loads(proto.json or "null")
        key = proto.id.rsplit("-", 1)[-1].replace(".", "__")
        out[key] = payload
    return out


def charts(at, rerun: bool = True) -> dict[str, dict]:
    """Every chart on the page: st.plotly_chart specs and live charts, as figure dicts."""
    out = {el.proto.id.rsplit("-", 1)[-1]: json.loads(el.proto.spec) for el in at.get("plotly_chart")}
    live = _live(at)
    if rerun and any(p and "fig" not in p and not p.get("preload") for p in live.values()):
        for key in live:
            if _state_key(key) in at.session_state:
                at.session_state[_state_key(key)] = None
        at.run()
        live = _live(at)
        out = {el.proto.id.rsplit("-", 1)[-1]: json.loads(el.proto.spec) for el in at.get("plotly_chart")}
    for key, payload in live.items():
        if payload and "fig" in payload:
            out[key] = apply_patch(_plain_all(json.loads(payload["fig"])), payload)
    return out
