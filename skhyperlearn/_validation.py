"""Input checks shared by every entry point.

Each check raises before any work starts, names the parameter and says what was expected and what
was given. Nothing the caller passed in is modified: arrays are copied before they are changed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import scipy.sparse as sp
import sparse
from sklearn.utils import check_array

__all__ = [
    "ComplexDataError",
    "TensorInput",
    "check_coords_in_shape",
    "check_int",
    "check_laplacian_list",
    "check_laplacians",
    "check_tensor",
    "check_value_range",
    "drop_zeros",
    "laplacian_size",
    "n_cells",
    "refuse_complex",
    "working_dtype",
]

# Share of the dtype's largest number that ‖X‖² may reach: J, the Grams and the CG residuals
# are sums of squares of that size, and a sweep adds a few of them together.
_OVERFLOW_MARGIN = 1e-4


@dataclass
class TensorInput:
    """A validated sparse tensor: distinct coordinates, finite values, working dtype.

    ``coords`` is the ``(nnz, K)`` transpose of a C-contiguous ``(K, nnz)`` array, int32 or
    int64 (the caller's array when it already was one; new arrays in the narrowest index type
    that holds every mode, int32 below 2^31), the layout the kernels use, so that they share
    it instead of copying it. ``values`` may be a read-only view of the caller's array when
    no conversion was needed: nothing downstream writes to it.
    """

    coords: np.ndarray  # (nnz, K) int32/int64 view of a (K, nnz) array, duplicates summed
    values: np.ndarray  # (nnz,) float32 or float64
    shape: tuple[int, ...]
    laplacians: list | None = None  # graphs carried by a Hypergraph container, if any
    origins: list | None = None  # and where its entities sit in them (_graph_origin)

    @property
    def order(self) -> int:
        return len(self.shape)


class ComplexDataError(ValueError, TypeError):
    """Complex input refused: the one rule for complex values, whatever the parameter.

    A ValueError, scikit-learn's convention for complex data (``check_array``), and a TypeError,
    what the graph and hypergraph checks raised for them before they were made one rule.
    """


def refuse_complex(dtype, name: str) -> None:
    """Raise :class:`ComplexDataError` naming ``name`` when ``dtype`` is complex."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise ComplexDataError(
            f"Complex data not supported: {name} has complex values (dtype {dtype}); only "
            "real values are supported (the imaginary part is never dropped silently)."
        )


def working_dtype(dtype: np.dtype) -> np.dtype:
    """float32 stays float32; every other real type computes in float64."""
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def n_cells(shape: Sequence[int]) -> int:
    """The number of cells of a tensor of ``shape``, exact (a Python int never wraps)."""
    return math.prod(int(n) for n in shape)


def _fits_int64(shape: Sequence[int]) -> bool:
    """Whether every linear (row-major) index of ``shape`` fits in an int64."""
    return n_cells(shape) <= np.iinfo(np.int64).max


def check_int(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """``value`` as a Python int: numpy integers accepted, booleans and non-integers refused.

    The one integer check of every public entry point that takes counts, modes or sizes
    (``np.int64`` and ``np.uint64`` from array arithmetic are as good as ``int``; ``True`` is
    not a mode).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}.")
    out = int(value)
    if (low is not None and out < low) or (high is not None and out > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {out}.")
    return out


def check_value_range(values: np.ndarray, name: str = "X") -> None:
    """Refuse values whose squares overflow the working dtype; warn when they underflow.

    The data term and the Grams are sums of squared values: values near 1e300 (float64) or
    1e20 (float32) overflow on the first sweep whatever the solver does, so the fit is refused
    before any work. Values whose squares are subnormal lose precision: a warning says so.
    """
    if values.size == 0:
        return
    info = np.finfo(values.dtype)
    mags = np.abs(values)
    big = float(mags.max())
    # In float64 whatever the working dtype, so that the check itself cannot overflow.
    total = big * big * float(values.size)
    if not math.isfinite(total) or total > float(info.max) * _OVERFLOW_MARGIN:
        raise ValueError(
            f"{name} has values up to {big:.3g}: the sums of their squares overflow "
            f"{values.dtype} (largest {float(info.max):.3g}). Divide {name} by a constant "
            "(without graphs the fitted model scales with it; with graphs see lam)."
        )
    small = float(mags[mags > 0].min()) if np.any(mags > 0) else 0.0
    if 0.0 < small and small * small < float(info.tiny):
        warnings.warn(
            f"{name} has values down to {small:.3g}, whose squares underflow {values.dtype} "
            f"(smallest normal {float(info.tiny):.3g}): the fit loses precision. Multiply "
            f"{name} by a constant.",
            UserWarning,
            stacklevel=4,
        )


def _index_dtype(shape: Sequence[int]) -> np.dtype:
    """The narrowest index type the kernels gather with that holds every mode of ``shape``."""
    return np.dtype(np.int32) if max(shape, default=1) <= 2**31 - 1 else np.dtype(np.int64)


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (the caller's array stays writeable)."""
    view = a.view()
    view.flags.writeable = False
    return view


def _kernel_layout(coords_t: np.ndarray, idx: np.dtype) -> np.ndarray:
    """``(K, nnz)`` coordinates as the kernels hold them, shared with the caller when possible.

    A C-contiguous array of a type torch gathers with (int32 or int64) is used as it is (a
    read-only view): narrowing the caller's int64 array, which stays alive during the fit,
    would add 4 bytes per entry and mode for nothing. Anything else is copied into ``idx``.
    """
    if coords_t.flags.c_contiguous and coords_t.dtype in (np.dtype(np.int32), np.dtype(np.int64)):
        return _readonly(coords_t)
    return np.ascontiguousarray(coords_t, dtype=idx)


def check_coords_in_shape(
    coords_t: np.ndarray, shape: Sequence[int], name: str = "X", modes: Sequence[int] = ()
) -> None:
    """Refuse a coordinate outside ``shape``; ``coords_t`` is ``(K, nnz)``.

    ``modes`` (default: all, in order) says which modes the rows of ``coords_t`` index.

    Done here for every input, not left to ``np.ravel_multi_index``: above 2^63 cells no linear
    index is formed, so nothing else would stop a coordinate past its mode before the kernels
    gather with it (and numpy's own message names neither the tensor nor the mode).
    """
    modes = list(modes) or list(range(len(shape)))
    for k, row in zip(modes, coords_t, strict=True):
        n = shape[k]
        if row.size == 0:
            continue
        low, high = row.min(), row.max()
        if low < 0 or high >= n:
            bad = int(low) if low < 0 else int(high)
            raise ValueError(
                f"{name} has a coordinate outside its shape: mode {k} holds index {bad}, "
                f"outside [0, {int(n)}) (shape {tuple(int(s) for s in shape)})."
            )


def _sum_duplicates(coords_t: np.ndarray, values: np.ndarray, shape: tuple[int, ...]):
    """Sum the values of repeated coordinates (pydata sparse's convention), sorted row-major.

    ``coords_t`` is ``(K, nnz)``; returns ``(K, nnz')`` coordinates (new ones in the narrowest
    index type) and the values. Input already sorted and distinct (the common case) costs one
    linear index; its coordinates (see :func:`_kernel_layout`) and values are then returned as
    given, not copied.
    """
    idx = _index_dtype(shape)
    if coords_t.shape[1] == 0:
        return np.zeros(coords_t.shape, dtype=idx), values
    if not _fits_int64(shape):
        coords, summed = _sum_duplicates_by_rows(coords_t.T, values)
        return np.ascontiguousarray(coords.T, dtype=idx), summed
    linear = np.ravel_multi_index(tuple(coords_t), shape)
    if coords_t.shape[1] == 1 or np.all(linear[1:] > linear[:-1]):
        del linear
        return _kernel_layout(coords_t, idx), values
    order = np.argsort(linear, kind="stable")
    linear = linear[order]
    # First entry of each run of equal coordinates, in row-major order.
    starts = np.flatnonzero(np.concatenate(([True], linear[1:] != linear[:-1])))
    del linear
    first = order[starts]
    out = np.empty((coords_t.shape[0], starts.shape[0]), dtype=idx)
    for k in range(coords_t.shape[0]):
        out[k] = coords_t[k][first]
    del first
    if starts.shape[0] == order.shape[0]:
        summed = values[order]
    else:
        summed = np.add.reduceat(values[order], starts)
    return out, summed


def _sum_duplicates_by_rows(coords: np.ndarray, values: np.ndarray):
    """:func:`_sum_duplicates` for shapes with more than 2^63 cells (no linear index fits)."""
    uniq, inverse = np.unique(coords, axis=0, return_inverse=True)
    summed = np.zeros(uniq.shape[0], dtype=values.dtype)
    np.add.at(summed, inverse.ravel(), values)
    return uniq.astype(np.int64), summed


def _from_coo(x: sparse.COO, name: str) -> TensorInput:
    data = np.asarray(x.data)
    refuse_complex(data.dtype, name)
    if data.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got values of dtype {data.dtype}.")
    dtype = working_dtype(data.dtype)
    # The caller's values are used as they are when already in the working dtype (read-only, so
    # nothing can write through to them); sorting and summing duplicates make new arrays.
    values = _readonly(data) if data.dtype == dtype else data.astype(dtype)
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or infinity among its stored values.")
    if x.fill_value != 0 and not (isinstance(x.fill_value, float) and x.fill_value == 0.0):
        raise ValueError(f"{name} must have fill_value 0, got {x.fill_value!r}.")
    shape = tuple(int(s) for s in x.shape)
    check_coords_in_shape(np.asarray(x.coords), shape, name)
    coords_t, values = _sum_duplicates(np.asarray(x.coords), values, shape)
    return TensorInput(coords_t.T, values, shape)


def _from_dense(x: np.ndarray, name: str) -> TensorInput:
    arr = check_array(
        x,
        accept_sparse=False,
        dtype=[np.float64, np.float32],
        allow_nd=True,
        ensure_2d=True,
        ensure_min_samples=1,
        ensure_min_features=1,
        input_name=name,
    )
    nz = np.nonzero(arr)
    coords_t = np.empty((arr.ndim, nz[0].shape[0]), dtype=_index_dtype(arr.shape))
    for k, c in enumerate(nz):
        coords_t[k] = c
    return TensorInput(coords_t.T, arr[nz].astype(arr.dtype, copy=True), tuple(arr.shape))


def _check_scipy_indices(x, name: str) -> None:
    """The stored indices of a COO, CSR or CSC matrix checked before scipy converts them."""
    if x.format == "coo":
        check_coords_in_shape(np.stack([x.row, x.col]), x.shape, name)
    elif x.format in ("csr", "csc"):
        # Only the minor indices: scipy checks the pointers' consistency itself.
        minor = 1 if x.format == "csr" else 0
        check_coords_in_shape(x.indices[None, :], x.shape, name, modes=[minor])


def _from_scipy(x, name: str) -> TensorInput:
    refuse_complex(x.dtype, name)
    _check_scipy_indices(x, name)
    mat = check_array(
        x, accept_sparse=True, dtype=[np.float64, np.float32], input_name=name
    ).tocoo()
    coords_t = np.stack([mat.row, mat.col])
    values = np.array(mat.data, dtype=mat.dtype)
    coords_t, values = _sum_duplicates(coords_t, values, tuple(mat.shape))
    # Stored zeros are kept here as in every sparse format; _check_params applies the one rule.
    return TensorInput(coords_t.T, values, tuple(int(s) for s in mat.shape))


def _real_array(x, name: str, min_order: int):
    """``x`` as a real ndarray of at least ``min_order`` dimensions (object arrays converted)."""
    try:
        arr = np.asarray(x)
    except Exception as exc:
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}.") from exc
    if arr.ndim < 2:
        raise ValueError(
            f"{name} must have at least {min_order} dimensions (a tensor of order ≥ "
            f"{min_order}); got an array of shape {arr.shape}. Reshape your data either "
            "using X.reshape(-1, 1) if it has a single feature or X.reshape(1, -1) if it "
            "contains a single sample."
        )
    refuse_complex(arr.dtype, name)
    if arr.dtype.kind in "USV":
        raise TypeError(f"{name} must hold real numbers, got values of dtype {arr.dtype}.")
    if arr.dtype.kind == "O":
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must hold real numbers: {exc}") from exc
    return x


def drop_zeros(data: TensorInput, name: str = "X") -> TensorInput:
    """``data`` without its stored zeros (for losses where a zero cell is an absent one).

    Raises when nothing is left: a tensor of zeros has no hyperedge to learn from.
    """
    keep = data.values != 0
    if bool(keep.all()):
        return data
    if not bool(keep.any()):
        raise ValueError(
            f"{name} has only zero values among its {keep.size} stored entries: with "
            "loss='hypergraph' a zero is an absent hyperedge, so there is nothing to fit."
        )
    # Keep the kernels' layout: (nnz, K) as the transpose of a contiguous (K, nnz) array, in
    # the narrowest index type (this is a copy, whatever the caller's type).
    coords_t = data.coords.T
    coords = np.empty((coords_t.shape[0], int(keep.sum())), dtype=_index_dtype(data.shape))
    for k, row in enumerate(coords_t):
        coords[k] = row[keep]
    coords = coords.T
    return TensorInput(coords, data.values[keep], data.shape, data.laplacians, data.origins)


def check_tensor(x, name: str = "X", *, min_order: int = 2) -> TensorInput:
    """Validate a tensor given as ``sparse.COO``, scipy sparse, ndarray or a Hypergraph container.

    Parameters
    ----------
    x : sparse.COO, sparse array, scipy sparse matrix, array-like or Hypergraph
        The tensor. Repeated coordinates of a COO tensor are summed, as pydata sparse does.
        One rule for explicit zeros: a sparse input (pydata or scipy) keeps every stored entry,
        zeros included; an ndarray stores its non-zero cells (it cannot say more).
    name : str
        Parameter name used in error messages.
    min_order : int
        Smallest accepted order.

    Returns
    -------
    TensorInput
    """
    laplacians = origins = None
    if hasattr(x, "tensor") and hasattr(x, "laplacians"):
        laplacians = list(x.laplacians)
        origins = getattr(x, "_origins", None)
        x = x.tensor
    if isinstance(x, sparse.SparseArray):
        if not isinstance(x, sparse.COO):
            x = x.asformat("coo")
        out = _from_coo(x, name)
    elif sp.issparse(x):
        out = _from_scipy(x, name)
    elif isinstance(x, (str, bytes)) or x is None:
        raise TypeError(
            f"{name} must be a sparse.COO tensor, an ndarray or a scipy sparse matrix, "
            f"got {type(x).__name__}."
        )
    else:
        out = _from_dense(_real_array(x, name, min_order), name)
    if out.order < min_order:
        raise ValueError(f"{name} must be a tensor of order ≥ {min_order}, got shape {out.shape}.")
    if any(s < 1 for s in out.shape):
        raise ValueError(f"{name} has an empty mode: shape {out.shape}.")
    if out.coords.shape[0] == 0:
        raise ValueError(
            f"{name} is empty: it has no stored (non-zero) entries, shape {out.shape}."
        )
    check_value_range(out.values, name)
    out.laplacians = laplacians
    out.origins = None if origins is None else list(origins)
    return out


def _laplacian_matrix(lap, where: str) -> tuple[sp.csr_array, np.dtype]:
    """``lap`` (scipy, pydata sparse or dense) as a float64 CSR copy, and its own dtype."""
    if isinstance(lap, sparse.SparseArray):
        # pydata sparse, as normalized_laplacian and Hypergraph accept it.
        if lap.ndim != 2:
            raise ValueError(f"{where} must be 2-D, got {lap.ndim} dimensions.")
        refuse_complex(lap.dtype, where)
        lap = lap.asformat("coo").to_scipy_sparse()
    if sp.issparse(lap):
        if lap.ndim != 2:
            raise ValueError(f"{where} must be 2-D, got {lap.ndim} dimensions.")
        # Before the float64 copy, which would drop an imaginary part without a word.
        refuse_complex(lap.dtype, where)
        return sp.csr_array(lap, dtype=np.float64, copy=True), lap.dtype
    try:
        arr = np.asarray(lap)
    except Exception as exc:
        raise TypeError(
            f"{where} must be a scipy sparse matrix, an ndarray or None, got {type(lap).__name__}."
        ) from exc
    refuse_complex(arr.dtype, where)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{where} must hold real numbers, got {type(lap).__name__} of dtype {arr.dtype}."
        )
    if arr.ndim != 2:
        raise ValueError(f"{where} must be a 2-D matrix, got shape {arr.shape}.")
    return sp.csr_array(arr.astype(np.float64)), arr.dtype


def _rounding(dtype: np.dtype) -> float:
    """Relative rounding of the caller's values: float32 (or float16) ones are rounded coarser.

    Integers and booleans are exact; every tolerance keeps its float64 value for float64 input.
    """
    return float(np.finfo(dtype).eps) if dtype.kind == "f" else float(np.finfo(np.float64).eps)


def _check_one_laplacian(lap, k: int, n: int, name: str):
    where = f"{name}[{k}]"
    mat, dtype = _laplacian_matrix(lap, where)
    if mat.shape[0] != mat.shape[1]:
        raise ValueError(f"{where} must be square, got shape {mat.shape}.")
    if mat.shape[0] != n:
        raise ValueError(
            f"{where} has shape {mat.shape} but mode {k} of X has {n} entities; "
            f"expected ({n}, {n})."
        )
    if not np.all(np.isfinite(mat.data)):
        raise ValueError(f"{where} contains NaN or infinity.")
    asym = abs(mat - mat.T)
    scale = max(float(abs(mat).max()) if mat.nnz else 0.0, 1.0)
    # A few roundings of the input's own type: a float32 Laplacian computed in float32 is
    # symmetric and signed only to float32 precision.
    tol = max(1e-8, 8 * _rounding(dtype)) * scale
    if asym.nnz and float(asym.max()) > tol:
        raise ValueError(
            f"{where} is not symmetric (max |L - L.T| = {float(asym.max()):.3g}); a graph "
            "Laplacian must be symmetric."
        )
    if mat.nnz and float(mat.diagonal().min()) < -tol:
        raise ValueError(
            f"{where} has negative diagonal entries (min {float(mat.diagonal().min()):.3g}); a "
            "graph Laplacian has a non-negative diagonal (the degrees)."
        )
    off = mat.tocoo()
    off_vals = off.data[off.row != off.col]
    if off_vals.size and float(off_vals.max()) > tol:
        raise ValueError(
            f"{where} has positive off-diagonal entries (max {float(off_vals.max()):.3g}), i.e. "
            "negative graph weights; a Laplacian's off-diagonal entries are -w_ij <= 0."
        )
    _check_semidefinite(mat, where, scale, _rounding(dtype))
    return mat


# Up to this size the smallest eigenvalue is computed exactly (dense); above, a short power
# iteration looks for a negative one.
_DENSE_EIG_SIZE = 500
_POWER_STEPS = 30


def _check_semidefinite(mat: sp.csr_array, where: str, scale: float, eps: float) -> None:
    """Refuse a Laplacian with a negative eigenvalue (J would be unbounded below).

    The checks before leave a symmetric matrix with a non-negative diagonal and non-positive
    off-diagonal entries. Such a matrix is semidefinite when its rows sum to ≥ 0 (diagonal
    dominance: every combinatorial Laplacian ``D - W``), which costs one pass. Otherwise
    (normalized Laplacians, or a diagonal too small for the weights) the smallest eigenvalue is
    computed exactly up to 500 nodes; above, 30 power steps on ``cI - L`` (a non-negative matrix
    whose top eigenvector is the one of L's smallest eigenvalue) give Rayleigh quotients, each
    an upper bound of that eigenvalue: one below ``-tol`` proves a negative eigenvalue. A small
    negative eigenvalue that 30 steps do not reach passes: the check is cheap, not exhaustive.
    ``tol`` grows with ``eps``, the rounding of the caller's dtype (float32 rounds coarser).
    """
    n = mat.shape[0]
    # eps is the rounding of the caller's dtype: a float32 normalized Laplacian's zero
    # eigenvalue comes out near -1e-8 from rounding alone.
    tol = max(1e-8, 100 * n * eps) * scale
    if float((mat @ np.ones(n)).min()) >= -tol:
        return
    if n <= _DENSE_EIG_SIZE:
        lowest = float(np.linalg.eigvalsh(mat.toarray())[0])
    else:
        shift = float(mat.diagonal().max())
        v = np.full(n, 1.0 / np.sqrt(n))
        lowest = float(v @ (mat @ v))
        for _ in range(_POWER_STEPS):
            if lowest < -tol:
                break
            w = shift * v - mat @ v
            v = w / np.linalg.norm(w)
            lowest = min(lowest, float(v @ (mat @ v)))
    if lowest < -tol:
        raise ValueError(
            f"{where} has a negative eigenvalue ({lowest:.3g}): a graph Laplacian is positive "
            "semidefinite (otherwise J has no minimum). Build it with "
            "skhyperlearn.graphs.normalized_laplacian."
        )


def check_laplacians(laplacians, shape: Sequence[int], name: str = "laplacians") -> list:
    """Validate one Laplacian (or None) per mode; returns float64 CSR copies (or None)."""
    order = len(shape)
    if laplacians is None:
        return [None] * order
    check_laplacian_list(laplacians, order, name)
    return [
        None if lap is None else _check_one_laplacian(lap, k, n, name)
        for k, (lap, n) in enumerate(zip(laplacians, shape, strict=True))
    ]


def check_laplacian_list(
    laplacians, order: int, name: str = "laplacians", what: str | None = None
) -> None:
    """The container of ``laplacians``: a list or tuple of ``order`` entries (types only)."""
    if sp.issparse(laplacians) or isinstance(laplacians, np.ndarray):
        raise TypeError(
            f"{name} must be a list of {order} Laplacians (one per mode, None for a mode "
            f"without a graph), got a single {type(laplacians).__name__}."
        )
    if not isinstance(laplacians, Sequence):
        raise TypeError(f"{name} must be a list or tuple, got {type(laplacians).__name__}.")
    if len(laplacians) != order:
        raise ValueError(
            f"{name} has {len(laplacians)} entries but "
            f"{what or f'X is a tensor of order {order}'}; "
            f"give one Laplacian (or None) per mode."
        )


def laplacian_size(lap, k: int, name: str = "laplacians") -> int:
    """The number of rows of ``laplacians[k]`` (a sparse matrix, an ndarray or nested lists)."""
    shape = lap.shape if sp.issparse(lap) else np.shape(lap)
    if len(shape) != 2:
        raise ValueError(f"{name}[{k}] must be a 2-D matrix, got shape {tuple(shape)}.")
    return int(shape[0])
