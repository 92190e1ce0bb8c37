"""Shared test settings: one torch thread (the engine's default; 2 cores are shared)."""
import torch

torch.set_num_threads(1)
