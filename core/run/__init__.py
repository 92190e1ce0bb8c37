"""The training loop, the run record and the background run."""
