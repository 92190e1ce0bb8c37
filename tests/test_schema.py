"""RunConfig: validation messages, the URL and CLI round trips, lenient URL parsing."""
from __future__ import annotations

import dataclasses
import math
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.io import cli
from core.schema import FIELDS, ConfigError, RunConfig
from core.limits import HARD
from core.registry import ACTIVATIONS, DATASETS, INITIALIZERS, OPTIMIZERS

REGISTRIES = {"activation": ACTIVATIONS, "init": INITIALIZERS, "dataset": DATASETS, "optimizer": OPTIMIZERS}


# -- valid configs, drawn from the declared ranges ---------------------------------------------

@st.composite
def configs(draw) -> RunConfig:
    dataset = draw(st.sampled_from([n for n, d in DATASETS.items() if "vector" in d.kinds]))  # the MLP's
    kw = dict(
        activation=draw(st.sampled_from(list(ACTIVATIONS))),
        init=draw(st.sampled_from(list(INITIALIZERS))),
        sigma_w=draw(st.floats(0.0, 100.0, allow_nan=False)),
        sigma_b=draw(st.floats(0.0, 100.0, allow_nan=False)),
        bias=draw(st.booleans()),
        batchnorm=draw(st.booleans()),
        dataset=dataset,
        batch_size=draw(st.integers(2, DATASETS[dataset].train_size)),
        steps=draw(st.integers(0, HARD.max_steps)),
        lr=draw(st.floats(0.0, 1000.0, exclude_min=True, allow_nan=False)),
        optimizer=draw(st.sampled_from(list(OPTIMIZERS))),
        seed=draw(st.integers(0, 2**31 - 1)),
        record_every=draw(st.integers(0, HARD.max_steps)),
        eval_every=draw(st.integers(0, HARD.max_steps)),
    )
    if draw(st.booleans()):
        kw["widths"] = tuple(draw(st.lists(st.integers(1, HARD.max_width), min_size=1, max_size=6)))
    else:
        kw["depth"] = draw(st.integers(1, HARD.max_depth))
        kw["width"] = draw(st.integers(1, HARD.max_width))
    if dataset == "gaussian" and draw(st.booleans()):
        kw["input_dim"] = draw(st.integers(1, HARD.max_width))
    return RunConfig(**kw)


def cli_config(args: list[str]) -> RunConfig:
    """What `python -m core run ARGS --out x.csv` would train (the parser and its conversion)."""
    ns = cli.build_parser().parse_args(["run", *args, "--out", "x.csv"])
    return cli._config_from_args(ns)


# -- FIELDS is the declared list of RunConfig's fields ---------------------------------------

def test_fields_list_every_runconfig_field_in_order_with_its_type():
    fields = dataclasses.fields(RunConfig)
    assert list(FIELDS) == [f.name for f in fields]
    hints = typing.get_type_hints(RunConfig)
    for f in fields:
        spec = FIELDS[f.name]
        hint = hints[f.name]
        optional = type(None) in typing.get_args(hint)
        assert spec.optional == optional, f.name
        base = [a for a in typing.get_args(hint) if a is not type(None)][0] if optional else hint
        assert spec.kind is (typing.get_origin(base) or base), f.name
        assert spec.help.strip().endswith(")") or spec.help.strip().endswith("."), f.name


def test_defaults_are_valid_and_hashable():
    cfg = RunConfig()
    assert hash(cfg) == hash(RunConfig())
    assert cfg.hidden_widths == (cfg.width,) * cfg.depth


# -- validation messages name the field, the value and what is allowed -----------------------

@pytest.mark.parametrize(
    "field,value,allowed",
    [
        ("depth", 0, ["1", "1,000"]),
        ("depth", HARD.max_depth + 1, ["1", "1,000"]),
        ("depth", 2.5, ["whole number"]),
        ("depth", True, ["whole number"]),
        ("width", -3, ["1", "16,384"]),
        ("input_dim", 0, ["1", "16,384"]),
        ("sigma_w", -0.5, ["at least 0", "100"]),
        ("sigma_w", math.inf, ["finite"]),
        ("sigma_b", math.nan, ["finite"]),
        ("lr", 0.0, ["greater than 0", "1000"]),
        ("lr", 1e4, ["greater than 0", "1000"]),
        ("batch_size", 1, ["2"]),
        ("steps", -1, ["0"]),
        ("seed", -1, ["0"]),
        ("record_every", -2, ["0"]),
        ("eval_every", -2, ["0"]),
        ("bias", "yes", ["true or false"]),
        ("batchnorm", 1, ["true or false"]),
        ("widths", (64, 0), ["1 to 1000", "16,384"]),
        ("widths", (0, 64), ["1 to 1000", "16,384"]),  # not reported as a bad `width`
        ("widths", (), ["64,64,32"]),
    ],
)
def test_bad_value_message_names_field_value_and_what_is_allowed(field, value, allowed):
    kw = {field: value}
    if field == "input_dim":
        kw["dataset"] = "gaussian"
    with pytest.raises(ConfigError) as info:
        RunConfig(**kw)
    e = info.value
    assert e.field == field
    assert field in e.message
    shown = str(value)
    if isinstance(value, tuple):
        shown = "" if not value else str(value[0])
    assert shown in e.message
    for text in allowed:
        assert text in e.message, (text, e.message)
    assert e.message.replace("e.g.", "eg").count(". ") == 0 and e.message.endswith(".")  # one sentence


@pytest.mark.parametrize("field", list(REGISTRIES))
def test_bad_choice_lists_every_registered_name(field):
    with pytest.raises(ConfigError) as info:
        RunConfig(**{field: "no_such_thing"})
    e = info.value
    assert e.field == field and "'no_such_thing'" in e.message
    for name in REGISTRIES[field]:
        assert name in e.message


def test_widths_override_depth_and_width():
    cfg = RunConfig(widths=(7, 5, 3), depth=9, width=11)
    assert (cfg.depth, cfg.width, cfg.hidden_widths) == (3, 7, (7, 5, 3))
    assert cfg.replace(depth=4).hidden_widths == (7,) * 4  # depth/width given again: widths cleared
    assert cfg.replace(width=2).hidden_widths == (2,) * 3
    assert RunConfig(widths=[4, 4]).widths == (4, 4)  # lists become tuples (hashable)


def test_parameter_count_matches_torch():
    from core.models.mlp import build_network

    for cfg in [RunConfig(depth=3, width=8, dataset="moons", batch_size=16),
                RunConfig(widths=(5, 9), dataset="gaussian", input_dim=4, bias=False, batchnorm=True, batch_size=16)]:
        net = build_network(cfg)
        torch_count = sum(p.numel() for p in net.parameters())
        assert cfg.parameter_count() == torch_count


def test_batch_size_at_most_the_training_split():
    from core.registry import ARCHITECTURES

    for name, ds in DATASETS.items():
        arch = next(a for a in ARCHITECTURES.values() if a.accepts(ds))  # one that reads this kind of data
        kw = dict(arch=arch.name, **({"seq_len": ds.seq_len} if ds.seq_len else {}))
        RunConfig(dataset=name, batch_size=ds.train_size, **kw)  # the whole split is fine
        with pytest.raises(ConfigError) as info:
            RunConfig(dataset=name, batch_size=ds.train_size + 1, **kw)
        assert info.value.field == "batch_size"
        assert f"{ds.train_size:,}" in info.value.message and name in info.value.message


def test_input_dim_only_for_gaussian():
    assert RunConfig(dataset="gaussian", width=16, input_dim=5).features == 5
    assert RunConfig(dataset="gaussian", width=16).features == 16  # default: the first width
    assert RunConfig(dataset="gaussian", widths=(9, 4)).features == 9
    assert RunConfig(dataset="digits", input_dim=64).features == 64  # the dataset's own size is accepted
    for name in ("digits", "moons", "spirals", "circles"):
        with pytest.raises(ConfigError) as info:
            RunConfig(dataset=name, input_dim=3)
        assert info.value.field == "input_dim" and "gaussian" in info.value.message


# -- round trips ------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_query_round_trip(cfg):
    query = cfg.to_query()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in query.items())
    back, notes = RunConfig.from_query(query)
    assert notes == []
    assert back == cfg
    # with a prefix (Compare's second config) and a key to ignore (the page's own parameters)
    prefixed = {"b_" + k: v for k, v in query.items()} | {"page": "Compare"}
    back, notes = RunConfig.from_query(prefixed, prefix="b_", ignore=["page"])
    assert (back, notes) == (cfg, [])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_cli_round_trip(cfg):
    args = cfg.to_cli_args()
    assert cli_config(args) == cfg
    assert RunConfig.from_strings(cfg.to_query()) == cfg


def test_cli_args_use_the_documented_flags():
    cfg = RunConfig(depth=4, width=16, activation="relu", init="kaiming_normal", batchnorm=True, bias=False,
                    dataset="gaussian", input_dim=3, sigma_w=1.5, lr=0.1, optimizer="adam", seed=3, record_every=2)
    args = cfg.to_cli_args()
    for flag in ["--depth", "--width", "--input-dim", "--activation", "--init", "--sigma-w", "--sigma-b", "--batchnorm",
                 "--no-bias", "--dataset", "--batch-size", "--steps", "--lr", "--optimizer", "--seed", "--record-every"]:
        assert flag in args, flag
    assert args[args.index("--depth") + 1] == "4" and args[args.index("--sigma-w") + 1] == "1.5"
    # CLI.md's documented spellings parse to the same config
    doc = ["--depth", "4", "--width", "16", "--input-dim", "3", "--activation", "relu", "--init", "kaiming_normal",
           "--sigma-w", "1.5", "--no-bias", "--batchnorm", "--dataset", "gaussian", "--optimizer", "adam",
           "--lr", "0.1", "--seed", "3", "--record-every", "2"]
    assert cli_config(doc) == cfg
    assert cli_config(["--widths", "8,4,2"]).hidden_widths == (8, 4, 2)


def test_query_uses_url_spellings():
    q = RunConfig(depth=30, activation="relu", init="kaiming_normal", batchnorm=False, seed=1).to_query()
    assert (q["depth"], q["activation"], q["init"], q["batchnorm"], q["seed"]) == ("30", "relu", "kaiming_normal",
                                                                                   "false", "1")
    assert "widths" not in q and "input_dim" not in q  # None is omitted, so the default applies
    q = RunConfig(widths=(8, 4)).to_query()
    assert q["widths"] == "8,4" and "depth" not in q and "width" not in q
    # the example link of CLI.md
    cfg, notes = RunConfig.from_query({"depth": "30", "activation": "relu", "init": "kaiming_normal",
                                       "batchnorm": "false", "seed": "1"})
    assert notes == [] and cfg == RunConfig(depth=30, activation="relu", init="kaiming_normal", seed=1)


# -- the lenient URL parser -------------------------------------------------------------------

DEFAULT = RunConfig()


@pytest.mark.parametrize(
    "key,text",
    [("depth", "abc"), ("depth", "0"), ("depth", "1e3"), ("width", "-4"), ("sigma_w", "nan"), ("sigma_w", "1e999"),
     ("lr", "0"), ("activation", "swish!"), ("init", ""), ("bias", "maybe"), ("batchnorm", "2"), ("seed", "x" * 500),
     ("steps", "3.5"), ("widths", "8,,4"), ("widths", "8,0"), ("dataset", "mnist"), ("optimizer", "lbfgs")],
)
def test_from_query_bad_value_falls_back_to_default_with_a_note(key, text):
    cfg, notes = RunConfig.from_query({key: text, "seed": "5"} if key != "seed" else {key: text, "steps": "7"})
    assert getattr(cfg, key) == getattr(DEFAULT, key)
    # the other, valid, parameter still applies
    if key != "seed":
        assert cfg.seed == 5
    else:
        assert cfg.steps == 7
    assert len(notes) == 1
    assert key in notes[0] and "default" in notes[0].lower()
    assert len(notes[0]) < 400  # a 500-character value is shortened, not echoed


def test_from_query_invalid_widths_keeps_valid_depth_and_names_widths():
    # widths is invalid, so it is not given: depth and width from the same link apply.
    cfg, notes = RunConfig.from_query({"widths": "8,0", "depth": "5", "width": "9"})
    assert cfg.hidden_widths == (9,) * 5
    assert len(notes) == 1 and "widths" in notes[0]


def test_from_query_valid_widths_win_over_depth_with_a_note():
    cfg, notes = RunConfig.from_query({"widths": "8,4", "depth": "5"})
    assert cfg.hidden_widths == (8, 4)
    assert len(notes) == 1 and "'depth'" in notes[0] and "widths" in notes[0]


def test_from_query_unknown_and_repeated_keys_get_notes():
    cfg, notes = RunConfig.from_query({"depth": ["3", "4"], "colour": "red", "seed": "2"})
    assert cfg.depth == 4 and cfg.seed == 2
    assert len(notes) == 2
    assert any("'depth'" in n and "2 times" in n for n in notes)
    assert any("'colour'" in n and "nknown" in n for n in notes)


def test_from_query_cross_field_errors_drop_the_offending_field():
    cfg, notes = RunConfig.from_query({"dataset": "digits", "batch_size": "1500", "depth": "3"})
    assert (cfg.dataset, cfg.batch_size, cfg.depth) == ("digits", DEFAULT.batch_size, 3)
    assert len(notes) == 1 and "batch_size" in notes[0] and "1,438" in notes[0]
    cfg, notes = RunConfig.from_query({"dataset": "moons", "input_dim": "7"})
    assert cfg.dataset == "moons" and cfg.input_dim is None
    assert len(notes) == 1 and "input_dim" in notes[0]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([*FIELDS, "junk", "b_depth"]),
                       st.one_of(st.text(max_size=30), st.lists(st.text(max_size=10), max_size=3)), max_size=8))
def test_from_query_never_raises_and_always_returns_a_valid_config(params):
    cfg, notes = RunConfig.from_query(params)
    cfg.validate()
    assert all(isinstance(n, str) and n for n in notes)
    # every key that was not applied verbatim is explained by a note naming it
    for key, raw in params.items():
        if key not in FIELDS:
            assert any(repr(key) in n for n in notes)


def test_from_strings_is_strict():
    with pytest.raises(ConfigError) as info:
        RunConfig.from_strings({"depth": "zero"})
    assert info.value.field == "depth"
    with pytest.raises(ConfigError) as info:
        RunConfig.from_strings({"colour": "red"})
    assert info.value.field == "colour"
    with pytest.raises(ConfigError) as info:
        RunConfig.from_strings({"depth": "3", "widths": "4,4"})
    assert info.value.field == "widths"


def test_from_dict_is_strict_about_types():
    good = RunConfig(depth=3, dataset="moons", batch_size=16).to_dict()
    assert RunConfig.from_dict(good) == RunConfig(depth=3, dataset="moons", batch_size=16)
    for key, bad in [("depth", "3"), ("depth", 3.0), ("bias", 1), ("sigma_w", "1"), ("widths", [1, "2"]),
                     ("activation", 3), ("seed", True)]:
        with pytest.raises(ConfigError) as info:
            RunConfig.from_dict({**good, key: bad})
        assert info.value.field == key


# -- server limits ------------------------------------------------------------------------------

def test_limits_from_env():
    from core.limits import Limits

    lim = Limits.from_env({"GFL_MAX_DEPTH": "200", "GFL_MAX_RUN_SECONDS": "12.5", "GFL_MAX_WIDTH": " "})
    assert (lim.max_depth, lim.max_run_seconds, lim.max_width) == (200, 12.5, Limits().max_width)
    assert Limits.from_env({"GFL_MAX_RUN_SECONDS": "inf"}).max_run_seconds == math.inf
    for bad in ["abc", "0", "-3", "nan", "inf"]:
        with pytest.raises(ValueError) as info:
            Limits.from_env({"GFL_MAX_DEPTH": bad})
        assert "GFL_MAX_DEPTH" in str(info.value)
    with pytest.raises(ValueError):
        Limits.from_env({"GFL_MAX_RUN_SECONDS": "nan"})


def test_limits_violation_names_the_field_and_the_variable():
    from core.limits import Limits

    lim = Limits(max_depth=10, max_width=64, max_batch_size=32, max_steps=100, max_work=10**7)
    assert lim.violation(RunConfig(depth=10, width=64, batch_size=32, steps=100, dataset="gaussian")) is None
    for kw, field, var in [(dict(depth=11), "depth", "GFL_MAX_DEPTH"), (dict(widths=(8, 65)), "width", "GFL_MAX_WIDTH"),
                           (dict(batch_size=33), "batch_size", "GFL_MAX_BATCH_SIZE"),
                           (dict(steps=101), "steps", "GFL_MAX_STEPS")]:
        cfg = RunConfig(**{**dict(depth=2, width=8, batch_size=8, steps=1, dataset="gaussian"), **kw})
        got = lim.violation(cfg)
        assert got is not None and got[0] == field and var in got[1]
    # work = parameters × batch, with the parameter count torch reports
    cfg = RunConfig(depth=10, width=64, batch_size=32, steps=1, dataset="gaussian")
    small = Limits(max_work=cfg.parameter_count() * 32)
    assert small.violation(cfg) is None
    assert Limits(max_work=cfg.parameter_count() * 32 - 1).violation(cfg)[0] == "width"


# -- for people: the settings diff, the one-line description, the one lenient loop ------------------------

def test_diff_names_settings_and_values_as_people_read_them():
    a = RunConfig(depth=30, activation="relu", init="xavier_normal")
    b = a.replace(init="kaiming_normal", batchnorm=True, lr=0.1)
    assert [tuple(c) for c in a.diff(b)] == [
        ("init", "Initializer", INITIALIZERS["xavier_normal"].label, INITIALIZERS["kaiming_normal"].label),
        ("batchnorm", "BatchNorm", "off", "on"), ("lr", "Learning rate", "0.05", "0.1")]
    assert str(a.diff(b)[0]) == "Initializer Xavier/Glorot normal → He/Kaiming normal"
    assert a.diff(a) == []
    # the same hidden layers written two ways are not a difference; other layers are
    assert RunConfig(depth=2, width=8).diff(RunConfig(widths=(8, 8))) == []
    assert [c.name for c in RunConfig(depth=3, width=8).diff(RunConfig(widths=(8, 4)))] == ["depth", "widths"]
    assert RunConfig(widths=(8, 4)).diff(RunConfig(depth=2, width=8))[-1].new == "depth × width"


def test_describe_uses_the_registries_labels_long_and_short():
    cfg = RunConfig(depth=20, width=128, activation="relu", init="normal", sigma_w=1.5, batchnorm=True, steps=200)
    long, short = cfg.describe(), cfg.describe(short=True)
    for text in (long, short):
        assert ACTIVATIONS["relu"].label in text and INITIALIZERS["normal"].label in text and "BatchNorm" in text
        assert "(σ_w, σ_b) = (1.5, 0)" in text and "200 steps" in text and "seed 0" in text
    assert "He/Kaiming normal (σ_w = 2)" in cfg.replace(init="kaiming_normal", sigma_w=2.0).describe()
    assert long.startswith("20 hidden layers of 128 units") and short.startswith("20 × 128 · ")
    assert "BatchNorm" not in RunConfig().describe()


def test_lenient_drops_a_refused_value_to_the_base_and_a_clashing_base_value_to_the_default():
    base = RunConfig(dataset="gaussian", batch_size=2000, depth=3)
    cfg, dropped = RunConfig.lenient({"depth": 0, "seed": 4}, base)
    assert (cfg.depth, cfg.seed) == (3, 4) and [(e.field, kept) for e, kept in dropped] == [("depth", "base")]
    # digits has 1,438 training examples: base's batch of 2,000 no longer fits, so batch_size takes the default
    cfg, dropped = RunConfig.lenient({"dataset": "digits"}, base)
    assert (cfg.dataset, cfg.batch_size) == ("digits", RunConfig().batch_size)
    assert [(e.field, kept) for e, kept in dropped] == [("batch_size", "default")]
    cfg, dropped = RunConfig.lenient({}, None)
    assert (cfg, dropped) == (RunConfig(), [])


def test_from_query_over_a_base_names_the_prefixed_parameter_and_what_it_uses():
    a = RunConfig(depth=7, init="orthogonal")
    b, notes = RunConfig.from_query({"b_init": "nope", "b_depth": "3"}, prefix="b_", base=a, using="A's value")
    assert (b.depth, b.init) == (3, "orthogonal")
    assert len(notes) == 1 and "Invalid b_init 'nope'" in notes[0] and notes[0].endswith("Using A's value.")


# -- aliases: one resolver behind links, the CLI and files ------------------------------------------------

ALIASES = {("activation", "swish"): "silu", ("init", "he_normal"): "kaiming_normal",
           ("init", "glorot_uniform"): "xavier_uniform", ("init", "glorot_normal"): "xavier_normal",
           ("init", "he_uniform"): "kaiming_uniform"}


@pytest.mark.parametrize("field,alias", list(ALIASES), ids=[a for _, a in ALIASES])
def test_common_aliases_are_read_as_the_registered_name_everywhere(field, alias):
    want = ALIASES[(field, alias)]
    cfg, notes = RunConfig.from_query({field: alias})                  # a link
    assert getattr(cfg, field) == want and not notes
    assert cfg.to_query()[field] == want                               # ... which then carries the name itself
    assert getattr(RunConfig.from_strings({field: alias}), field) == want                       # the CLI
    assert getattr(RunConfig.from_dict({**RunConfig().to_dict(), field: alias}), field) == want  # a file


def test_every_alias_resolves_to_its_own_entry_and_none_is_another_entrys_name():
    from core.registry import resolve

    for registry in (ACTIVATIONS, INITIALIZERS, DATASETS, OPTIMIZERS):
        seen: dict[str, str] = {}
        for name, entry in registry.items():
            assert resolve(registry, name) == name
            for alias in entry.aliases:
                assert alias not in registry, f"{alias} is an entry of its own"
                assert seen.setdefault(alias, name) == name, f"{alias} names two entries"
                assert resolve(registry, alias) == name
                assert resolve(registry, alias.upper().replace("_", "-")) == name  # other capitals and dashes


def test_other_spellings_of_a_name_are_read_and_unknown_names_still_refused_by_name():
    cfg, notes = RunConfig.from_query({"activation": "ReLU", "init": "Kaiming-Normal", "optimizer": " Adam "})
    assert (cfg.activation, cfg.init, cfg.optimizer) == ("relu", "kaiming_normal", "adam") and not notes
    cfg, notes = RunConfig.from_query({"init": "he_normalish"})
    assert cfg.init == RunConfig().init and len(notes) == 1 and "'he_normalish'" in notes[0] and "init" in notes[0]
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"activation": "swishy"})
    assert info.value.field == "activation"


# -- clamping to the server's limits where a value enters -----------------------------------------------

def test_clamp_brings_each_value_over_a_limit_down_to_it_with_a_sentence():
    from core.limits import Limits

    lim = Limits()  # depth 100, width 1024, batch 1024, steps 5,000
    cfg = RunConfig(depth=500, width=2048, batch_size=1438, steps=10_000_000)
    got, notes = lim.clamp(cfg)
    assert (got.depth, got.width, got.batch_size, got.steps) == (100, 1024, 1024, 5000)
    assert notes == ["depth 500 is over this server's limit of 100; using 100.",
                     "width 2,048 is over this server's limit of 1,024; using 1,024.",
                     "batch_size 1,438 is over this server's limit of 1,024; using 1,024.",
                     "steps 10,000,000 is over this server's limit of 5,000; using 5,000."]
    assert got.replace(width=8).depth == 100 and lim.violation(got.replace(width=8)) is None
    inside = RunConfig(depth=100, steps=5000)
    assert lim.clamp(inside) == (inside, [])                      # within the limits: unchanged, no note
    for field in ("depth", "width", "batch_size", "steps"):       # the widgets' maxima are the same numbers
        assert lim.bound(field) == getattr(lim, "max_" + field)
    assert lim.bound("seed") is None


def test_clamp_cuts_per_layer_widths_to_the_limits():
    from core.limits import Limits

    lim = Limits(max_depth=3, max_width=64)
    got, notes = lim.clamp(RunConfig(widths=(128, 32, 16, 8), dataset="gaussian"))
    assert got.widths == (64, 32, 16) and got.depth == 3 and got.width == 64
    assert len(notes) == 2 and notes[0].startswith("depth 4 is over this server's limit of 3")
    assert notes[1].startswith("width 128 is over this server's limit of 64")


def test_violation_and_clamp_share_one_sentence():
    from core.limits import Limits

    field, sentence = Limits().violation(RunConfig(depth=500))
    assert field == "depth" and sentence.startswith("depth 500 is over this server's limit of 100")
    assert Limits().clamp(RunConfig(depth=500))[1][0].startswith(Limits.over("depth", 500, 100))
