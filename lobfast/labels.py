"""Labels: forward returns, DeepLOB smoothed labels, EMA returns, triple barrier (C kernels)."""
