"""Gradient Flow Lab's engine: plain Python and PyTorch, no Streamlit."""
