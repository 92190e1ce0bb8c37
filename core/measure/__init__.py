"""Measuring a step: hooks, fused kernels, reductions and the record they make."""
