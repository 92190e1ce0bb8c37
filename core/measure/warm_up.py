"""`python -m core.measure.warm_up`: compile the statistics kernels into Numba's cache.

An explicit step (`make install`, the Dockerfile, the dashboard's start): every
later process loads the same compiled code, so a run gives the same table in
any process (see the end of `core.measure.kernels`).
"""
import sys
import time

from core.measure import kernels


def prepare() -> bool:
    """For a server's start (the dashboard's warm-up thread): fill Numba's cache
    in a child process if it is cold, then load every kernel into this process,
    so no visitor's run waits for them. True if the kernels are ready."""
    if not kernels.AVAILABLE:
        return False
    warm = kernels.fill_cache()
    if warm:
        kernels.warm_up()  # loads from the cache: about a second
    return warm


def main() -> int:
    if not kernels.AVAILABLE:
        print("Numba is not available: the statistics use PyTorch, nothing to compile.", file=sys.stderr)
        return 0
    t0 = time.perf_counter()
    kernels.warm_up()
    print(f"Statistics kernels ready in Numba's cache ({time.perf_counter() - t0:.1f} s).", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
