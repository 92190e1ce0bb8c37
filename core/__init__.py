"""Gradient Flow Lab's engine: plain Python and PyTorch, no Streamlit."""


def __getattr__(name: str):
    """`core.watch` (the callable `watch(model)`) on first use: `import core` stays free of torch."""
    if name == "watch":
        import importlib

        return importlib.import_module("core.watch")
    raise AttributeError(f"module 'core' has no attribute {name!r}")
