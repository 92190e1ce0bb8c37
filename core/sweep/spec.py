"""What a sweep is: a base RunConfig and one or two axes, each a RunConfig field and its values.

    spec = SweepSpec.parse(["depth=10:60:6", "sigma_w=1,1.5,2"], base=RunConfig(activation="tanh"))
    spec.cells()   # the RunConfigs, the first axis varying slowest

An axis is written `FIELD=SPEC` (the CLI's `--axis` and the URL's `axis=`):
FIELD is any setting's URL name (`core.schema.FIELDS`), SPEC a list `a,b,c`
or, for numeric fields, a range `start:stop:count` (count values, both ends
included). Values are parsed and checked by the field's own `FieldSpec`, so
the sweep accepts exactly what a run accepts.
"""
from __future__ import annotations

import itertools
import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from core.schema import FIELDS, ConfigError, RunConfig

MAX_AXES = 2            # a heatmap has two dimensions
MAX_AXIS_VALUES = 1000  # sanity; the server's GFL_MAX_SWEEP_WORK bounds what it runs
MAX_CELLS = 10_000      # sanity: a link cannot make a page build a million configs


def _num_text(kind: type, value: float) -> str:
    """A range value as the field's text: ints rounded, floats to 12 significant digits (no 0.30000000000000004)."""
    return str(int(round(value))) if kind is int else f"{value:.12g}"


@dataclass(frozen=True)
class Axis:
    field: str
    values: tuple
    written: str = dataclasses.field(default="", compare=False)  # the values as given (a range stays a range in links)

    @classmethod
    def parse(cls, text: str) -> "Axis":
        """`FIELD=a,b,c` or `FIELD=start:stop:count`; ConfigError (field 'axis') with one sentence otherwise."""
        text = str(text).strip()
        name, sep, values_text = text.partition("=")
        name, values_text = name.strip(), values_text.strip()
        if not sep or not name:
            raise ConfigError("axis", f"Invalid axis {text[:60]!r}: write FIELD=a,b,c or FIELD=start:stop:count, "
                                      f"e.g. depth=10:60:6.")
        if name not in FIELDS:
            raise ConfigError("axis", f"Invalid axis field {name[:40]!r}: must be one of {', '.join(sweepable_fields())}.")
        spec = FIELDS[name]
        if spec.kind is tuple:
            # Its values are themselves comma-separated lists, which a list axis cannot tell apart.
            raise ConfigError("axis", f"Invalid axis field {name!r}: a list-valued setting cannot be an axis; "
                                      f"sweep depth and width instead.")
        if not values_text:
            raise ConfigError("axis", f"Invalid axis {name}: give its values, e.g. {name}={_example(name)}.")
        if ":" in values_text:
            items = _range_texts(name, values_text)
        else:
            items = [p.strip() for p in values_text.split(",")]
        if len(items) > MAX_AXIS_VALUES:
            raise ConfigError("axis", f"Invalid axis {name}: {len(items):,} values, at most {MAX_AXIS_VALUES:,}.")
        values = []
        for item in items:
            try:
                value = spec.parse(item)
                if value is not None:
                    spec.check(value)
            except ConfigError as e:
                raise ConfigError("axis", f"Invalid axis {name}: {e.message}") from None
            values.append(value)
        dupes = sorted({spec.format(v) if v is not None else "none" for v in values if values.count(v) > 1})
        if dupes:
            raise ConfigError("axis", f"Invalid axis {name}: the value {dupes[0]} appears more than once "
                                      f"(each value is one column of cells).")
        return cls(name, tuple(values), values_text if ":" in values_text else "")

    def text(self) -> str:
        """Back to `FIELD=SPEC` (what the URL and the CLI carry): the range as written, else the list."""
        if self.written:
            return f"{self.field}={self.written}"
        spec = FIELDS[self.field]
        return f"{self.field}=" + ",".join("none" if v is None else spec.format(v) for v in self.values)

    def labels(self) -> list[str]:
        spec = FIELDS[self.field]
        return ["none" if v is None else spec.format(v) for v in self.values]

    @property
    def numeric(self) -> bool:
        return FIELDS[self.field].kind in (int, float) and all(v is not None for v in self.values)

    def __len__(self) -> int:
        return len(self.values)


def _example(name: str) -> str:
    kind = FIELDS[name].kind
    return {int: "10:60:6", float: "0.5:2:4", bool: "true,false"}.get(kind, "a,b")


def _range_texts(name: str, text: str) -> list[str]:
    kind = FIELDS[name].kind
    parts = [p.strip() for p in text.split(":")]
    if kind not in (int, float):
        raise ConfigError("axis", f"Invalid axis {name}: a range start:stop:count needs a numeric setting; "
                                  f"list the values instead, e.g. {name}={_example(name)}.")
    if len(parts) != 3:
        raise ConfigError("axis", f"Invalid axis {name} {text[:40]!r}: a range is start:stop:count, e.g. {name}={_example(name)}.")
    try:
        start, stop = float(parts[0]), float(parts[1])
        if not (np.isfinite(start) and np.isfinite(stop)):
            raise ValueError
    except ValueError:
        raise ConfigError("axis", f"Invalid axis {name} {text[:40]!r}: start and stop must be numbers.") from None
    if not parts[2].isdigit() or not 1 <= int(parts[2]) <= MAX_AXIS_VALUES:
        raise ConfigError("axis", f"Invalid axis {name} {text[:40]!r}: count must be a whole number from 1 to "
                                  f"{MAX_AXIS_VALUES:,}.")
    count = int(parts[2])
    if count == 1 and start != stop:
        raise ConfigError("axis", f"Invalid axis {name} {text[:40]!r}: one value cannot span {parts[0]} to {parts[1]}; "
                                  f"use a count of 2 or more.")
    return [_num_text(kind, v) for v in np.linspace(start, stop, count)]


def sweepable_fields() -> list[str]:
    """The settings an axis may take (every field but list-valued ones)."""
    return [name for name, spec in FIELDS.items() if spec.kind is not tuple]


@dataclass(frozen=True)
class SweepSpec:
    base: RunConfig
    axes: tuple[Axis, ...]

    def __post_init__(self):
        if not 1 <= len(self.axes) <= MAX_AXES:
            raise ConfigError("axis", f"A sweep needs one or two axes, not {len(self.axes)}.")
        names = [a.field for a in self.axes]
        if self.size > MAX_CELLS:
            raise ConfigError("axis", f"Invalid axes: {' × '.join(str(len(a)) for a in self.axes)} = {self.size:,} cells, "
                                      f"at most {MAX_CELLS:,}.")
        if len(set(names)) != len(names):
            raise ConfigError("axis", f"Invalid axes: {names[0]} is given twice; each axis must be a different setting.")
        if self.base.widths is not None and {"depth", "width"} & set(names):
            raise ConfigError("axis", "Invalid axes: depth and width cannot be swept while widths is set; "
                                      "leave widths out.")
        for values in self._grid():
            try:
                self._cell(values)
            except ConfigError as e:
                where = ", ".join(f"{a.field}={a.labels()[a.values.index(v)]}" for a, v in zip(self.axes, values))
                raise ConfigError("axis", f"Invalid cell {where}: {e.message}") from None

    @classmethod
    def parse(cls, axis_texts: Sequence[str], base: RunConfig | None = None) -> "SweepSpec":
        return cls(base or RunConfig(), tuple(Axis.parse(t) for t in axis_texts))

    def _grid(self) -> Iterable[tuple]:
        return itertools.product(*(a.values for a in self.axes))

    def _cell(self, values: tuple) -> RunConfig:
        return self.base.replace(**{a.field: v for a, v in zip(self.axes, values)})

    def cells(self) -> list[RunConfig]:
        """One RunConfig per cell, the first axis varying slowest."""
        return [self._cell(v) for v in self._grid()]

    def axis_values(self) -> list[dict[str, Any]]:
        """For each cell (same order as `cells`), {field: value} of its axes."""
        return [{a.field: v for a, v in zip(self.axes, values)} for values in self._grid()]

    @property
    def size(self) -> int:
        return int(np.prod([len(a) for a in self.axes]))

    @property
    def fields(self) -> list[str]:
        return [a.field for a in self.axes]

    def axis_texts(self) -> list[str]:
        return [a.text() for a in self.axes]

    def __repr__(self) -> str:
        return f"SweepSpec({' × '.join(f'{a.field}[{len(a)}]' for a in self.axes)} = {self.size} cells)"
