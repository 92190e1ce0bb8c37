"""Measuring a step: the interface and its strategies (`strategy`: streaming, batched, plain),
the Numba kernels and PyTorch reductions, and the record they make (`records`, `tracker`)."""
