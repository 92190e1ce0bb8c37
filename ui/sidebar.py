"""The settings controls: one widget per RunConfig field, returning a RunConfig.

    config = sidebar(defaults, key_prefix="explore")

Widgets are grouped as Network, Initialization, Data & training, Recording;
their options come from the registries and their help text from `FIELDS`
and the registries, so a new activation or initializer needs no change here.
Widget keys are `SlotKeys(key_prefix).widget(field)` (ui.state), e.g. `explore_depth`. The widgets start from `defaults`
(usually the URL's settings) and are reset to them whenever `defaults` change
(a new link opened in the same session); otherwise they keep what the user set.

Limits are enforced where a value enters: number inputs and the depth slider
carry this server's limit as their maximum (`Limits.bound`), and settings put
into the widgets from elsewhere (a link, a saved file, a verdict's suggestion)
go through `Limits.clamp` first, with a note in the sidebar.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from core.schema import FIELDS, ConfigError, RunConfig
from core.limits import HARD
from core.registry import ACTIVATIONS, ARCH_OPTIONS, ARCHITECTURES, DATASETS, INITIALIZERS, OPTIMIZERS

from .markdown import escape_markdown
from .session import server_limits
from .state import SlotKeys

# Field -> widget; `widths_text` is the text box behind `widths`.
_WIDGET_FIELDS = ("depth", "width", "widths_text", "input_dim", "activation", "init", "sigma_w", "sigma_b", "bias",
                  "batchnorm", "dataset", "batch_size", "steps", "lr", "optimizer", "seed", "record_every",
                  "eval_every", "arch", "residual_scale", "seq_len", "recurrent_init", "forget_bias")


def widget_values(cfg: RunConfig) -> dict[str, Any]:
    """What each widget shows for `cfg`."""
    values = {name: getattr(cfg, name) for name in _WIDGET_FIELDS if name != "widths_text"}
    values["widths_text"] = "" if cfg.widths is None else FIELDS["widths"].format(cfg.widths)
    values["sigma_w"], values["sigma_b"], values["lr"] = float(cfg.sigma_w), float(cfg.sigma_b), float(cfg.lr)
    values["forget_bias"] = float(cfg.forget_bias)
    return values


def set_widgets(cfg: RunConfig, key_prefix: str) -> None:
    """Put `cfg` into the widgets of `key_prefix` (call before they are drawn, or from a callback), within
    this server's limits: a value over one is brought down to it, with a note shown by the controls."""
    cfg, notes = server_limits().clamp(cfg)
    keys = SlotKeys(key_prefix)
    for name, value in widget_values(cfg).items():
        st.session_state[keys.widget(name)] = value
    if notes:
        st.session_state[keys.control("clamped")] = notes


def reset_widgets(cfg: RunConfig, key_prefix: str) -> None:
    """Set the widgets of `key_prefix` to `cfg` now and make it their defaults (a link that just arrived,
    even one equal to the last)."""
    set_widgets(cfg, key_prefix)
    st.session_state[SlotKeys(key_prefix).widget_defaults] = cfg


def suggest(changes: dict, key_prefix: str) -> None:
    """Ask for `changes` (RunConfig fields → values, e.g. a verdict's `Suggestion.changes`) to be put into the
    widgets of `key_prefix` on the next full run (a button inside a fragment cannot redraw the sidebar)."""
    st.session_state[SlotKeys(key_prefix).suggested] = dict(changes)


def prepare_widgets(defaults: RunConfig, key_prefix: str) -> None:
    """Before the widgets of `key_prefix` are drawn: reset them to `defaults` when
    those changed (a new link), else restore any Streamlit forgot on a page switch;
    then apply a suggestion asked for (`suggest`) to what the widgets held."""
    keys = SlotKeys(key_prefix)
    ss = st.session_state
    source = keys.widget_defaults
    if ss.get(source) != defaults:
        set_widgets(defaults, key_prefix)
        ss[source] = defaults
    else:
        for name, value in widget_values(defaults).items():  # widgets forgotten after a page switch
            ss.setdefault(keys.widget(name), value)
    changes = ss.pop(keys.suggested, None)
    if changes:
        base = ss.get(keys.built) or defaults
        cfg, _ = RunConfig.lenient(changes, base)
        set_widgets(cfg, key_prefix)


def _help(name: str, extra: str = "") -> str:
    return FIELDS[name].help + (f" {extra}" if extra else "")


def config_controls(defaults: RunConfig, key_prefix: str = "explore", *, container=None) -> RunConfig:
    """Draw the controls into `container` (default: the sidebar) and return the RunConfig they describe.

    A combination the config rejects (e.g. a batch larger than the dataset)
    shows one sentence naming the setting, and that setting falls back to
    `defaults` (or, if that fails too, to RunConfig's default).
    """
    prepare_widgets(defaults, key_prefix)
    keys = SlotKeys(key_prefix)
    k = keys.widget
    ss = st.session_state
    box = st.sidebar if container is None else container
    limits = server_limits()
    v: dict[str, Any] = {}
    problems: list[str] = []

    with box.expander("**Network**", expanded=True):
        arch = _arch_controls(v, k, limits)
        widths_on = arch.takes("widths") and bool(str(ss.get(k("widths_text"), "")).strip())
        v["depth"] = st.slider(f"Depth ({arch.depth_means})", 1, limits.max_depth, key=k("depth"), disabled=widths_on,
                               help=_help("depth", f"This server runs up to {limits.max_depth}."))
        v["width"] = st.number_input(f"Width ({arch.width_means} per {arch.depth_means.split()[-1].rstrip('s')})", 1,
                                     limits.max_width, step=16, key=k("width"), disabled=widths_on,
                                     help=_help("width", f"This server runs up to {limits.max_width:,}."))
        text = st.text_input("Per-layer widths (optional)", key=k("widths_text"), placeholder="e.g. 256,128,64",
                             disabled=not arch.takes("widths"),
                             help=_help("widths", "Leave empty to use depth × width."))
        v["widths"] = None
        if text.strip() and arch.takes("widths"):
            try:
                v["widths"] = FIELDS["widths"].parse(text)
            except ConfigError as e:
                problems.append(e.message + " Using depth × width.")
        v["activation"] = st.selectbox("Activation φ", list(ACTIVATIONS), key=k("activation"),
                                       format_func=lambda n: ACTIVATIONS[n].label, help=_help("activation"))
        st.caption(ACTIVATIONS[v["activation"]].help)
        v["batchnorm"] = st.toggle("BatchNorm", key=k("batchnorm"), help=_help("batchnorm"),
                                   disabled=not arch.takes("batchnorm")) and arch.takes("batchnorm")
        v["bias"] = st.toggle("Bias in every layer", key=k("bias"), help=_help("bias"))

    with box.expander("**Initialization**", expanded=True):
        v["init"] = st.selectbox("Initializer", list(INITIALIZERS), key=k("init"),
                                 format_func=lambda n: INITIALIZERS[n].label, help=_help("init"))
        ini = INITIALIZERS[v["init"]]
        st.markdown(f"`{ini.formula}`")
        st.caption(ini.help)
        c1, c2 = st.columns(2)
        v["sigma_w"] = c1.number_input("σ_w", 0.0, 100.0, step=0.05, format="%g", key=k("sigma_w"),
                                       help=_help("sigma_w"))
        v["sigma_b"] = c2.number_input("σ_b", 0.0, 100.0, step=0.05, format="%g", key=k("sigma_b"),
                                       disabled=not ini.uses_sigma_b,
                                       help=_help("sigma_b", "" if ini.uses_sigma_b else "Biases start at 0 under this initializer."))
        if not ini.uses_sigma_b and v["sigma_w"] != 1.0:
            st.caption(f"σ_w = {v['sigma_w']:g} multiplies this scheme's standard deviation.")

    with box.expander("**Data & training**", expanded=True):
        readable = [name for name, d in DATASETS.items() if arch.accepts(d)]
        if ss.get(k("dataset")) not in readable:  # the arch changed to one that cannot read it
            ss[k("dataset")] = arch.default_dataset
        v["dataset"] = st.selectbox("Dataset", readable, key=k("dataset"),
                                    format_func=lambda n: DATASETS[n].label, help=_help("dataset"))
        st.caption(DATASETS[v["dataset"]].help)
        gaussian = DATASETS[v["dataset"]].input_dim is None
        dim = st.number_input("Input features", 1, HARD.max_width, step=16, key=k("input_dim"), disabled=not gaussian,
                              placeholder="first hidden width", help=_help("input_dim"))
        v["input_dim"] = int(dim) if gaussian and dim is not None else None
        c1, c2 = st.columns(2)
        v["batch_size"] = c1.number_input("Batch size", 2, limits.max_batch_size, step=32, key=k("batch_size"),
                                          help=_help("batch_size", f"At most {min(limits.max_batch_size, DATASETS[v['dataset']].train_size):,} here."))
        v["steps"] = c2.number_input("Steps", 0, limits.max_steps, step=50, key=k("steps"),
                                     help=_help("steps", f"This server runs up to {limits.max_steps:,}."))
        c1, c2 = st.columns(2)
        v["lr"] = c1.number_input("Learning rate", 0.0, 1000.0, step=0.01, format="%g", key=k("lr"), help=_help("lr"))
        v["optimizer"] = c2.selectbox("Optimizer", list(OPTIMIZERS), key=k("optimizer"),
                                      format_func=lambda n: OPTIMIZERS[n].label, help=_help("optimizer"))
        v["seed"] = st.number_input("Seed", 0, 2**31 - 1, step=1, key=k("seed"), help=_help("seed"))

    with box.expander("**Recording**", expanded=False):
        v["record_every"] = st.number_input("Record statistics every N steps", 0, HARD.max_steps, step=1,
                                            key=k("record_every"), help=_help("record_every"))
        v["eval_every"] = st.number_input("Held-out accuracy every N steps", 0, HARD.max_steps, step=1,
                                          key=k("eval_every"), help=_help("eval_every"))
        st.button("↺ Reset to the link's settings", key=keys.control("reset"), on_click=set_widgets, args=(defaults, key_prefix),
                  help="Put every control back to the settings this page was opened with.")

    cfg = _build(v, defaults, problems)
    cfg, over = limits.clamp(cfg)  # per-layer widths typed over a limit (the boxes themselves stop at it)
    clamped = ss.pop(keys.control("clamped"), None) or []
    for note in dict.fromkeys(clamped + over):
        box.warning(escape_markdown(note), icon=":material/vertical_align_top:")
    for p in problems:
        box.error(escape_markdown(p))  # quotes what was typed into the widths box
    ss[keys.built] = cfg
    return cfg


def _arch_controls(v: dict[str, Any], k, limits):
    """The architecture choice and the options its registry entry takes (the others keep their defaults,
    so switching back and forth never leaves a stray setting). Returns the entry."""
    ss = st.session_state
    v["arch"] = st.selectbox("Architecture", list(ARCHITECTURES), key=k("arch"),
                             format_func=lambda n: ARCHITECTURES[n].label, help=_help("arch"))
    arch = ARCHITECTURES[v["arch"]]
    st.caption(arch.help)
    for name in ARCH_OPTIONS:
        if name in ("widths", "batchnorm") or arch.takes(name):
            continue
        v[name] = RunConfig.__dataclass_fields__[name].default
    spec = FIELDS
    if arch.takes("residual_scale"):
        reg = spec["residual_scale"].registry
        v["residual_scale"] = st.selectbox(spec["residual_scale"].label, list(reg), key=k("residual_scale"),
                                           format_func=lambda n: reg[n].label, help=_help("residual_scale"))
        st.caption(reg[v["residual_scale"]].help)
    if arch.takes("seq_len"):
        v["seq_len"] = st.number_input(spec["seq_len"].label, 1, limits.max_seq_len, step=5, key=k("seq_len"),
                                       help=_help("seq_len", f"This server runs up to {limits.max_seq_len}."))
    if arch.takes("recurrent_init"):
        reg = spec["recurrent_init"].registry
        v["recurrent_init"] = st.selectbox(spec["recurrent_init"].label, list(reg), key=k("recurrent_init"),
                                           format_func=lambda n: reg[n].label, help=_help("recurrent_init"))
    if arch.takes("forget_bias"):
        v["forget_bias"] = st.number_input(spec["forget_bias"].label, -100.0, 100.0, step=0.5, format="%g",
                                           key=k("forget_bias"), help=_help("forget_bias"))
    return arch


def _build(values: dict[str, Any], defaults: RunConfig, problems: list[str]) -> RunConfig:
    """The widgets' RunConfig; a value the checks refuse keeps `defaults`' (`RunConfig.lenient`), with a sentence."""
    values = dict(values)
    if values.get("widths") is not None:
        values.pop("depth"), values.pop("width")
    cfg, dropped = RunConfig.lenient(values, defaults)
    for e, kept in dropped:
        used = FIELDS[e.field].show(getattr(cfg, e.field))
        problems.append(e.message + (f" Using {used}." if kept == "base" else f" Using the default, {used}."))
    return cfg


def sidebar(defaults: RunConfig, key_prefix: str = "explore") -> RunConfig:
    """The settings controls in the sidebar; returns the RunConfig they describe."""
    st.sidebar.header("Settings")
    return config_controls(defaults, key_prefix)


__all__ = ["sidebar", "config_controls", "prepare_widgets", "set_widgets", "reset_widgets", "suggest", "widget_values"]
