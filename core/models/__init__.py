"""The networks, one module per architecture, and their initialization."""
