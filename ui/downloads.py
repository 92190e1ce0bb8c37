"""Downloads of a run (CSV, Parquet, JSON: the CLI's formats) and the code
snippets that build the same network in PyTorch and Keras."""
from __future__ import annotations

from typing import Callable

import streamlit as st

from core.schema import RunConfig
from core.limits import SAVED_RUN_MAX_MB
from core.run.record import RunRecord, progress_text
from core.io.export import export_bytes

from .state import SlotKeys

MIME = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet", "json": "application/json"}


def file_stem(cfg: RunConfig) -> str:
    """gradient-flow_relu_kaiming_normal_d30_seed0: what the files are called."""
    depth = f"d{cfg.depth}" if cfg.widths is None else "w" + "-".join(map(str, cfg.widths[:4]))
    return f"gradient-flow_{cfg.activation}_{cfg.init}{'_bn' if cfg.batchnorm else ''}_{depth}_seed{cfg.seed}"


def export_files(snap: RunRecord) -> dict[str, tuple[str, Callable[[], bytes]]]:
    """fmt → (file name, a function that builds the file's bytes), for csv,
    parquet and json: what the download buttons hand out (built only when
    clicked). The bytes keep inf and nan as the run recorded them."""
    result = snap
    stem = file_stem(snap.config)
    return {fmt: (f"{stem}.{fmt}", lambda fmt=fmt: export_bytes(result, fmt)) for fmt in ("csv", "parquet", "json")}


def download_buttons(snap: RunRecord | None, key: str) -> None:
    """CSV / Parquet / JSON of everything the run recorded (built only when clicked)."""
    if snap is None or len(snap.steps) == 0:
        st.caption("Run a network to download its statistics.")
        return
    if snap.status.moving:
        st.caption("The downloads appear when the run ends (or when you pause it).")
        return
    files = export_files(snap)
    cols = st.columns(3)
    for col, (fmt, (name, make)) in zip(cols, files.items()):
        col.download_button(
            fmt.upper(), icon=":material/download:", data=make, file_name=name,
            mime=MIME[fmt], key=SlotKeys(key).control(f"dl_{fmt}"), on_click="ignore", width="stretch",
            help={"csv": "One row per recorded step and layer (the CLI's table).",
                  "parquet": "The same table, typed and compressed, with the run's settings and how it ended in "
                             "the file's metadata: the compact saved run that **Open a saved run** opens again "
                             "(about a sixth of the JSON).",
                  "json": "Config, per-layer rows, per-step rows and the diagnosis: the file the CLI writes. "
                          f"**Open a saved run** opens it too, up to {SAVED_RUN_MAX_MB} MB."}[fmt])
    st.caption(f"{snap.layer_count} layers · {progress_text(snap)} ({snap.status}).")


def code_snippets(cfg: RunConfig, key: str) -> bool:
    """PyTorch and Keras code for `cfg` (from core.io.codegen); shows nothing and
    returns False while that module is not there."""
    try:
        from core.io import codegen
    except ImportError:
        return False
    tabs = st.tabs(["PyTorch", "Keras"])
    for tab, fn, ext in ((tabs[0], getattr(codegen, "pytorch_code", None), "torch"),
                         (tabs[1], getattr(codegen, "keras_code", None), "keras")):
        with tab:
            if fn is None:
                st.caption("Not available yet.")
                continue
            try:
                code = fn(cfg)
            except Exception as e:
                st.error(f"The code could not be generated ({type(e).__name__}: {e}).")
                continue
            st.code(code, language="python", wrap_lines=True)  # no sideways scrolling, even on a phone
            st.download_button(f"{file_stem(cfg)}_{ext}.py", icon=":material/download:", data=code, file_name=f"{file_stem(cfg)}_{ext}.py",
                               mime="text/x-python", key=SlotKeys(key).control(f"dl_code_{ext}"), on_click="ignore")
    return True
