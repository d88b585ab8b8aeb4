"""The training job and its fitters (local threads, Dask)."""
