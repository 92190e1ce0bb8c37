"""A watched run as the dashboard draws it: from a `Watch`, a saved JSON file
or a live store, to the run charts' arrays and figures.

`AS_RUN` is the one place where a watch run's columns are mapped onto the
lab's run table (`core.measure.records.STAT_COLUMNS`): the layer's output
stands for the by-layer charts' forward series, ∂L/∂output for their backward
series. The run charts are then drawn by the same figure builders, with the
modules' names as layer labels and without the series a watch does not
measure (the activation after the layer, dead units).
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

import torch

from core.measure.records import COL as RUN_COL, STAT_COLUMNS as RUN_COLUMNS
from core.registry import ARCHITECTURES, DEFAULT_ARCH, activation_of_module
from core.schema import RunStatus
from core.watch.session import COL, STAT_COLUMNS, NonFinite, watch_table

FORMAT = "gradient-flow-lab/watch"
VERSION = 1
MAX_BYTES = 50 * 1024 * 1024

# run-table column  <-  watch column (a run column not named here is not measured by watch)
AS_RUN = {
    "preact_mean": "out_mean",
    "preact_var": "out_var",
    "grad_preact_var": "grad_out_var",
    "weight_var": "weight_var",
    "weight_grad_var": "weight_grad_var",
    "update_ratio": "update_ratio",
    "saturation": "saturation",
}
_RUN_IDX = np.array([RUN_COL[c] for c in AS_RUN])
_WATCH_IDX = np.array([COL[c] for c in AS_RUN.values()])
NOT_MEASURED = tuple(c for c in RUN_COLUMNS if c not in AS_RUN)


# what a layer that feeds no activation module passes its output through
_IDENTITY = activation_of_module(torch.nn.Identity()).name


class WatchFileError(ValueError):
    """A watch run file or store that cannot be opened, in one sentence."""


@dataclass(frozen=True)
class WatchSetting:
    """What stands for a watched network where a page shows a run's settings:
    the activation most of its layers feed (the verdict's advice), and a summary."""

    activation: str
    summary: str = "a watch(model) run"
    # A watched network is read as a stack of layers, one row each: the MLP's architecture entry says what its
    # rows are called and which columns carry its signal (the verdict, the charts).
    arch: str = DEFAULT_ARCH

    @property
    def architecture(self):
        return ARCHITECTURES[self.arch]

    @property
    def time_steps(self) -> int:
        """Rows are layers, never (layer, time step)."""
        return 0

    def __str__(self) -> str:
        return self.summary

    def describe(self, short: bool = False) -> str:
        """As `RunConfig.describe` words a lab run's settings (Compare's heading of a side)."""
        return self.summary


@dataclass(frozen=True, eq=False)
class WatchRun:
    """One watched run: its table's arrays and what the page says about it."""

    name: str
    names: tuple[str, ...]
    activations: tuple[str | None, ...]
    stats: np.ndarray          # (records, layers, len(STAT_COLUMNS)) in watch columns
    steps: np.ndarray          # (records, 2): step, loss
    status: RunStatus          # running, finished, failed, stopped (its writer is gone)
    message: str = ""
    first_nonfinite: NonFinite | None = None
    model: str = ""
    every: int = 1

    @property
    def version(self) -> int:
        return len(self.steps)

    @property
    def last_step(self) -> int:
        return int(self.steps[-1, 0]) if len(self.steps) else 0

    @property
    def config(self) -> WatchSetting:
        seen = Counter(a for a in self.activations if a)
        shown = ", ".join(self.names[:3]) + (", …" if len(self.names) > 3 else "")
        return WatchSetting(seen.most_common(1)[0][0] if seen else _IDENTITY,
                            f"watch(model) run of {self.model or 'a model'}: {len(self.names)} layers ({shown})")

    def table(self):
        return watch_table(self.stats, self.steps, self.names)

    @property
    def run_stats(self) -> np.ndarray:
        """The statistics in the run table's columns (NaN where watch does not measure)."""
        out = np.full((*self.stats.shape[:2], len(RUN_COLUMNS)), np.nan)
        out[..., _RUN_IDX] = self.stats[..., _WATCH_IDX]
        return out

    @property
    def run_steps(self) -> np.ndarray:
        """(records, 4) as the run charts take them: step, loss, and no accuracies."""
        out = np.full((len(self.steps), 4), np.nan)
        out[:, :2] = self.steps
        return out

    def legend(self, limit: int = 12) -> str:
        """'1 = fc1, 2 = fc2, …': what the layer numbers in the verdict stand for."""
        parts = [f"{i} = {n}" for i, n in enumerate(self.names[:limit], 1)]
        return ", ".join(parts) + (f", … ({len(self.names)} layers)" if len(self.names) > limit else "")

    def __repr__(self) -> str:
        return f"WatchRun({self.name!r}: {len(self.names)} layers, {len(self.steps)} records, {self.status})"


# -- from a Watch, a JSON file, a store ----------------------------------------------------------

def from_watch(w, name: str = "watch") -> WatchRun:
    stats, steps = w.arrays()
    return WatchRun(name, tuple(w.names), tuple(w.activations), stats, steps,
                    RunStatus.RUNNING if w._inside else RunStatus.FINISHED, "", w.first_nonfinite, type(w.model).__name__,
                    w.every)


def _num_out(v: float):
    v = float(v)
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def to_json_dict(run: WatchRun) -> dict:
    nf = run.first_nonfinite
    rows = []
    table = run.table()
    data = {c: table[c].to_numpy() for c in table.columns}
    for i in range(len(table)):
        row = {"step": int(data["step"][i]), "layer": int(data["layer"][i]), "name": str(data["name"][i])}
        for c in table.columns[3:]:
            row[c] = int(data[c][i]) if c == "calls" else _num_out(data[c][i])
        rows.append(row)
    return {
        "format": FORMAT, "version": VERSION, "model": run.model, "every": run.every, "status": run.status,
        "layers": [{"layer": i, "name": n, "activation": a} for i, (n, a) in enumerate(zip(run.names, run.activations), 1)],
        "rows": rows,
        "steps": [{"step": int(s), "loss": _num_out(l)} for s, l in run.steps],
        "first_nonfinite": None if nf is None else {"step": nf.step, "layer": nf.layer, "name": nf.name,
                                                    "column": nf.column, "sentence": nf.sentence()},
    }


def save_json(w, path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise WatchFileError(f"Invalid path {str(path)!r}: a saved watch run is a .json file.")
    path.parent.mkdir(parents=True, exist_ok=True)
    run = from_watch(w, path.stem)
    path.write_text(json.dumps(to_json_dict(run), allow_nan=False, ensure_ascii=False))
    return path


def is_watch_document(doc) -> bool:
    return isinstance(doc, dict) and doc.get("format") == FORMAT


def _num_in(v, where: str) -> float:
    if v is None:
        return math.nan
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v) if abs(v) < 1e308 or isinstance(v, float) else math.inf
    if v in ("nan", "inf", "-inf"):
        return float(v)
    raise WatchFileError(f"The watch run's {where} is {str(v)[:30]!r}; expected a number, 'nan', 'inf' or '-inf'.")


def from_json(data: bytes | str | dict, name: str = "saved watch run") -> WatchRun:
    """A saved watch run back (the file `Watch.save` writes). Refuses, with one
    sentence, a file that is not exactly that."""
    if isinstance(data, dict):
        doc = data
    else:
        if len(data) > MAX_BYTES:
            raise WatchFileError(f"The file is {len(data) / 1e6:.0f} MB; a saved watch run can be at most "
                                 f"{MAX_BYTES // 10**6} MB.")
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            raise WatchFileError("The file is not valid JSON; it may be truncated.") from None
    if not is_watch_document(doc):
        raise WatchFileError(f'This is not a watch(model) run file (its "format" is not "{FORMAT}").')
    if doc.get("version") != VERSION:
        raise WatchFileError(f"Watch run file version {str(doc.get('version'))[:20]!r} is not supported; "
                             f"this app reads version {VERSION}.")
    layers, rows, steps = doc.get("layers"), doc.get("rows"), doc.get("steps")
    if not (isinstance(layers, list) and isinstance(rows, list) and isinstance(steps, list)):
        raise WatchFileError('The watch run file needs "layers", "rows" and "steps" lists.')
    if not all(isinstance(l, dict) and isinstance(l.get("name"), str) for l in layers):
        raise WatchFileError("Every entry of the watch run's \"layers\" needs a \"name\".")
    L, n = len(layers), len(steps)
    if len(rows) != n * L:
        raise WatchFileError(f"The watch run file has {len(rows)} rows; {n} steps × {L} layers needs {n * L}.")
    step_arr = np.empty((n, 2))
    for i, s in enumerate(steps):
        if not isinstance(s, dict) or not isinstance(s.get("step"), int) or isinstance(s.get("step"), bool):
            raise WatchFileError(f"Step row {i + 1} of the watch run is malformed (it needs an integer \"step\").")
        step_arr[i] = s["step"], _num_in(s.get("loss"), f"steps[{i}].loss")
    stats = np.full((n, L, len(STAT_COLUMNS)), np.nan)
    for k, row in enumerate(rows):
        i, l = divmod(k, L)
        if not isinstance(row, dict) or row.get("step") != int(step_arr[i, 0]) or row.get("layer") != l + 1:
            raise WatchFileError(f"Row {k + 1} of the watch run is out of order (expected step "
                                 f"{int(step_arr[i, 0])}, layer {l + 1}).")
        for j, c in enumerate(STAT_COLUMNS):
            stats[i, l, j] = _num_in(row.get(c), f"rows[{k}].{c}")
    nf = doc.get("first_nonfinite")
    first = None
    if isinstance(nf, dict):
        try:
            first = NonFinite(int(nf["step"]), int(nf["layer"]), str(nf["name"]), str(nf["column"]))
        except (KeyError, TypeError, ValueError):
            raise WatchFileError('The watch run\'s "first_nonfinite" is malformed.') from None
    status = _status(doc.get("status"), RunStatus.FINISHED)
    if status.live:
        status = RunStatus.STOPPED  # saved while it ran: nothing more will come
    return WatchRun(name, tuple(l["name"] for l in layers),
                    tuple(l.get("activation") if isinstance(l.get("activation"), str) else None for l in layers),
                    stats, step_arr, status, "", first, str(doc.get("model") or ""),
                    int(doc["every"]) if isinstance(doc.get("every"), int) else 1)


def _status(word, default: RunStatus) -> RunStatus:
    """A status read from a file; anything else than finished, stopped, failed or running is `default`."""
    try:
        status = RunStatus(word)
    except ValueError:
        return default
    return status if status in (RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.FAILED, RunStatus.RUNNING) else default


def from_store(state) -> WatchRun:
    """A `core.watch.store.StoreState` as a WatchRun (status "stopped" when its writer died)."""
    m = state.meta
    nf = m.get("first_nonfinite")
    first = NonFinite(*nf) if isinstance(nf, list) and len(nf) == 4 else None
    status = _status(m.get("status"), RunStatus.STOPPED)
    if status.live and not state.live:
        status = RunStatus.STOPPED  # its writer is gone without closing it
    names = tuple(m.get("layers") or ())
    acts = tuple(m.get("activations") or (None,) * len(names))
    return WatchRun(state.path.name.removesuffix(".sqlite"), names, acts[: len(names)] + (None,) * (
        len(names) - len(acts)), state.stats, state.steps, RunStatus.RUNNING if state.live else status,
        str(m.get("message") or ""), first, str(m.get("model") or ""), int(m.get("every") or 1))


# -- the run charts, labelled with the modules' names --------------------------------------------

def _label_layers(fig, names, axis: str) -> None:
    L = len(names)
    if L == 0:
        return
    shown = np.arange(1, L + 1)
    if L > 40:  # every other name would overlap: thin them, keep the first and last
        shown = np.unique(np.linspace(1, L, 40).round().astype(int))
    text = [names[i - 1] for i in shown]
    kw = dict(tickmode="array", tickvals=shown.tolist(), ticktext=text, automargin=True)  # room for long paths
    if axis == "x":
        fig.update_xaxes(**kw, tickangle=-40 if max(map(len, text)) > 6 or L > 8 else 0, title_text="layer (forward order)",
                         title_standoff=6)
    else:
        fig.update_yaxes(**kw, title_text="")


def _drop_unmeasured(fig) -> None:
    """Take out the traces and notes of the run columns a watch does not measure."""
    from core.figures import NAMES

    gone = [NAMES[c] for c in NOT_MEASURED if c in NAMES]
    fig.data = tuple(t for t in fig.data if not (t.name in gone or (
        t.y is not None and len(t.y) and not np.isfinite(np.asarray(t.y, dtype=np.float64)).any()
        and any(g in (t.hovertemplate or "") for g in gone))))
    kept = []
    for a in fig.layout.annotations:
        text = a.text or ""
        lines = [s for s in text.split("<br>") if not any(g in s for g in gone)]
        if lines:
            kept.append(a.update(text="<br>".join(lines)))
    fig.layout.annotations = kept


# how the run charts' series read for a watched layer
WATCH_LABELS = {"preact_var": "Var(output)", "grad_preact_var": "Var(∂L/∂output)", "saturation": "output in the flat region"}


def _relabel(fig) -> None:
    from core.figures import NAMES

    for run_col, label in WATCH_LABELS.items():
        old = NAMES[run_col]
        for t in fig.data:
            if t.name == old:
                t.name = label
            if t.hovertemplate and old in t.hovertemplate:
                t.hovertemplate = t.hovertemplate.replace(old, label)


def fig_loss(run: WatchRun):
    """The loss passed to w.step(), by step (log scale when it spans more than a decade)."""
    import plotly.graph_objects as go

    from core.figures.style import (COLOURS, add_note, apply_layout, as_f32, empty_figure, log_ticks,
                                    sample_indices, step_ticks)

    steps = run.steps
    if len(steps) == 0:
        return empty_figure("Loss", "Nothing recorded yet.", 320)
    idx = sample_indices(len(steps), 400)
    x = steps[idx, 0].astype(np.int64)
    fig = go.Figure(go.Scatter(x=x, y=as_f32(steps[idx, 1]), mode="lines+markers" if len(x) <= 20 else "lines",
                               name="loss", line=dict(color=COLOURS["loss"], width=2),
                               hovertemplate="step %{x}: loss %{y:.4g}<extra></extra>"))
    finite = steps[:, 1][np.isfinite(steps[:, 1]) & (steps[:, 1] > 0)]
    if finite.size and finite.max() / finite.min() > 10:
        fig.update_yaxes(**log_ticks(finite))
    bad = np.flatnonzero(~np.isfinite(steps[:, 1]))
    if bad.size and np.isfinite(steps[:, 1]).any():
        add_note(fig, [f"the loss became inf/nan at step {int(steps[bad[0], 0])}"])
    fig.update_xaxes(title_text="step", **step_ticks(x))
    fig.update_yaxes(title_text="loss passed to w.step()")
    return apply_layout(fig, "Training loss", 320)


def figures(run: WatchRun) -> dict:
    """The run charts of `run`: name -> go.Figure (the same builders as a lab run)."""
    from core import figures as F

    stats, steps = run.run_stats, run.run_steps
    out = {}
    fig = F.fig_variance_by_layer(stats, steps)
    _drop_unmeasured(fig)
    _relabel(fig)
    for ann in fig.layout.annotations:  # the subplot titles speak of h, the input of an activation
        if (ann.text or "").startswith("Forward"):
            ann.text = "Forward: each layer's output"
        elif (ann.text or "").startswith("Backward"):
            ann.text = "Backward: ∂L/∂output"
    if len(steps):
        _label_layers(fig, run.names, "x")
    out["variance"] = fig
    for key, column, title in (("heat_forward", "preact_var", "Forward: log10 Var(output) by layer and step"),
                               ("heat_backward", "grad_preact_var", "Backward: log10 Var(∂L/∂output) by layer and step")):
        fig = F.fig_layer_step_heatmap(stats, steps, column, title=title)
        if len(steps):
            _label_layers(fig, run.names, "y")
        out[key] = fig
    out["loss"] = fig_loss(run)
    if np.isfinite(stats[..., RUN_COL["saturation"]]).any():
        fig = F.fig_saturation(stats, steps)
        _drop_unmeasured(fig)
        _relabel(fig)
        fig.layout.title.text = fig.layout.title.text.replace("Saturation and dead units", "Saturation")
        if len(steps):
            _label_layers(fig, run.names, "x")
        out["saturation"] = fig
    fig = F.fig_update_ratio(stats, steps)
    for t in fig.data:
        m = re.fullmatch(r"layer (\d+)", t.name or "")
        if m and int(m.group(1)) <= len(run.names):
            t.name = run.names[int(m.group(1)) - 1]
    out["update"] = fig
    return out


# What to try, for a network that is not one of the lab's (the lab's own advice changes its settings).
WATCH_ADVICE = {
    "vanishing": "Check the initialization of the layers below (He for ReLU, Xavier for tanh), add normalization or "
                 "skip connections, or shorten the path from the loss to the first layers.",
    "exploding": "Scale the initial weights down (He / Xavier for the activation), add normalization, or clip "
                 "gradients; with skips, scale each residual branch (e.g. by 1/√depth).",
    "saturated": "Shrink the weights feeding that layer or normalize its input, so its outputs stay in the "
                 "activation's linear range.",
    "dead": "Use He initialization with zero biases, a smaller learning rate, or leaky ReLU / ELU.",
    "slow": "Raise the learning rate, or fix a vanishing gradient first.",
    "fast": "Lower the learning rate.",
}


@dataclass(frozen=True, eq=False)
class RunView:
    """A watched run in the run table's columns (`AS_RUN`): what the verdict and
    Compare read of a run (config, stats, steps, divergence, version)."""

    config: WatchSetting
    stats: np.ndarray
    steps: np.ndarray
    status: str
    version: int
    divergence: None = None

    @property
    def records(self) -> int:
        return len(self.steps)

    @cached_property
    def diagnosis(self):
        """The lab's verdict on the mapped statistics (where it applies: the
        forward and backward spread, saturation, update sizes), with advice for
        a network of one's own (as `RunRecord.diagnosis` is a lab run's)."""
        from dataclasses import replace

        from core.io.diagnosis import Diagnosis, diagnose

        d = diagnose(self)
        findings = tuple(replace(f, advice=WATCH_ADVICE.get(f.kind, f.advice)) for f in d.findings)
        return Diagnosis(d.verdict, d.headline, findings)


def as_run_view(run: WatchRun) -> RunView:
    return RunView(run.config, run.run_stats, run.run_steps, run.status, run.version)


def diagnosis(run: WatchRun):
    """`RunView.diagnosis` of `run`."""
    return as_run_view(run).diagnosis


__all__ = ["AS_RUN", "FORMAT", "WatchRun", "WatchFileError", "RunView", "from_watch", "from_json", "from_store",
           "to_json_dict", "save_json", "figures", "diagnosis", "as_run_view", "is_watch_document"]
