"""Live charts: drawn once in the browser, then patched with only what changed.

A live chart (`LiveChart`) is what one chart needs on one refresh of a run:

* `base`: the id of the figure's *structure* (which run, which traces, which
  grid of records, which axis types). The browser patches a figure only when
  it holds this base; otherwise it gets `figure()` once, in full.
* `figure()`: that full figure, built by the same `core.figures` builders as
  every other chart (so a live chart looks exactly like a still one).
* `patch(since)`: the changes after the browser's `since` records (one count
  per run on the chart), as plain JSON:

  - `extend`: points appended to traces (Plotly's `extendTraces`):
    `{"traces": [i], "run": [k], "r": [[record]], "x": [packed], "y" | "z": [...]}`;
    each point carries its record index `r`, so a browser that already holds
    some of them (an overlapping patch) appends only the rest;
  - `set`: whole trace properties replaced (`restyle`): the by-layer curves at
    the record on screen, their hover text and names;
  - `layout`: dotted layout keys (`relayout`): the title, the note slots;
  - `ranges`: axis ranges and ticks, in whole decades on log axes, taken over
    every record so far: they only grow during a run and never rescale per frame.

Numbers travel `packed`: one string of comma-separated values with 4
significant digits, empty for a gap (0 on a log axis, inf, nan), a quarter
of the bytes of JSON floats. `apply_patch` applies a patch to a figure's JSON
as the browser does (static/livechart.js mirrors it); tests hold the two
to "the figure built the old way". No Streamlit here.
"""
from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from core.figures.compare import compare_records, compare_title, fig_loss_compare, fig_variance_compare
from core.figures.runs import (
    UPDATE_LAYERS, fig_layer_step_heatmap, fig_loss_accuracy, fig_saturation, fig_update_ratio, fig_variance_by_layer,
    heatmap_note, heatmap_zrange, histogram_ridges, loss_is_log, loss_note, ridges_figure, theory_traces,
    update_ratio_notes,
)
from core.figures.style import (
    HEALTHY_UPDATE_RATIO, MAX_POINTS, NAMES, NOTE, as_f32, for_log_axis, gap_note, log10_or_gap, log_ticks,
    note_annotation, record_index, sample_indices, title_with_note,
)
from core.measure.records import COL

Since = tuple[int, ...]


# -- the wire format -------------------------------------------------------------------------------

def pack(values) -> str:
    """Numbers as one compact string: '1.234,0.5,,3e-07' (empty = a gap: nan, inf)."""
    a = np.asarray(values, dtype=np.float64).ravel()
    return ",".join(f"{v:.4g}" if math.isfinite(v) else "" for v in a.tolist())


def unpack(text: str) -> list[float | None]:
    """`pack`'s inverse, gaps as None (what the browser turns into NaN)."""
    if text == "":
        return []
    return [None if t == "" else float(t) for t in text.split(",")]


def decade_range(*arrays, pad: float = 0.05) -> list[float] | None:
    """[lo, hi] in log10 units, whole decades holding every positive finite value of `arrays`
    (with `pad` decades of room so no point sits on the edge); None when there is none."""
    values = [np.asarray(a, dtype=np.float64).ravel() for a in arrays if a is not None]
    v = np.concatenate(values) if values else np.zeros(0)
    v = v[np.isfinite(v) & (v > 0)]
    if not v.size:
        return None
    lo = math.floor(math.log10(v.min()) - pad)
    hi = math.ceil(math.log10(v.max()) + pad)
    return [float(lo), float(max(hi, lo + 1))]


def decade_axis(*arrays) -> dict | None:
    """A log axis's range in whole decades and its ticks (`log_ticks` over that range), every
    tick property set so that a change of tick mode replaces the last one."""
    rng = decade_range(*arrays)
    if rng is None:
        return None
    ticks = log_ticks(10 ** rng[0], 10 ** rng[1])
    # tickmode None (Plotly's default) follows dtick when it is set, else chooses ticks itself
    out = {"range": rng, "autorange": False, "tickmode": ticks.get("tickmode"),
           "tickvals": ticks.get("tickvals"), "ticktext": ticks.get("ticktext"), "dtick": ticks.get("dtick"),
           "tick0": 0 if "dtick" in ticks else None}
    return out


def nice_ceiling(value: float) -> float:
    """The smallest 1-2-5 × 10^k at or above `value` (> 0)."""
    if not (math.isfinite(value) and value > 0):
        return 1.0
    e = math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if m * 10 ** e >= value * (1 - 1e-12):
            return float(m * 10 ** e)
    return float(10 ** (e + 1))


def step_axis(x_end: float, stride: int = 1) -> dict:
    """A step axis fixed from 0 to `x_end` (the run's planned last step while it trains), whole-number ticks
    when it is short: it fills in from the left instead of rescaling on every refresh."""
    half = 0.5 * stride
    short = x_end < 8
    return {"range": [-half, float(x_end) + half], "autorange": False, "dtick": 1 if short else None,
            "tick0": 0 if short else None}


def record_grid(n: int, cap: int = MAX_POINTS) -> tuple[int, np.ndarray]:
    """(stride, records) of a chart over steps: every `stride`-th record, `stride` the smallest
    power of two that keeps at most `cap` of `n`. A growing run keeps its grid (new records are
    appended) until it doubles, a handful of times in a long run."""
    stride = 1
    while math.ceil(n / stride) > cap:
        stride *= 2
    return stride, np.arange(0, n, stride, dtype=np.int64)


# -- applying a patch (what static/livechart.js does in the browser) -------------------------------

def _plain(v):
    """A figure JSON value with typed arrays ({'dtype', 'bdata'}) as lists."""
    if isinstance(v, dict) and "bdata" in v and "dtype" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        if "shape" in v:
            a = a.reshape([int(n) for n in str(v["shape"]).split(",")])
        a = a.astype(np.float64)
        return [[None if not math.isfinite(x) else x for x in row] for row in a.tolist()] if a.ndim == 2 else \
            [None if not math.isfinite(x) else x for x in a.tolist()]
    if isinstance(v, tuple):
        return list(v)
    return v


def _unpacked(v):
    return unpack(v) if isinstance(v, str) else [unpack(s) for s in v]


def _set_path(obj: dict, path: str, value) -> None:
    """obj['a']['b'] = value for 'a.b', 'annotations[0].text'; None deletes."""
    parts = []
    for p in path.split("."):
        if "[" in p:
            name, idx = p[:-1].split("[")
            parts += [name, int(idx)]
        else:
            parts.append(p)
    for p in parts[:-1]:
        obj = obj.setdefault(p, {}) if isinstance(p, str) else obj[p]
    if value is None:
        if isinstance(parts[-1], str):
            obj.pop(parts[-1], None)
    else:
        obj[parts[-1]] = value


def apply_patch(fig: dict, patch: Mapping[str, Any], have: Since | None = None) -> dict:
    """`patch` applied to a figure's JSON (`{'data': [...], 'layout': {...}}`, changed in place and
    returned) as the browser applies it, holding `have` records per run (default: the patch's `since`)."""
    have = tuple(patch.get("since", ())) if have is None else tuple(have)
    ext = patch.get("extend")
    if ext:
        for j, t in enumerate(ext["traces"]):
            keep = [q for q, r in enumerate(ext["r"][j]) if r >= have[ext["run"][j]]]
            trace = fig["data"][t]
            for key in ("x", "y", "z"):
                if key not in ext:
                    continue
                new = ext[key][j]
                new = [unpack(s) for s in new] if key == "z" else unpack(new)
                trace[key] = list(_plain(trace.get(key)) or []) + [new[q] for q in keep]
    st = patch.get("set")
    if st:
        for key, values in st.items():
            if key == "traces":
                continue
            for t, v in zip(st["traces"], values):
                fig["data"][t][key] = unpack(v) if key in ("x", "y") else v
    for path, value in (patch.get("layout") or {}).items():
        _set_path(fig["layout"], path, value)
    for axis, props in (patch.get("ranges") or {}).items():
        for k, v in props.items():
            _set_path(fig["layout"], f"{axis}.{k}", v)
    return fig


# -- the chart -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LiveChart:
    """One chart on one refresh: its structure's id, how many records per run it has drawn, the full
    figure (built only when needed) and the patch from any earlier count."""

    base: str
    n: Since
    figure: Callable[[], go.Figure]
    patch: Callable[[Since], dict]

    def figure_json(self) -> str:
        """The full figure as the browser gets it, its ranges and notes applied (the costly part:
        building a Plotly figure takes tens of milliseconds, a patch well under one)."""
        fig = json.loads(pio.to_json(self.figure(), validate=False))
        apply_patch(fig, dict(self.patch(self.n), extend=None, set=None), have=self.n)  # it holds the data already
        return json.dumps(fig, separators=(",", ":"))

    def full(self, fig_json: str | None = None, fig_n: Since | None = None) -> dict:
        """The payload that (re)draws the chart: a full figure holding `fig_n` records (default: this
        one, built now) and the patch from there."""
        if fig_json is None:
            fig_json, fig_n = self.figure_json(), self.n
        return dict(self.update(fig_n), fig=fig_json)

    def update(self, since: Since) -> dict:
        """The payload that brings a browser holding `since` records (per run) of this base up to date."""
        since = tuple(min(a, b) for a, b in zip(since, self.n))
        return dict(self.patch(since), base=self.base, n=list(self.n), since=list(since))

    def payload(self, have: tuple[str, Since] | None) -> dict:
        """`update(since)` if the browser holds this base (`have` = (base, since)), else `full()`."""
        if have is None or have[0] != self.base or len(have[1]) != len(self.n):
            return self.full()
        return self.update(have[1])


def _note_slots(fig: go.Figure, panels: Sequence[int]) -> go.Figure:
    """The figure with its note annotations replaced by one fixed slot per panel, first in the
    list (annotations[0], [1]...), so a patch can fill or hide them by index."""
    others = [a for a in fig.layout.annotations if a.name != NOTE]
    slots = [dict(note_annotation([" "], panel=p), visible=False) for p in panels]
    fig.layout.annotations = []
    for a in slots:
        fig.add_annotation(**a)
    for a in others:
        fig.add_annotation(a)
    return fig


def _note_layout(notes: Mapping[int, Sequence[str | None]], panels: Sequence[int]) -> dict:
    out = {}
    for k, p in enumerate(panels):
        a = note_annotation(notes.get(p, []), panel=p)
        out[f"annotations[{k}].text"] = a["text"] if a else " "
        out[f"annotations[{k}].visible"] = a is not None
    return out


def _hover(name: str, step: int, fmt: str = ".3g", unit: str = "") -> str:
    return f"{name} at step {step}<br>layer %{{x}}: %{{y:{fmt}}}{unit}<extra></extra>"


# -- Explore's charts ------------------------------------------------------------------------------

VARIANCE_PANELS = {1: ("preact_var", "act_var"), 2: ("grad_preact_var",)}


def live_variance(stats: np.ndarray, steps: np.ndarray, *, owner: str, record: int = -1, theory=None,
                  height: int = 430) -> LiveChart:
    """`fig_variance_by_layer` as a live chart: each refresh sets the curves at `record` (the latest,
    or the step scrubber's); the step-0 ghosts and theory lines are drawn once; the y axes span
    whole decades over every record so far."""
    stats, steps = np.asarray(stats), np.asarray(steps)
    n, L = len(steps), stats.shape[1]
    i = record_index(steps, record)
    ghost = i != 0
    q, grad = theory_traces(theory, stats, steps)
    has_grad = grad is not None and bool(np.isfinite(grad).any())
    hidden = theory is not None and not theory.attrs.get("applies", True)
    base = f"variance|{owner}|{L}|{int(ghost)}|{int(q is not None)}|{int(has_grad)}|{int(hidden)}|{height}"
    measured, t = [], 0
    for col, columns in VARIANCE_PANELS.items():
        for c in columns:
            t += ghost
            measured.append((t, col, c))
            t += 1

    def figure() -> go.Figure:
        fig = fig_variance_by_layer(stats, steps, record=i, theory=theory, height=height)
        return _note_slots(fig, (1, 2))

    def patch(since: Since) -> dict:
        step = int(steps[i, 0])
        notes = {1: [], 2: []}
        for _, col, c in measured:
            notes[col].append(gap_note(stats[i, :, COL[c]], NAMES[c]))
        layout = {"title.text": f"Variance by layer at step {step}", **_note_layout(notes, (1, 2))}
        ranges = {}
        for col, axis in ((1, "yaxis"), (2, "yaxis2")):
            cols = [COL[c] for c in VARIANCE_PANELS[col]]
            ax = decade_axis(stats[:, :, cols], q if col == 1 else (grad if has_grad else None))
            if ax:
                ranges[axis] = ax
        return {"set": {"traces": [t for t, _, _ in measured],
                        "y": [pack(for_log_axis(stats[i, :, COL[c]])) for _, _, c in measured],
                        "hovertemplate": [_hover(NAMES[c], step) for _, _, c in measured]},
                "layout": layout, "ranges": ranges}

    return LiveChart(base, (n,), figure, patch)


def live_saturation(stats: np.ndarray, steps: np.ndarray, *, owner: str, record: int = -1,
                    activation: str | None = None, height: int = 340) -> LiveChart:
    """`fig_saturation` as a live chart: the curves at `record`, the step-0 ghosts drawn once."""
    stats, steps = np.asarray(stats), np.asarray(steps)
    n, L = len(steps), stats.shape[1]
    i = record_index(steps, record)
    ghost = i != 0
    base = f"saturation|{owner}|{L}|{int(ghost)}|{activation}|{height}"
    measured = [(2 * k + 1 if ghost else k, c) for k, c in enumerate(("saturation", "dead_units"))]

    def figure() -> go.Figure:
        return fig_saturation(stats, steps, record=i, activation=activation, height=height)

    def patch(since: Since) -> dict:
        step = int(steps[i, 0])
        return {"set": {"traces": [t for t, _ in measured],
                        "y": [pack(as_f32(100 * stats[i, :, COL[c]])) for _, c in measured],
                        "hovertemplate": [_hover(NAMES[c], step, ".1f", "%") for _, c in measured]},
                "layout": {"title.text": f"Saturation and dead units by layer at step {step}"}}

    return LiveChart(base, (n,), figure, patch)


def live_heatmap(stats: np.ndarray, steps: np.ndarray, column: str, *, owner: str, title: str,
                 zrange: tuple[float, float] | None = None, x_end: float | None = None, cap: int = MAX_POINTS,
                 height: int = 400) -> LiveChart:
    """`fig_layer_step_heatmap` as a live chart: new records are appended as columns (on the
    `record_grid`), the colour limits are fixed for the run, the step axis runs to `x_end`."""
    stats, steps = np.asarray(stats), np.asarray(steps)
    n, L = len(steps), stats.shape[1]
    stride, kept = record_grid(n, cap)
    zr = tuple(zrange) if zrange is not None else heatmap_zrange(stats, column)
    base = f"heatmap|{owner}|{column}|{L}|{stride}|{zr[0]:g}|{zr[1]:g}|{height}|{title}"

    def figure() -> go.Figure:
        return fig_layer_step_heatmap(stats, steps, column, zrange=zr, title=title, height=height, idx=kept,
                                      records_major=True)

    def patch(since: Since) -> dict:
        new = kept[kept >= since[0]]
        raw = stats[kept, :, COL[column]]
        out = {"layout": {"title.text": title_with_note(title, heatmap_note(raw, steps[kept, 0]))},
               "ranges": {"xaxis": step_axis(max(x_end or 0, float(steps[-1, 0])), stride)}}
        if new.size:
            out["extend"] = {"traces": [0], "run": [0], "r": [new.tolist()], "x": [pack(steps[new, 0])],
                             "z": [[pack(row) for row in log10_or_gap(stats[new, :, COL[column]])]]}
        return out

    return LiveChart(base, (n,), figure, patch)


def live_loss(steps: np.ndarray, *, owner: str, x_end: float | None = None, cap: int = MAX_POINTS,
              height: int = 340) -> LiveChart:
    """`fig_loss_accuracy` as a live chart: new records appended to the loss and accuracy lines,
    held-out accuracy where it was measured; the step axis runs to `x_end`; the loss axis in whole
    decades once it is logarithmic, else from 0 to a 1-2-5 ceiling."""
    steps = np.asarray(steps)
    n = len(steps)
    stride, kept = record_grid(n, cap)
    tested = np.flatnonzero(np.isfinite(steps[:, 3]))
    log = loss_is_log(steps)
    few = len(kept) <= 20
    base = f"loss|{owner}|{stride}|{int(log)}|{int(tested.size > 0)}|{height}"

    def figure() -> go.Figure:
        return _note_slots(fig_loss_accuracy(steps, idx=kept, height=height), (1,))

    def patch(since: Since) -> dict:
        new = kept[kept >= since[0]]
        new_t = tested[tested >= since[0]]
        last = max(x_end or 0, float(steps[-1, 0]))
        loss = steps[:, 1]
        finite = loss[np.isfinite(loss) & (loss > 0)]
        if log:
            y = decade_axis(finite) or {}
        else:
            y = {"range": [0.0, nice_ceiling(float(finite.max()) * 1.05) if finite.size else 1.0], "autorange": False}
        out = {"layout": _note_layout({1: [loss_note(steps)]}, (1,)),
               "ranges": {"xaxis": step_axis(last), "xaxis2": step_axis(last), "yaxis": y},
               "set": {"traces": [0, 1], "mode": ["lines+markers" if few else "lines"] * 2}}
        traces, r, x, yy = [], [], [], []
        if new.size:
            for t, j in ((0, 1), (1, 2)):
                traces.append(t)
                r.append(new.tolist())
                x.append(pack(steps[new, 0]))
                yy.append(pack(as_f32(steps[new, j])))
        if new_t.size:
            traces.append(2)
            r.append(new_t.tolist())
            x.append(pack(steps[new_t, 0]))
            yy.append(pack(as_f32(steps[new_t, 3])))
        if traces:
            out["extend"] = {"traces": traces, "run": [0] * len(traces), "r": r, "x": x, "y": yy}
        return out

    return LiveChart(base, (n,), figure, patch)


def live_update_ratio(stats: np.ndarray, steps: np.ndarray, *, owner: str, x_end: float | None = None,
                      cap: int = MAX_POINTS, height: int = 380) -> LiveChart:
    """`fig_update_ratio` as a live chart: new records appended to each drawn layer's line (the records
    after step 0 on the `record_grid`), the y axis in whole decades with the 10⁻³ line inside it, the step
    axis running to `x_end`."""
    stats, steps = np.asarray(stats), np.asarray(steps)
    n, L = len(steps), stats.shape[1]
    stride, kept = record_grid(n, cap)
    kept = kept[steps[kept, 0] > 0] if n else kept  # no update has happened at step 0
    chosen = sample_indices(L, UPDATE_LAYERS)
    few = kept.size <= 20
    base = f"update|{owner}|{L}|{stride}|{int(kept.size > 0)}|{height}"

    def figure() -> go.Figure:
        fig = fig_update_ratio(stats, steps, idx=kept, height=height)
        return _note_slots(fig, (1,)) if kept.size else fig

    def patch(since: Since) -> dict:
        if not kept.size:
            return {}
        new = kept[kept >= since[0]]
        ratio = stats[kept][:, chosen, COL["update_ratio"]]
        k = len(chosen)
        out = {"layout": _note_layout({1: update_ratio_notes(stats, steps, kept, chosen)[:2]}, (1,)),
               "ranges": {"xaxis": step_axis(max(x_end or 0, float(steps[-1, 0])), stride),
                          "yaxis": decade_axis(ratio, np.array([HEALTHY_UPDATE_RATIO])) or {}},
               "set": {"traces": list(range(k)), "mode": ["lines+markers" if few else "lines"] * k}}
        if new.size:
            out["extend"] = {"traces": list(range(k)), "run": [0] * k, "r": [new.tolist()] * k,
                             "x": [pack(steps[new, 0])] * k,
                             "y": [pack(for_log_axis(stats[new, l, COL["update_ratio"]])) for l in chosen]}
        return out

    return LiveChart(base, (n,), figure, patch)


def live_histograms(hist: dict | None, kind: str, *, owner: str, height: int = 520) -> LiveChart:
    """`fig_histograms` as a live chart: each refresh sets every ridge's x and y, the title and the shared
    x range (the distributions change as a whole); a new set of drawn layers is a new base."""
    r = histogram_ridges(hist, kind)
    drawn = "empty" if r["empty"] else ",".join(str(layer) for _, layer, _, _ in r["ridges"])
    base = f"hist|{owner}|{kind}|{r.get('layers', 0)}|{drawn}|{height}"

    def figure() -> go.Figure:
        return ridges_figure(r, height)  # the ridges computed once, for the figure and the patch

    def patch(since: Since) -> dict:
        if r["empty"]:
            return {}
        k = len(r["ridges"])
        return {"set": {"traces": list(range(k)), "x": [pack(xs) for _, _, xs, _ in r["ridges"]],
                        "y": [pack(ys) for _, _, _, ys in r["ridges"]]},
                "layout": {"title.text": r["title"]}, "ranges": {"xaxis": {"range": r["range"]}}}

    return LiveChart(base, (1,), figure, patch)


# -- Compare's overlay -----------------------------------------------------------------------------

COMPARE_PANELS = ((1, "preact_var"), (2, "grad_preact_var"))


def live_variance_compare(runs: Mapping[str, tuple[np.ndarray, np.ndarray]], *, owner: str,
                          step: int | None = None, theories: Mapping[str, object] | None = None,
                          height: int = 430) -> LiveChart:
    """`fig_variance_compare` as a live chart: every run at the same optimizer `step` (default each
    at its latest), with its step-0 ghost and its theory line drawn once."""
    arrays = {label: (np.asarray(st), np.asarray(sp)) for label, (st, sp) in runs.items()}
    theories = theories or {}
    records = compare_records(arrays, step)
    measured, t, shape = [], 0, []
    for label, (stats, steps) in arrays.items():
        if len(steps) == 0:
            shape.append(f"{label}:-")
            continue
        ghost = records[label] != 0
        for col, c in COMPARE_PANELS:
            t += ghost
            measured.append((t, label, col, c))
            t += 1
        shape.append(f"{label}:{stats.shape[1]}:{int(ghost)}")
    for label, (stats, steps) in arrays.items():
        if len(steps):
            q, grad = theory_traces(theories.get(label), stats, steps)
            shape.append(f"{int(q is not None and np.isfinite(q).any())}{int(grad is not None and np.isfinite(grad).any())}")
    base = f"compare|{owner}|{'|'.join(shape)}|{height}"
    n = tuple(len(sp) for _, sp in arrays.values())

    def figure() -> go.Figure:
        return _note_slots(fig_variance_compare(arrays, step=step, theories=theories, height=height), (1, 2))

    def patch(since: Since) -> dict:
        notes: dict[int, list] = {1: [], 2: []}
        for label, (_, steps) in arrays.items():
            if len(steps) == 0:
                notes[1].append(f"{label}: nothing recorded yet")
        ys, hovers, names = [], [], []
        for _, label, col, c in measured:
            stats, steps = arrays[label]
            i = records[label]
            s = int(steps[i, 0])
            ys.append(pack(for_log_axis(stats[i, :, COL[c]])))
            hovers.append(f"{label}, {NAMES[c]} at step {s}<br>layer %{{x}}: %{{y:.3g}}<extra></extra>")
            names.append(f"{label}: {NAMES[c]} (step {s})")
            notes[col].append(gap_note(stats[i, :, COL[c]], f"{label}: {NAMES[c]}"))
        ranges = {}
        for col, c in COMPARE_PANELS:
            values = [st[:, :, COL[c]] for st, sp in arrays.values() if len(sp)]
            for label, (stats, steps) in arrays.items():
                if len(steps):
                    values.append(theory_traces(theories.get(label), stats, steps)[col - 1])
            ax = decade_axis(*values)
            if ax:
                ranges["yaxis" if col == 1 else "yaxis2"] = ax
        title = compare_title(arrays, records) if records else "Variance by layer"
        return {"set": {"traces": [m[0] for m in measured], "y": ys, "hovertemplate": hovers, "name": names},
                "layout": {"title.text": title, **_note_layout(notes, (1, 2))}, "ranges": ranges}

    return LiveChart(base, n, figure, patch)


def live_loss_compare(runs: Mapping[str, np.ndarray], *, owner: str, x_end: float | None = None,
                      cap: int = MAX_POINTS, height: int = 340) -> LiveChart:
    """`fig_loss_compare` as a live chart: each run's new records appended to its loss line and
    held-out accuracy; the step axes run to `x_end`, the loss axis grows in decades (log) or to a
    1-2-5 ceiling."""
    arrays = {label: np.asarray(sp) for label, sp in runs.items()}
    grids, traces, shape = {}, [], []
    for k, (label, steps) in enumerate(arrays.items()):
        if len(steps) == 0:
            shape.append(f"{label}:-")
            continue
        stride, kept = record_grid(len(steps), cap)
        tested = np.flatnonzero(np.isfinite(steps[:, 3]))
        grids[label] = (kept, tested)
        traces.append((len(traces), k, label, "loss"))
        if tested.size:
            traces.append((len(traces), k, label, "test"))
        shape.append(f"{label}:{stride}:{int(tested.size > 0)}")
    finite = np.concatenate([sp[:, 1] for sp in arrays.values() if len(sp)] or [np.zeros(0)])
    finite = finite[np.isfinite(finite) & (finite > 0)]
    log = bool(finite.size and finite.max() / finite.min() > 10)
    base = f"loss_compare|{owner}|{'|'.join(shape)}|{int(log)}|{height}"
    n = tuple(len(sp) for sp in arrays.values())

    def figure() -> go.Figure:
        return fig_loss_compare(arrays, height=height, idx={label: g[0] for label, g in grids.items()})

    def patch(since: Since) -> dict:
        last = max([x_end or 0] + [float(sp[-1, 0]) for sp in arrays.values() if len(sp)])
        y = (decade_axis(finite) or {}) if log else \
            {"range": [0.0, nice_ceiling(float(finite.max()) * 1.05) if finite.size else 1.0], "autorange": False}
        out = {"ranges": {"xaxis": step_axis(last), "xaxis2": step_axis(last), "yaxis": y}}
        ext = {"traces": [], "run": [], "r": [], "x": [], "y": []}
        for t, k, label, what in traces:
            steps = arrays[label]
            kept, tested = grids[label]
            rows = (kept if what == "loss" else tested)
            rows = rows[rows >= since[k]]
            if not rows.size:
                continue
            ext["traces"].append(t)
            ext["run"].append(k)
            ext["r"].append(rows.tolist())
            ext["x"].append(pack(steps[rows, 0]))
            ext["y"].append(pack(as_f32(steps[rows, 1 if what == "loss" else 3])))
        if ext["traces"]:
            out["extend"] = ext
        return out

    return LiveChart(base, n, figure, patch)


__all__ = ["LiveChart", "pack", "unpack", "decade_range", "decade_axis", "nice_ceiling", "step_axis", "record_grid",
           "apply_patch", "live_variance", "live_saturation", "live_heatmap", "live_loss", "live_update_ratio",
           "live_histograms", "live_variance_compare", "live_loss_compare"]
