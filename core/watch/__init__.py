"""`from core import watch`: measure any PyTorch network's layers as it trains.

    with watch(model, every=1, layers=None, live=None) as w:
        ...; w.step(loss)
    w.table(); w.save("run.json")

This package is itself the callable `watch` (its class is a module type with
`__call__`), so `from core import watch` gives the same object whether or not
a submodule (`core.watch.view`, `core.watch.store`) was imported first, and
importing it loads no torch: the session module is imported on the first call.
"""
from __future__ import annotations

import sys
import types


class _WatchModule(types.ModuleType):
    def __call__(self, model, every: int = 1, layers=None, live: str | None = None):
        """A context manager measuring `model` (see `core.watch.session`): `every`
        records one step in N; `layers` names the modules to measure (default:
        every Linear, Conv1d/2d/3d and RNN/LSTM/GRU); `live="runs/NAME"` also
        writes each record to the store `runs/NAME.sqlite` that Explore's
        "Follow a run" draws while this runs."""
        from core.watch.session import Watch

        return Watch(model, every=every, layers=layers, live=live)

    def __getattr__(self, name: str):
        if name in ("Watch", "WatchError", "NonFinite", "STAT_COLUMNS", "TABLE_COLUMNS", "watch_table"):
            from core.watch import session

            return getattr(session, name)
        raise AttributeError(f"module 'core.watch' has no attribute {name!r}")


sys.modules[__name__].__class__ = _WatchModule
