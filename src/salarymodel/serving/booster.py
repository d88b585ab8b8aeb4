"""LightGBM boosters for serving, read through LightGBM's C library alone.

The ``lightgbm`` Python package imports scikit-learn and pandas whenever they
are installed (``lightgbm.compat``): about 1.5 s and 150 MB per process. A
service worker only needs three calls of the C API, so it loads
``lib_lightgbm`` (shipped inside the installed ``lightgbm`` package, found
without importing it) with ctypes:

- ``LGBM_BoosterPredictForMat`` for a matrix (values or SHAP contributions);
- ``LGBM_BoosterPredictForMatSingleRowFast`` for one row: ``Booster.predict``
  rebuilds its predictor on every call (~0.1 ms, as much as walking 800 trees
  for one row), the fast path prepares it once;
- the same fast path for SHAP contributions (``predict_type`` 3: LightGBM's
  TreeSHAP, the numbers shap's TreeExplainer gives), with the trees split in
  two halves scored on two threads (the C call releases the GIL; TreeSHAP is
  additive over trees).

The model file is the same LightGBM text file training writes; a test checks
that every path here equals ``lightgbm.Booster.predict`` on real rows.
"""

from __future__ import annotations

import ctypes
import importlib.util
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import numpy as np

# LightGBM C API constants (c_api.h).
_PREDICT_NORMAL, _PREDICT_CONTRIB = 0, 3
_DTYPE_FLOAT64 = 1
_ROW_MAJOR = 1
_ALL_ITERATIONS = -1


class NativeBoosterError(RuntimeError):
    """LightGBM's C library refused a call (its own message is kept)."""


@cache
def _library() -> ctypes.CDLL:
    spec = importlib.util.find_spec("lightgbm")  # finds the package without importing it
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        for name in ("lib_lightgbm.so", "lib_lightgbm.dylib", "lib_lightgbm.dll"):
            path = Path(folder) / "lib" / name
            if path.is_file():
                library = ctypes.cdll.LoadLibrary(str(path))
                library.LGBM_GetLastError.restype = ctypes.c_char_p
                return library
    raise NativeBoosterError("LightGBM's C library (lib_lightgbm) is not installed")


def _check(code: int) -> None:
    if code != 0:
        raise NativeBoosterError(_library().LGBM_GetLastError().decode("utf-8", "replace"))


class _FastRow:
    """A prepared one-thread single-row predictor over ``trees`` (first, how many; -1 all)."""

    def __init__(
        self,
        handle: ctypes.c_void_p,
        kind: int,
        n_features: int,
        width: int,
        trees: tuple[int, int] = (0, _ALL_ITERATIONS),
    ) -> None:
        self._lib = _library()
        self._lock = threading.Lock()  # the prepared predictor and buffer are not shared-safe
        self._out = np.empty(width)
        self._out_len = ctypes.c_int64()
        self._config = ctypes.c_void_p()
        _check(
            self._lib.LGBM_BoosterPredictForMatSingleRowFastInit(
                handle,
                ctypes.c_int(kind),
                ctypes.c_int(trees[0]),
                ctypes.c_int(trees[1]),
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(n_features),
                # No num_threads: LightGBM keeps one process-wide count that
                # every call sets, and a batch predicting on another thread
                # with another count would overrun its per-thread buffers.
                ctypes.c_char_p(b""),
                ctypes.byref(self._config),
            )
        )

    def __call__(self, row: np.ndarray) -> np.ndarray:
        row = np.ascontiguousarray(row, dtype=np.float64)
        with self._lock:
            _check(
                self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                    self._config,
                    row.ctypes.data_as(ctypes.c_void_p),
                    ctypes.byref(self._out_len),
                    self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
                )
            )
            return self._out.copy()

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            self._lib.LGBM_FastConfigFree(config)


class _Handle:
    """One booster loaded into LightGBM's C library, freed with this object."""

    def __init__(self, model_file: Path) -> None:
        self._lib = _library()
        self.value = ctypes.c_void_p()
        iterations = ctypes.c_int()
        _check(
            self._lib.LGBM_BoosterCreateFromModelfile(
                ctypes.c_char_p(str(model_file).encode()),
                ctypes.byref(iterations),
                ctypes.byref(self.value),
            )
        )

    def int_call(self, function: str) -> int:
        out = ctypes.c_int()
        _check(getattr(self._lib, function)(self.value, ctypes.byref(out)))
        return out.value

    def __del__(self) -> None:
        if getattr(self, "value", None) is not None and self.value.value:
            self._lib.LGBM_BoosterFree(self.value)


class NativeBooster:
    """A LightGBM text model scored through the C API: ``predict`` as ``lightgbm.Booster``'s.

    ``split_contributions`` prepares the two-thread one-row SHAP path (the
    point booster of ``/explain``); the range boosters do without it.
    """

    _pool: ThreadPoolExecutor | None = None

    def __init__(self, model_file: Path, split_contributions: bool = False) -> None:
        self._text = Path(model_file).read_bytes()  # what `save_model` writes back, unchanged
        self._handle = _Handle(model_file)
        self._n_features = self._handle.int_call("LGBM_BoosterGetNumFeature")
        self._n_trees = self._handle.int_call("LGBM_BoosterNumberOfTotalModel")
        self._row = _FastRow(self._handle.value, _PREDICT_NORMAL, self._n_features, 1)
        self._halves: tuple[_FastRow, _FastRow] | None = None
        self._contrib_row: _FastRow | None = None
        if split_contributions:
            self._prepare_split(model_file)

    def _prepare_split(self, model_file: Path) -> None:
        # LightGBM keeps one prepared predictor per booster and kind: each half
        # of the trees needs a booster of its own (the same text model).
        width = self._n_features + 1
        half = self._n_trees // 2
        self._half_handles = (_Handle(model_file), _Handle(model_file))
        self._halves = (
            _FastRow(
                self._half_handles[0].value, _PREDICT_CONTRIB, self._n_features, width, (0, half)
            ),
            _FastRow(
                self._half_handles[1].value,
                _PREDICT_CONTRIB,
                self._n_features,
                width,
                (half, self._n_trees - half),
            ),
        )
        if NativeBooster._pool is None:
            NativeBooster._pool = ThreadPoolExecutor(1, thread_name_prefix="treeshap")

    def save_model(self, filename: str | Path) -> None:
        """Write the model file as it was read (a served model re-exported is the same bytes)."""
        Path(filename).write_bytes(self._text)

    def num_feature(self) -> int:
        """Number of feature columns the model reads."""
        return self._n_features

    def num_trees(self) -> int:
        """Number of trees (boosting rounds, one tree each for regression)."""
        return self._n_trees

    def predict(
        self, matrix: np.ndarray, num_threads: int = 0, pred_contrib: bool = False
    ) -> np.ndarray:
        """Predictions (or SHAP contributions + bias column) for a 2-D float matrix."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self._n_features:
            raise ValueError(f"expected a matrix of {self._n_features} columns, got {matrix.shape}")
        if matrix.shape[0] == 1:
            if pred_contrib:
                return self._contributions_one(matrix[0]).reshape(1, -1)
            return self._row(matrix[0])
        return self._predict_mat(matrix, num_threads, pred_contrib)

    def _contributions_one(self, row: np.ndarray) -> np.ndarray:
        if self._halves is None:
            if self._contrib_row is None:
                self._contrib_row = _FastRow(
                    self._handle.value, _PREDICT_CONTRIB, self._n_features, self._n_features + 1
                )
            return self._contrib_row(row)
        first, second = self._halves
        pool = NativeBooster._pool
        assert pool is not None  # made with the halves, in __init__
        other = pool.submit(second, row)
        return first(row) + other.result()

    def _predict_mat(self, matrix: np.ndarray, num_threads: int, contrib: bool) -> np.ndarray:
        data = np.ascontiguousarray(matrix)
        rows = data.shape[0]
        width = self._n_features + 1 if contrib else 1
        out = np.empty(rows * width)
        out_len = ctypes.c_int64()
        parameter = f"num_threads={num_threads}" if num_threads > 0 else ""
        _check(
            _library().LGBM_BoosterPredictForMat(
                self._handle.value,
                data.ctypes.data_as(ctypes.c_void_p),
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(rows),
                ctypes.c_int32(self._n_features),
                ctypes.c_int(_ROW_MAJOR),
                ctypes.c_int(_PREDICT_CONTRIB if contrib else _PREDICT_NORMAL),
                ctypes.c_int(0),
                ctypes.c_int(_ALL_ITERATIONS),
                ctypes.c_char_p(parameter.encode()),
                ctypes.byref(out_len),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            )
        )
        return out.reshape(rows, width) if contrib else out
