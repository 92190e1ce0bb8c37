"""RunConfig: one experiment, as one frozen (hashable) dataclass.

It is the only thing written to and read from the URL and the command line,
and the cache key of a run. `FIELDS` declares every setting once (type,
help, how it is parsed from text), and one loop turns a config into query
parameters or CLI arguments and back.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Callable, Iterable, Mapping, NamedTuple

from core.fmt import sci
from core.limits import HARD
from core.registry import (ACTIVATIONS, ARCH_OPTIONS, ARCHITECTURES, DATASETS, DEFAULT_ACTIVATION, DEFAULT_ARCH,
                           DEFAULT_INIT, DEFAULT_RECURRENT_INIT, DEFAULT_RESIDUAL_SCALE, INITIALIZERS, OPTIMIZERS,
                           RECURRENT_INITS, RESIDUAL_SCALES, options_text, resolve)


class ConfigError(ValueError):
    """A bad setting, with the field it concerns and a sentence for people.

    `fallback`, when set, is the value the field should take instead where a
    lenient reader (a link) keeps going (e.g. the chosen architecture's
    dataset); None: the field's default."""

    def __init__(self, field: str, message: str, fallback: Any = None):
        super().__init__(message)
        self.field = field
        self.message = message
        self.fallback = fallback


class RunStatus(StrEnum):
    """Where a run is in its life; the only place these words are written.

    ready → queued (waiting for a free place) → running ⇄ paused → one of the
    ended four. A StrEnum, so it is its own word in JSON, f-strings and
    comparisons with text (`RunStatus("stopped") is RunStatus.STOPPED`)."""

    READY = "ready"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    STOPPED = "stopped"
    DIVERGED = "diverged"
    FAILED = "failed"

    @property
    def live(self) -> bool:
        """A thread that may still take steps (a paused run too)."""
        return self in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED)

    @property
    def ended(self) -> bool:
        return self in (RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.DIVERGED, RunStatus.FAILED)

    @property
    def moving(self) -> bool:
        """New records may arrive any moment: the page polls quickly and holds back the downloads."""
        return self in (RunStatus.READY, RunStatus.QUEUED, RunStatus.RUNNING)

    @property
    def label(self) -> str:
        """The status line's first word."""
        return "Starting" if self is RunStatus.READY else (
            "Training" if self is RunStatus.RUNNING else self.value.capitalize())


def _show(value: Any) -> str:
    text = str(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return repr(text) if isinstance(value, str) else text


@dataclass(frozen=True)
class RunConfig:
    # Network
    arch: str = DEFAULT_ARCH                # the plain MLP; core.registry.ARCHITECTURES has the others
    depth: int = 20                         # deep enough for init choices to matter, fast enough to watch
    width: int = 128                        # wide enough for mean-field theory to hold within ~10%
    widths: tuple[int, ...] | None = None   # per-layer widths; overrides depth/width when given
    input_dim: int | None = None            # only for `gaussian`; None = the first hidden width
    activation: str = DEFAULT_ACTIVATION
    init: str = DEFAULT_INIT
    sigma_w: float = 1.0                    # σ_w of `normal`/`uniform`; a multiplier of the std otherwise
    sigma_b: float = 0.0                    # σ_b of `normal`/`uniform` (biases start at 0 elsewhere)
    bias: bool = True
    batchnorm: bool = False
    # Architecture options (each applies to some archs only: ARCHITECTURES[arch].options)
    residual_scale: str = DEFAULT_RESIDUAL_SCALE  # resmlp: α = 1, the textbook residual block
    seq_len: int = 20                       # recurrent nets: long enough for a vanishing gradient through time to show
    recurrent_init: str = DEFAULT_RECURRENT_INIT  # recurrent nets: W_hh's scheme; σ_w is its spectral radius
    forget_bias: float = 1.0                # lstm: Gers et al. (2000) / Jozefowicz et al. (2015): remember by default
    # Data & training
    dataset: str = "digits"                 # real data that ships with scikit-learn: accuracy means something
    batch_size: int = 128
    steps: int = 300                        # about 10-20 s at the defaults on one core
    lr: float = 0.05
    optimizer: str = "sgd"                  # plain SGD shows a vanishing gradient as slow learning; Adam hides it
    seed: int = 0
    # Recording
    record_every: int = 1                   # every step: ≤10% overhead (bench/bench_overhead.py)
    eval_every: int = 10                    # held-out accuracy every N steps (0 = never): a test-set forward is not free

    def __post_init__(self):
        if self.widths is not None:
            widths = tuple(self.widths)
            object.__setattr__(self, "widths", widths)
            if widths:
                # widths is the truth; keep depth/width consistent with it.
                object.__setattr__(self, "depth", len(widths))
                object.__setattr__(self, "width", widths[0])
        self.validate()

    # -- validation ---------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError naming the field, the value and what is allowed."""
        # widths first: depth and width are derived from it, so a bad widths must not be reported as a bad width.
        for spec in sorted(FIELDS.values(), key=lambda s: s.name != "widths"):
            value = getattr(self, spec.name)
            if not (spec.optional and value is None):
                spec.check(value)
        if self.widths is not None and len(self.widths) == 0:
            raise ConfigError("widths", "Invalid widths '': give at least one hidden width, e.g. 64,64,32.")
        arch = ARCHITECTURES[self.arch]
        for name in ARCH_OPTIONS:
            value = getattr(self, name)
            if not arch.takes(name) and value != _DEFAULTS[name]:
                takers = [a.name for a in ARCHITECTURES.values() if a.takes(name)]
                raise ConfigError(name, f"Invalid {name} {_show(FIELDS[name].format(value))}: {name} "
                                        f"(--{name.replace('_', '-')}) applies only to arch "
                                        f"{' or '.join(takers)}, not {self.arch}.")
        if INITIALIZERS[self.init].needs_data and not arch.calibrated_init:
            takers = [a.name for a in ARCHITECTURES.values() if a.calibrated_init]
            raise ConfigError("init", f"Invalid init {_show(self.init)}: this data-driven scheme calibrates a plain "
                                      f"stack of layers, so it applies only to arch {' or '.join(takers)}, "
                                      f"not {self.arch}.")
        ds = DATASETS[self.dataset]
        if not arch.accepts(ds):
            fits = [d.name for d in DATASETS.values() if arch.accepts(d)]
            raise ConfigError("dataset", f"Invalid dataset {_show(self.dataset)}: arch {self.arch} reads "
                                         f"{' or '.join(sorted(arch.data_kinds))} data, so the dataset must be one "
                                         f"of {', '.join(fits) or 'none yet'}.", fallback=arch.default_dataset)
        if ds.seq_len is not None and self.applies("seq_len") and self.seq_len != ds.seq_len:
            raise ConfigError("seq_len", f"Invalid seq_len {self.seq_len}: dataset {self.dataset!r} has {ds.seq_len} "
                                         f"time steps per example, so seq_len must be {ds.seq_len}.",
                              fallback=ds.seq_len)
        if self.batch_size > ds.train_size:
            raise ConfigError(
                "batch_size",
                f"Invalid batch_size {self.batch_size}: dataset {self.dataset!r} has {ds.train_size:,} training "
                f"examples, so the batch can be at most that.",
            )
        if self.input_dim is not None and ds.input_dim is not None and self.input_dim != ds.input_dim:
            raise ConfigError(
                "input_dim",
                f"Invalid input_dim {self.input_dim}: dataset {self.dataset!r} has {ds.input_dim} input features "
                f"(input_dim applies only to 'gaussian').",
            )

    # -- derived --------------------------------------------------------------
    @property
    def hidden_widths(self) -> tuple[int, ...]:
        return self.widths if self.widths is not None else (self.width,) * self.depth

    @property
    def architecture(self):
        """The chosen `core.registry.Architecture` entry: every fact about this kind of network."""
        return ARCHITECTURES[self.arch]

    @property
    def rows(self) -> int:
        """Rows of one record of the table: one per hidden layer or block, or per (block, time step)."""
        return ARCHITECTURES[self.arch].rows(self)

    @property
    def time_steps(self) -> int:
        """Time steps per block in the table (`seq_len` for recurrent nets), 0 where rows are not per time step."""
        return self.seq_len if ARCHITECTURES[self.arch].per_time else 0

    def applies(self, name: str) -> bool:
        """Does setting `name` mean something for this config's arch (every setting not in ARCH_OPTIONS does)?"""
        return name not in ARCH_OPTIONS or ARCHITECTURES[self.arch].takes(name)

    @property
    def features(self) -> int:
        ds = DATASETS[self.dataset]
        if ds.input_dim is not None:
            return ds.input_dim
        return self.input_dim if self.input_dim is not None else self.hidden_widths[0]

    @property
    def classes(self) -> int:
        return DATASETS[self.dataset].classes

    def parameter_count(self) -> int:
        return ARCHITECTURES[self.arch].parameter_count(self)

    def for_arch(self, arch: str) -> "RunConfig":
        """This experiment on another architecture: the options `arch` does not take go back to their
        defaults, and a dataset it cannot read becomes its default dataset (what a widget switch does)."""
        entry = ARCHITECTURES[arch]
        changes: dict[str, Any] = {n: _DEFAULTS[n] for n in ARCH_OPTIONS if not entry.takes(n)}
        if not entry.accepts(DATASETS[self.dataset]):
            changes["dataset"] = entry.default_dataset
        if "widths" in changes and self.widths is not None:
            changes.update(depth=len(self.widths), width=self.widths[0])
        return dataclasses.replace(self, arch=arch, **changes)

    def replace(self, **changes) -> "RunConfig":
        if "depth" in changes or "width" in changes:
            changes.setdefault("widths", None)
        return dataclasses.replace(self, **changes)

    # -- text round trips (URL and CLI) ---------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths) if self.widths is not None else None
        return d

    def to_query(self) -> dict[str, str]:
        """Every setting as URL query parameters (a share link carries them all)."""
        out = {}
        for spec in FIELDS.values():
            value = getattr(self, spec.name)
            if value is None:
                continue
            if spec.name in ("depth", "width") and self.widths is not None:
                continue  # widths says it all
            if not self.applies(spec.name):
                continue  # an option of another arch: always its default here
            if spec.name == "arch" and value == _DEFAULTS["arch"]:
                continue  # a link without arch is an MLP: today's links stay as they were
            out[spec.name] = spec.format(value)
        return out

    def to_cli_args(self) -> list[str]:
        args = []
        for key, text in self.to_query().items():
            spec = FIELDS[key]
            flag = "--" + key.replace("_", "-")
            if spec.kind is bool:
                args.append(flag if text == "true" else "--no-" + key.replace("_", "-"))
            else:
                args += [flag, text]
        return args

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        """Strict: from a JSON export's `config`; unknown keys or bad values raise ConfigError."""
        if not isinstance(data, Mapping):
            raise ConfigError("config", "The config must be an object of settings.")
        unknown = [k for k in data if k not in FIELDS]
        if unknown:
            raise ConfigError(unknown[0], f"Unknown setting {_show(unknown[0])}; known settings: {', '.join(FIELDS)}.")
        values = {}
        for key, value in data.items():
            spec = FIELDS[key]
            values[key] = spec.coerce(value)
        return cls(**values)

    @classmethod
    def from_strings(cls, values: Mapping[str, str], base: "RunConfig | None" = None) -> "RunConfig":
        """Strict parse of text values (CLI): the first bad value raises ConfigError."""
        parsed = {}
        for key, text in values.items():
            if key not in FIELDS:
                raise ConfigError(key, f"Unknown setting {_show(key)}; known settings: {', '.join(FIELDS)}.")
            parsed[key] = FIELDS[key].parse(text)
        if ("depth" in parsed or "width" in parsed) and "widths" in parsed and parsed["widths"] is not None:
            raise ConfigError("widths", "Give either widths or depth/width, not both.")
        base = base or cls()
        if "widths" not in parsed and ("depth" in parsed or "width" in parsed):
            parsed["widths"] = None
        cfg = dataclasses.replace(base, **parsed)
        for key in values:  # strict: an option of another arch is refused even at its default value
            if not cfg.applies(key) and parsed[key] is not None:
                takers = [a.name for a in ARCHITECTURES.values() if a.takes(key)]
                raise ConfigError(key, f"Invalid {key} {_show(values[key].strip())}: {key} "
                                       f"(--{key.replace('_', '-')}) applies only to arch {' or '.join(takers)}, "
                                       f"not {cfg.arch}.")
        return cfg

    @classmethod
    def from_query(
        cls, params: Mapping[str, Any], *, prefix: str = "", ignore: Iterable[str] = (),
        base: "RunConfig | None" = None, using: str = "the default",
    ) -> tuple["RunConfig", list[str]]:
        """Lenient parse of URL query parameters.

        Returns `base` (default: `RunConfig()`) with the parameters' settings,
        and a list of notes for people. A bad value keeps base's value and gets
        a note naming the parameter as the link writes it (with `prefix`) and
        ending "Using `using`."; unknown keys and repeated keys get a note too.
        Never raises.
        """
        notes: list[str] = []
        ignore = set(ignore)
        values: dict[str, Any] = {}

        def named(e: ConfigError) -> str:  # the parameter as the link writes it
            return e.message.replace(f"Invalid {e.field} ", f"Invalid {prefix}{e.field} ", 1) if prefix else e.message

        for raw_key in params:
            key = str(raw_key)
            if key in ignore or (prefix and not key.startswith(prefix)):
                continue
            name = key[len(prefix):]
            raw = params[raw_key]
            if isinstance(raw, (list, tuple)):
                if len(raw) > 1:
                    notes.append(f"Parameter {_show(key)} was given {len(raw)} times; using the last value.")
                raw = raw[-1] if raw else ""
            if name not in FIELDS:
                notes.append(f"Unknown parameter {_show(key)} was ignored; known parameters: {', '.join(FIELDS)}.")
                continue
            try:
                value = FIELDS[name].parse(str(raw))
                if value is not None:
                    FIELDS[name].check(value)  # now, so that a bad widths does not displace a good depth/width
                values[name] = value
            except ConfigError as e:
                notes.append(f"{named(e)} Using {using}.")
        if "widths" in values and values["widths"] is not None:
            for k in ("depth", "width"):
                if k in values:
                    notes.append(f"Parameter {_show(prefix + k)} was ignored because {prefix}widths is given.")
                    values.pop(k)
        cfg, dropped = cls.lenient(values, base)
        notes += [f"{named(e)} Using {using if kept == 'base' else 'the default'}." for e, kept in dropped]
        return cfg, notes

    @classmethod
    def lenient(cls, values: Mapping[str, Any], base: "RunConfig | None" = None
                ) -> tuple["RunConfig", list[tuple[ConfigError, str]]]:
        """`base` (default `RunConfig()`) with `values` changed, as far as the checks allow: the one
        "drop the bad field and retry" loop. A value a check refuses is dropped, so the field keeps
        base's value ("base"); where base's own value clashes with the rest (a batch larger than a newly
        chosen dataset), the field takes RunConfig's default ("default"). Returns the config and, in
        order, (the error, "base" or "default") of each fallback. Never raises."""
        base = cls() if base is None else base
        values = dict(values)
        dropped: list[tuple[ConfigError, str]] = []
        defaulted: set[str] = set()
        for _ in range(2 * len(FIELDS) + 1):
            try:
                return base.replace(**values), dropped
            except ConfigError as e:
                if e.field in defaulted or e.field not in FIELDS:
                    dropped.append((e, "base"))  # nothing left to fall back on: base, said so
                    break
                fallback = _DEFAULTS[e.field] if e.fallback is None else e.fallback
                if e.field in values:
                    values.pop(e.field)
                    dropped.append((e, "base"))
                elif getattr(base, e.field) != fallback:
                    values[e.field] = fallback
                    defaulted.add(e.field)
                    dropped.append((e, "default"))
                else:
                    dropped.append((e, "base"))
                    break
        return base, dropped

    # -- for people -----------------------------------------------------------
    def diff(self, other: "RunConfig") -> list["SettingChange"]:
        """The settings that differ from `self` to `other`, in FIELDS order, as people read them
        (field labels, registry labels: "Initializer: Xavier/Glorot normal → He/Kaiming normal").
        depth, width and widths are left out when the hidden layers are the same."""
        out = []
        same_layers = self.hidden_widths == other.hidden_widths
        for name, spec in FIELDS.items():
            a, b = getattr(self, name), getattr(other, name)
            if a == b or (same_layers and name in ("depth", "width", "widths")):
                continue
            out.append(SettingChange(name, spec.label, spec.show(a), spec.show(b)))
        return out

    def describe(self, short: bool = False) -> str:
        """The experiment in one line of words, with the registries' labels. `short` for a narrow
        column: '20 × 128 · Tanh · Xavier/Glorot normal · Digits (8×8) · 300 steps of SGD, lr 0.05 · seed 0';
        else '20 hidden layers of 128 units, Tanh, Xavier/Glorot normal init, on Digits (8×8), 300 steps
        of SGD (lr 0.05, seed 0)'."""
        ini = INITIALIZERS[self.init]
        init = ini.label
        if ini.uses_sigma_b:  # its label names them: "Normal (σ_w, σ_b) = (2.5, 0)"
            init += f" = ({self.sigma_w:g}, {self.sigma_b:g})"
        elif self.sigma_w != 1.0:
            init += f" (σ_w = {self.sigma_w:g})"
        widths = FIELDS["widths"].format(self.hidden_widths) if self.widths is not None else str(self.width)
        bn = ["BatchNorm"] if self.batchnorm else []
        act, data = ACTIVATIONS[self.activation].label, DATASETS[self.dataset].label
        opt = OPTIMIZERS[self.optimizer].label
        arch = ARCHITECTURES[self.arch]
        if self.arch != DEFAULT_ARCH:  # another architecture: say which, and its options
            opts = [f"{FIELDS[n].label} {FIELDS[n].show(getattr(self, n))}" for n in ARCH_OPTIONS
                    if arch.takes(n) and n not in ("widths", "batchnorm")]
            head = f"{arch.label}, {self.depth} {arch.depth_means} of {self.width} {arch.width_means}"
            if short:
                return " · ".join([f"{arch.label} {self.depth} × {self.width}", *opts, act, init, *bn, data,
                                   f"{self.steps:,} steps of {opt}, lr {self.lr:g}", f"seed {self.seed}"])
            return ", ".join([head, *opts, act, f"{init} init", *bn, f"on {data}",
                              f"{self.steps:,} steps of {opt} (lr {self.lr:g}, seed {self.seed})"])
        if short:
            shape = f"{self.depth} × {self.width}" if self.widths is None else f"widths {widths}"
            return " · ".join([shape, act, init, *bn, data, f"{self.steps:,} steps of {opt}, lr {self.lr:g}",
                               f"seed {self.seed}"])
        return ", ".join([f"{len(self.hidden_widths)} hidden layers of {widths} units", act, f"{init} init", *bn,
                          f"on {data}", f"{self.steps:,} steps of {opt} (lr {self.lr:g}, seed {self.seed})"])


class SettingChange(NamedTuple):
    """One setting that differs between two configs, as people read it (`RunConfig.diff`)."""

    name: str    # the field, as the URL and the CLI write it
    label: str   # the field for people
    old: str     # its value for people
    new: str

    def __str__(self) -> str:
        return f"{self.label} {self.old} → {self.new}"


# -- the declared fields --------------------------------------------------------

@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: type  # int, float, bool, str, tuple
    help: str
    check: Callable[[Any], None]
    optional: bool = False
    label: str = ""                 # the setting for people ("Initializer"); the name when empty
    registry: dict | None = field(default=None, hash=False, compare=False)  # a choice's registry: its labels
    none_text: str = "default"      # what None means, for people (optional fields)

    def __post_init__(self):
        if not self.label:
            object.__setattr__(self, "label", self.name)

    def show(self, value: Any) -> str:
        """`value` for people: a registry label, on/off, a number as written; `none_text` for None."""
        if value is None:
            return self.none_text
        if self.registry is not None and value in self.registry:
            return self.registry[value].label
        if self.kind is bool:
            return "on" if value else "off"
        if self.kind is float:
            return sci(value, 6)  # 0.05, 1.5, 10⁻⁵: exponents as superscripts (core.fmt)
        return self.format(value)

    def parse(self, text: str) -> Any:
        text = text.strip()
        if self.optional and text.lower() in ("", "none", "null", "default"):
            return None
        try:
            if self.kind is bool:
                low = text.lower()
                if low in ("true", "1", "yes", "on"):
                    return True
                if low in ("false", "0", "no", "off"):
                    return False
                raise ValueError
            if self.kind is int:
                if not text.lstrip("+-").isdigit() or len(text) > 12:
                    raise ValueError
                return int(text)
            if self.kind is float:
                if len(text) > 40:
                    raise ValueError
                return float(text)
            if self.kind is tuple:
                parts = [p.strip() for p in text.split(",")]
                if len(parts) > HARD.max_depth or not all(p.isdigit() and len(p) <= 12 for p in parts):
                    raise ValueError
                return tuple(int(p) for p in parts)
            return self.resolve(text)
        except ValueError:
            raise ConfigError(self.name, f"Invalid {self.name} {_show(text)}: {self.allowed()}.") from None

    def coerce(self, value: Any) -> Any:
        """From a JSON value (file import): right type or ConfigError."""
        if value is None and self.optional:
            return None
        ok = {
            bool: lambda v: isinstance(v, bool),
            int: lambda v: isinstance(v, int) and not isinstance(v, bool),
            float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            str: lambda v: isinstance(v, str),
            tuple: lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, int) and not isinstance(x, bool) for x in v),
        }[self.kind]
        if not ok(value) or (self.kind is float and isinstance(value, int) and abs(value) > 1e300):
            # (float() of a huge JSON integer would raise OverflowError)
            raise ConfigError(self.name, f"Invalid {self.name} {_show(value)}: {self.allowed()}.")
        if self.kind is str:
            return self.resolve(value)
        return tuple(value) if self.kind is tuple else (float(value) if self.kind is float else value)

    def resolve(self, text: str) -> str:
        """A choice's registered name for `text` (an alias such as 'swish', or another spelling, becomes
        'silu': `core.registry.resolve`); text it does not know is kept, for the check to refuse by name."""
        if self.registry is None:
            return text
        return resolve(self.registry, text) or text

    def format(self, value: Any) -> str:
        if self.kind is bool:
            return "true" if value else "false"
        if self.kind is tuple:
            return ",".join(str(v) for v in value)
        if self.kind is float:
            return repr(float(value))
        return str(value)

    def allowed(self) -> str:
        """What the check accepts, in words (taken from its own message)."""
        try:
            self.check(_PROBE)
        except ConfigError as e:
            return e.message.split(": ", 1)[1].rstrip(".")
        raise AssertionError(f"{self.name}'s check accepted a probe")


_PROBE = object()  # never a valid value: makes a check say what it allows


def _int_range(name: str, lo: int, hi: int):
    def check(v):
        if not (isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi):
            raise ConfigError(name, f"Invalid {name} {_show(v)}: must be a whole number from {lo} to {hi:,}.")
    return check


def _float_range(name: str, lo: float, hi: float, lo_open: bool = False):
    def check(v):
        ok = (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
              and (v > lo if lo_open else v >= lo) and v <= hi)
        if not ok:
            rng = f"greater than {lo:g}" if lo_open else f"at least {lo:g}"
            raise ConfigError(name, f"Invalid {name} {_show(v)}: must be a finite number {rng} and at most {hi:g}.")
    return check


def _choice(name: str, registry: dict):
    def check(v):
        if v not in registry:
            raise ConfigError(name, f"Invalid {name} {_show(v)}: must be one of {options_text(registry)}.")
    return check


def _bool(name: str):
    def check(v):
        if not isinstance(v, bool):
            raise ConfigError(name, f"Invalid {name} {_show(v)}: must be true or false.")
    return check


def _widths(v):
    ok = (
        isinstance(v, tuple) and 1 <= len(v) <= HARD.max_depth
        and all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= HARD.max_width for w in v)
    )
    if not ok:
        raise ConfigError("widths", f"Invalid widths {_show(v)}: must be 1 to {HARD.max_depth} comma-separated "
                                    f"whole numbers from 1 to {HARD.max_width:,}, e.g. 64,64,32.")


_FIELD_LIST = [
    FieldSpec("arch", str, "The kind of network: a plain MLP, a residual MLP, a CNN or a recurrent net.",
              _choice("arch", ARCHITECTURES), label="Architecture", registry=ARCHITECTURES),
    FieldSpec("depth", int, "Number of hidden layers (residual blocks, convolutions, stacked recurrent layers).", _int_range("depth", 1, HARD.max_depth), label="Depth"),
    FieldSpec("width", int, "Units in every hidden layer.", _int_range("width", 1, HARD.max_width), label="Width"),
    FieldSpec("widths", tuple, "Comma-separated width of each hidden layer (instead of depth/width).", _widths,
              optional=True, label="Per-layer widths", none_text="depth × width"),
    FieldSpec("input_dim", int, "Input features of the gaussian dataset (default: the first hidden width).",
              _int_range("input_dim", 1, HARD.max_width), optional=True, label="Input features",
              none_text="the first hidden width"),
    FieldSpec("activation", str, "Nonlinearity φ of every hidden layer.", _choice("activation", ACTIVATIONS),
              label="Activation", registry=ACTIVATIONS),
    FieldSpec("init", str, "Weight initialization scheme.", _choice("init", INITIALIZERS), label="Initializer",
              registry=INITIALIZERS),
    FieldSpec("sigma_w", float, "σ_w: weight scale (Var W = σ_w²/fan_in under normal/uniform; a multiplier of the std otherwise).",
              _float_range("sigma_w", 0.0, 100.0), label="σ_w"),
    FieldSpec("sigma_b", float, "σ_b: bias standard deviation under normal/uniform.",
              _float_range("sigma_b", 0.0, 100.0), label="σ_b"),
    FieldSpec("bias", bool, "Give each Linear layer a bias.", _bool("bias"), label="Bias"),
    FieldSpec("batchnorm", bool, "BatchNorm1d between each Linear and its activation.", _bool("batchnorm"),
              label="BatchNorm"),
    FieldSpec("residual_scale", str, "resmlp: how each residual block x ← x + α·F(x) is scaled.",
              _choice("residual_scale", RESIDUAL_SCALES), label="Residual scaling", registry=RESIDUAL_SCALES),
    FieldSpec("seq_len", int, "Recurrent nets: time steps of each sequence.",
              _int_range("seq_len", 1, HARD.max_seq_len), label="Sequence length"),
    FieldSpec("recurrent_init", str, "Recurrent nets: the hidden-to-hidden matrix's scheme (σ_w scales it; for "
              "orthogonal, σ_w is its spectral radius).", _choice("recurrent_init", RECURRENT_INITS),
              label="Recurrent initializer", registry=RECURRENT_INITS),
    FieldSpec("forget_bias", float, "lstm: the forget gate's initial bias.",
              _float_range("forget_bias", -100.0, 100.0), label="Forget-gate bias"),
    FieldSpec("dataset", str, "Training data.", _choice("dataset", DATASETS), label="Dataset", registry=DATASETS),
    FieldSpec("batch_size", int, "Examples per step.", _int_range("batch_size", 2, HARD.max_batch_size),
              label="Batch size"),
    FieldSpec("steps", int, "Optimizer steps (0 = only look at the network at initialization).",
              _int_range("steps", 0, HARD.max_steps), label="Steps"),
    FieldSpec("lr", float, "Learning rate.", _float_range("lr", 0.0, 1000.0, lo_open=True), label="Learning rate"),
    FieldSpec("optimizer", str, "Optimizer.", _choice("optimizer", OPTIMIZERS), label="Optimizer",
              registry=OPTIMIZERS),
    FieldSpec("seed", int, "Random seed: same seed, same weights, same batches, same table.",
              _int_range("seed", 0, 2**31 - 1), label="Seed"),
    FieldSpec("record_every", int, "Record statistics every N steps (0 = never: the overhead baseline).",
              _int_range("record_every", 0, HARD.max_steps), label="Record every N steps"),
    FieldSpec("eval_every", int, "Measure held-out accuracy every N steps (0 = never).",
              _int_range("eval_every", 0, HARD.max_steps), label="Held-out accuracy every N steps"),
]
FIELDS: dict[str, FieldSpec] = {f.name: f for f in _FIELD_LIST}
assert list(FIELDS) == [f.name for f in dataclasses.fields(RunConfig)], "FIELDS must list RunConfig's fields in order"
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)}
