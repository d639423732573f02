"""spdy-recipes: compile SPDY per-layer sparsity profiles into SparseML recipes."""

__version__ = "0.1.0"
