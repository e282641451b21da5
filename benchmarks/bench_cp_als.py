"""Plain sparse CP-ALS: skhyperlearn's exact solver against GenTen, pyttb and TensorLy.

Times the exact solver of :class:`skhyperlearn.HyperLearnDecomposition` with no graphs (which is
plain CP-ALS on the full tensor, absent cells counting as zeros) per sweep, with its fit and peak
memory, against Sandia's GenTen (``pygenten.cp_als`` on a ``pygenten.Sptensor``, C++/Kokkos with
OpenMP, run with ``OMP_PROC_BIND=false``), pyttb ``cp_als`` on a ``pyttb.sptensor``, TensorLy
``parafac`` on the dense array and on its sparse backend, and against a floor: one bare
gather–multiply–scatter pass per mode (the MTTKRPs a sweep cannot avoid), measured in the same
run.

Every (method, tensor) pair runs in its own process, under a memory limit and a timeout, so
that peak memory is per method and a method that cannot cope is reported as such. All methods
see the same tensors and start from the same factors; the fit ``1 − ‖X − [[A]]‖/‖X‖`` of every
result is computed afterwards by the same code
(``skhyperlearn._numerics._kernels.hypergraph_sq_error``, over the stored entries only; nothing
is densified).

    python benchmarks/bench_cp_als.py                 # full run (15-40 min), rewrites README
    python benchmarks/bench_cp_als.py --quick         # small tensors, a minute, prints only
    python benchmarks/bench_cp_als.py --only skhyperlearn,pyttb --tensors ml100k
    python benchmarks/bench_cp_als.py --huge          # also the 10^8-entry row (heavy)
    python benchmarks/bench_cp_als.py --pairs 7       # skhyperlearn vs GenTen, 7 alternating pairs

Memory is reported twice per job: the peak resident memory of its process, and that peak above
what the process held once its input was loaded and the method's libraries were warmed up on a
tiny tensor, divided by the stored entries ("bytes per stored entry": what the method itself
needs per entry, factors and buffers included).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    child_result,
    format_bytes,
    machine_info,
    markdown_table,
    peak_rss_bytes,
    per_step,
    run_child,
    text_table,
    write_readme_section,
)

README = Path(__file__).resolve().parent / "README.md"
README_HEADER = """# skhyperlearn benchmarks

Each script in this folder measures one thing and rewrites its own section of this file
(between `<!-- name:start -->` and `<!-- name:end -->` markers). Numbers are from the machine
named in each section; rerun the command given there to reproduce them.
"""
SECTION = "cp_als"
SEED = 0

# ---------------------------------------------------------------------------- the tensors
# sweeps: sweeps of the timed (long) call, after which the fit is reported; short: sweeps of
# the short call subtracted from it; warmup: sweeps of an untimed call on the same tensor first;
# repeats: (short, long) pairs timed; timeout: seconds per job.
TENSORS = {
    "ml100k": dict(
        shape=(943, 1682, 100),
        nnz=100_000,
        rank=10,
        sweeps=20,
        short=2,
        warmup=3,
        repeats=5,
        timeout=600,
    ),
    "sparse20k": dict(
        shape=(20_000, 20_000, 100),
        nnz=200_000,
        rank=10,
        sweeps=20,
        short=2,
        warmup=3,
        repeats=3,
        timeout=300,
    ),
    "medium": dict(
        shape=(10_000, 5_000, 2_000),
        nnz=1_000_000,
        rank=32,
        sweeps=8,
        short=2,
        warmup=2,
        repeats=3,
        timeout=600,
    ),
    "large": dict(
        shape=(100_000, 50_000, 1_000),
        nnz=10_000_000,
        rank=32,
        sweeps=5,
        short=1,
        warmup=1,
        repeats=1,
        timeout=420,
    ),
}
# The 10^8-entry row: only with --huge (or named in --tensors); one timed pair, no warm-up.
HUGE = {
    "huge": dict(
        shape=(100_000, 50_000, 1_000),
        nnz=100_000_000,
        rank=16,
        sweeps=3,
        short=1,
        warmup=0,
        repeats=1,
        timeout=1800,
    ),
}
QUICK_TENSORS = {
    "ml100k": dict(
        shape=(94, 168, 20),
        nnz=3_000,
        rank=5,
        sweeps=5,
        short=1,
        warmup=1,
        repeats=1,
        timeout=120,
    ),
    "sparse20k": dict(
        shape=(2_000, 2_000, 20),
        nnz=4_000,
        rank=5,
        sweeps=5,
        short=1,
        warmup=1,
        repeats=1,
        timeout=120,
    ),
    "medium": dict(
        shape=(1_000, 500, 200),
        nnz=10_000,
        rank=8,
        sweeps=4,
        short=1,
        warmup=1,
        repeats=1,
        timeout=120,
    ),
    "large": dict(
        shape=(2_000, 1_000, 50),
        nnz=20_000,
        rank=8,
        sweeps=4,
        short=1,
        warmup=1,
        repeats=1,
        timeout=120,
    ),
}
QUICK_HUGE = {
    "huge": dict(
        shape=(2_000, 1_000, 50),
        nnz=40_000,
        rank=4,
        sweeps=3,
        short=1,
        warmup=0,
        repeats=1,
        timeout=120,
    ),
}

METHODS = {
    "skhyperlearn": "skhyperlearn ALS, float64",
    "skhyperlearn-f32": "skhyperlearn ALS, float32",
    "genten": "GenTen cp_als (pygenten Sptensor)",
    "pyttb": "pyttb cp_als (sptensor)",
    "tensorly-dense": "TensorLy parafac (dense ndarray)",
    "tensorly-sparse": "TensorLy parafac (sparse backend, COO)",
    "tensorly-sparse-random": "TensorLy parafac (sparse backend, init='random')",
    "floor": "floor: gather–multiply–scatter × K (float64)",
    "floor-f32": "floor: gather–multiply–scatter × K (float32)",
}
# Methods left out of some tensors by default; --only can still ask for them.
SKIP = {
    # init='random' gives COO factors and ~10 s sweeps: one reference row on the first tensor.
    ("sparse20k", "tensorly-sparse-random"),
    ("large", "tensorly-sparse-random"),
    ("medium", "tensorly-sparse-random"),
    # Out of memory at 16 GB (13.5 GB resident) when last run: not rerun on a shared machine.
    ("large", "tensorly-sparse"),
    # The 10^8-entry row compares skhyperlearn with GenTen only.
    *(
        ("huge", m)
        for m in (
            "skhyperlearn-f32",
            "pyttb",
            "tensorly-dense",
            "tensorly-sparse",
            "tensorly-sparse-random",
            "floor",
            "floor-f32",
        )
    ),
}
# Per (tensor, method) protocol overrides.
OVERRIDES = {
    ("ml100k", "tensorly-sparse-random"): dict(sweeps=3, short=1, warmup=0, repeats=1),
    ("ml100k", "pyttb"): dict(repeats=3),
    ("ml100k", "tensorly-dense"): dict(repeats=1, warmup=1),
    ("ml100k", "tensorly-sparse"): dict(repeats=1, warmup=1),
    ("sparse20k", "pyttb"): dict(repeats=1, warmup=1),
    ("medium", "pyttb"): dict(repeats=1, warmup=1, sweeps=4, short=1),
    ("medium", "tensorly-dense"): dict(repeats=1, warmup=0),
    ("medium", "tensorly-sparse"): dict(repeats=1, warmup=0, sweeps=3, short=1),
    # pyttb's sweep on 10^7 entries is minutes: warm up on a small tensor only.
    ("large", "pyttb"): dict(warmup=0, sweeps=2, short=1),
    ("large", "tensorly-sparse"): dict(warmup=0, sweeps=2, short=1, timeout=240),
}
CHUNK_BYTES = 64 * 2**20  # the floor works on chunks of entries with this temporary budget


# ---------------------------------------------------------------------------- data
def _blocks(n: int, parts: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop of ``parts`` contiguous, non-empty (when possible) blocks of ``range(n)``."""
    edges = (np.arange(parts + 1) * n) // parts
    start = np.minimum(edges[:-1], n - 1)
    stop = np.maximum(edges[1:], start + 1)
    return start, stop


def make_tensor(shape, nnz: int, rank: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A sparse tensor with ``nnz`` distinct entries and planted block (community) structure.

    Each entry belongs to one of ``rank`` communities; in every mode its index is drawn from
    that community's block of indices with probability 0.9, else uniformly. Values are
    uniform on [0.5, 1.5). So a rank-``rank`` CP model has something to find, and the fits of
    different methods can be told apart. Returns ``(K, nnz)`` int64 coordinates sorted in
    row-major order and float64 values.
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    bounds = [_blocks(n, rank) for n in shape]
    total = int(np.prod(shape, dtype=np.int64))
    if nnz > total // 2:
        raise ValueError(f"{nnz} entries is too dense for shape {shape}")
    linear = np.empty(0, dtype=np.int64)
    while linear.size < nnz:
        m = int((nnz - linear.size) * 1.2) + 1000
        comp = rng.integers(0, rank, m)
        lin = np.zeros(m, dtype=np.int64)
        for n, (lo, hi) in zip(shape, bounds, strict=True):
            inside = lo[comp] + (rng.random(m) * (hi[comp] - lo[comp])).astype(np.int64)
            idx = np.where(rng.random(m) < 0.9, inside, rng.integers(0, n, m))
            lin = lin * n + idx
        linear = np.unique(np.concatenate([linear, lin]))
    linear = np.sort(rng.choice(linear, nnz, replace=False))
    coords = np.stack(np.unravel_index(linear, shape)).astype(np.int64)
    values = rng.uniform(0.5, 1.5, nnz)
    return coords, values


def initial_factors(shape, rank: int, seed: int) -> list[np.ndarray]:
    """The factors every method starts from: uniform on [0, 1), as pyttb's ``init='random'``."""
    rng = np.random.default_rng(seed + 1)
    return [rng.uniform(0.0, 1.0, (n, rank)) for n in shape]


def save_tensor(workdir: Path, key: str, spec: dict) -> Path:
    path = workdir / key
    path.mkdir(parents=True, exist_ok=True)
    coords, values = make_tensor(spec["shape"], spec["nnz"], spec["rank"], SEED)
    np.save(path / "coords.npy", coords)
    np.save(path / "values.npy", values)
    init = initial_factors(spec["shape"], spec["rank"], SEED)
    np.savez(path / "init.npz", *init)
    return path


def load_tensor(
    path: Path, by_entry: bool = False
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Coordinates ``(K, nnz)``, or ``(nnz, K)`` C-contiguous with ``by_entry`` (read through a
    memory map, so that the other layout is never resident), values and initial factors."""
    if by_entry:
        mapped = np.load(path / "coords.npy", mmap_mode="r")
        coords = np.ascontiguousarray(mapped.T)
        del mapped
    else:
        coords = np.load(path / "coords.npy")
    values = np.load(path / "values.npy")
    with np.load(path / "init.npz") as f:
        init = [f[f"arr_{k}"] for k in range(len(f.files))]
    return coords, values, init


# ---------------------------------------------------------------------------- the methods
# Each runner factory takes (coords (K, nnz), values, shape, init factors, rank) and returns
# ``run(n_sweeps) -> factors`` (weights folded into the first factor); building the input in
# the method's own format happens in the factory, outside the timed calls.
def _skhyperlearn(dtype):
    def factory(coords, values, shape, init, rank):
        import sparse

        from skhyperlearn import HyperLearnDecomposition

        # copy=False: the loaded values are handed over as they are, as to GenTen.
        x = sparse.COO(
            coords,
            values.astype(dtype, copy=False),
            shape=shape,
            has_duplicates=False,
            sorted=True,
        )
        sweep_times: list[float] = []

        def run(n):
            est = HyperLearnDecomposition(
                rank=rank,
                solver="als",
                loss="hypergraph",
                laplacians=None,
                init=[a.copy() for a in init],
                tol=0.0,
                max_iter=n,
                # The sample mode is solved last; the last mode makes the order 0, 1, …, K−1,
                # the order pyttb and TensorLy sweep in, so all take the same steps.
                sample_mode=len(shape) - 1,
                verbose=1,
            )
            log = io.StringIO()
            with contextlib.redirect_stdout(log):
                est.fit(x)
            # In-loop time of each sweep but the first (which sorts the entries per mode).
            times = re.findall(r"sweep +\d+ .* ([0-9.]+) s$", log.getvalue(), re.MULTILINE)
            sweep_times.extend(float(t) for t in times[1:])
            run.n_iter = est.n_iter_  # tol=0 still stops if J does not change at all
            return est.factors_

        run.sweep_times = sweep_times
        return run

    return factory


def _pyttb(coords, values, shape, init, rank):
    import pyttb

    x = pyttb.sptensor(np.ascontiguousarray(coords.T), values[:, None], shape, copy=False)

    def run(n):
        start = pyttb.ktensor([a.copy() for a in init])
        # stoptol=0: never stops early; printitn=0: no printing and no extra final fit pass.
        m, _, _ = pyttb.cp_als(x, rank, stoptol=0.0, maxiters=n, init=start, printitn=0)
        factors = [np.array(a) for a in m.factor_matrices]
        factors[0] = factors[0] * m.weights
        return factors

    return run


def _tensorly(kind):
    def factory(coords, values, shape, init, rank):
        import sparse
        import tensorly
        from tensorly.cp_tensor import CPTensor

        tensorly.set_backend("numpy")
        x = sparse.COO(coords, values, shape=shape, has_duplicates=False, sorted=True)
        if kind == "dense":
            from tensorly.decomposition import parafac

            x = x.todense()
        else:
            from tensorly.contrib.sparse.decomposition import parafac

        def run(n):
            if kind == "sparse-random":
                cp = parafac(x, rank, n_iter_max=n, init="random", random_state=SEED, tol=0)
            else:
                start = CPTensor((np.ones(rank), [a.copy() for a in init]))
                # tol=0: no error computed per iteration, never stops early.
                cp = parafac(x, rank, n_iter_max=n, init=start, tol=0)
            weights, factors = cp
            factors = [_to_numpy(a) for a in factors]
            factors[0] = factors[0] * _to_numpy(weights)
            return factors

        return run

    return factory


def _to_numpy(a) -> np.ndarray:
    return np.asarray(a.todense() if hasattr(a, "todense") else a, dtype=np.float64)


def _genten(coords, values, shape, init, rank):
    """GenTen's CP-ALS from the same start; ``coords`` arrive as GenTen's ``(nnz, K)`` layout."""
    import pygenten

    # copy=False: GenTen is handed the loaded arrays (the leanest use of its API).
    x = pygenten.Sptensor(tuple(int(s) for s in shape), coords, values, copy=False)

    def run(n):
        start = pygenten.Ktensor(np.ones(rank), [np.array(a, dtype=np.float64) for a in init])
        # tol=0: never stops early; printitn=0: no per-iteration printing.
        m, _, _ = pygenten.cp_als(x, init=start, rank=rank, maxiters=n, tol=0.0, printitn=0)
        factors = [np.array(a) for a in m.factor_matrices]
        factors[0] = factors[0] * np.asarray(m.weights)
        del m
        return factors

    run.keep = x  # GenTen's data must outlive the calls
    return run


RUNNERS = {
    "skhyperlearn": _skhyperlearn(np.float64),
    "skhyperlearn-f32": _skhyperlearn(np.float32),
    "genten": _genten,
    "pyttb": _pyttb,
    "tensorly-dense": _tensorly("dense"),
    "tensorly-sparse": _tensorly("sparse"),
    "tensorly-sparse-random": _tensorly("sparse-random"),
}


# ---------------------------------------------------------------------------- the floor
def _floor_passes(coords, values, shape, init, dtype):
    """Bare MTTKRP passes over all K modes, two ways; returns ``{variant: pass()}``.

    ``index_add``: entries in storage order; per chunk, gather the K−1 other factors' rows at
    the entries, multiply them and the values, ``index_add_`` into the output rows.
    ``csr``: entries pre-sorted by the output mode (done once, not timed); per chunk, gather,
    multiply, and one CSR-sparse × dense product whose non-zeros are the values (the scatter
    skhyperlearn uses).
    """
    import torch

    k_modes = len(shape)
    rank = init[0].shape[1]
    factors = [torch.as_tensor(a).to(dtype).contiguous() for a in init]
    vals = torch.as_tensor(values).to(dtype)
    idx = torch.as_tensor(coords)  # (K, nnz) int64, one contiguous row per mode
    nnz = vals.shape[0]
    step = max(1024, CHUNK_BYTES // (rank * vals.element_size()))
    spans = [(s, min(s + step, nnz)) for s in range(0, nnz, step)]

    def gather(c, mode):
        h = None
        for j in range(k_modes):
            if j != mode:
                g = factors[j].index_select(0, c[j])
                h = g if h is None else h.mul_(g)
        return h

    def pass_index_add():
        outs = []
        for mode in range(k_modes):
            out = torch.zeros(shape[mode], rank, dtype=dtype)
            for s, e in spans:
                c = idx[:, s:e]
                h = gather(c, mode).mul_(vals[s:e, None])
                out.index_add_(0, c[mode], h)
            outs.append(out)
        return outs

    sorted_chunks = []
    for mode in range(k_modes):
        order = torch.argsort(idx[mode], stable=True)
        c_all = idx.index_select(1, order)
        v_all = vals.index_select(0, order)
        chunks = []
        for s, e in spans:
            c = c_all[:, s:e].contiguous()
            lo, hi = int(c[mode, 0]), int(c[mode, -1]) + 1
            crow = torch.zeros(hi - lo + 1, dtype=torch.int64)
            torch.cumsum(torch.bincount(c[mode] - lo, minlength=hi - lo), 0, out=crow[1:])
            csr = torch.sparse_csr_tensor(
                crow,
                torch.arange(e - s),
                v_all[s:e].clone(),
                size=(hi - lo, e - s),
                check_invariants=False,
            )
            chunks.append((lo, hi, c, csr))
        sorted_chunks.append(chunks)
        del c_all, v_all, order

    def pass_csr():
        outs = []
        for mode in range(k_modes):
            out = torch.zeros(shape[mode], rank, dtype=dtype)
            for lo, hi, c, csr in sorted_chunks[mode]:
                out[lo:hi] += csr @ gather(c, mode)
            outs.append(out)
        return outs

    return {"index_add": pass_index_add, "csr": pass_csr}


# ---------------------------------------------------------------------------- child job
def child_main(job: dict) -> None:
    """One (tensor, method) job, in its own process; writes its result for the parent."""
    with child_result({"job": job}) as payload:
        if job.get("threads"):
            import torch

            torch.set_num_threads(int(job["threads"]))
        path = Path(job["path"])
        shape, rank, method = tuple(job["shape"]), int(job["rank"]), job["method"]
        coords, values, init = load_tensor(path, by_entry=method == "genten")
        payload["input_rss"] = _current_rss()
        if method.startswith("floor"):
            _child_floor(job, payload, coords, values, shape, init)
            return
        # One-time costs (imports, JIT, first calls) are paid on a small tensor first.
        tiny_shape = tuple(max(rank + 5, 40) for _ in shape)
        t_coords, t_values = make_tensor(tiny_shape, 2000, rank, SEED + 7)
        if method == "genten":
            t_coords = np.ascontiguousarray(t_coords.T)
        t_init = initial_factors(tiny_shape, rank, SEED + 7)
        RUNNERS[method](t_coords, t_values, tiny_shape, t_init, rank)(2)
        del t_coords, t_values, t_init
        gc.collect()
        # What the process holds with its input loaded and the method's libraries warm.
        payload["ready_rss"] = _current_rss()

        tic = time.perf_counter()
        run = RUNNERS[method](coords, values, shape, init, rank)
        payload["prepare_s"] = time.perf_counter() - tic
        if job["warmup"]:
            run(job["warmup"])
        timing = per_step(run, job["short"], job["sweeps"], job["repeats"])
        factors = timing.pop("last")
        payload.update(timing)
        payload["sweeps_done"] = job["sweeps"]
        if hasattr(run, "n_iter"):
            payload["sweeps_done"] = run.n_iter
        if hasattr(run, "sweep_times") and run.sweep_times:
            payload["in_loop_step_s"] = statistics.median(run.sweep_times)
        # Peak memory of the method, before anything else is done in this process.
        payload["peak_rss"] = peak_rss_bytes()
        np.savez(job["factors_file"], *[np.asarray(a, dtype=np.float64) for a in factors])
        _record_threads(payload)


def _current_rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _child_floor(job, payload, coords, values, shape, init) -> None:
    import torch

    dtype = torch.float32 if job["method"].endswith("f32") else torch.float64
    passes = _floor_passes(coords, values, shape, init, dtype)
    n = max(3, job["repeats"] * 4) if job["nnz"] < 5_000_000 else 3
    variants = {}
    for name, fn in passes.items():
        fn()  # warm-up
        times = []
        for _ in range(n):
            tic = time.perf_counter()
            fn()
            times.append(time.perf_counter() - tic)
        variants[name] = statistics.median(times)
    payload["variants_s"] = variants
    payload["step_s"] = min(variants.values())
    payload["best_variant"] = min(variants, key=variants.get)
    payload["peak_rss"] = peak_rss_bytes()
    _record_threads(payload)


def _record_threads(payload: dict) -> None:
    if "torch" in sys.modules:
        payload["torch_threads"] = sys.modules["torch"].get_num_threads()


# ---------------------------------------------------------------------------- parent
def fit_of(path: Path, factors_file: Path, cache: dict) -> float:
    """``1 − ‖X − [[A]]‖ / ‖X‖`` with skhyperlearn's kernel, in float64, never densified."""
    import torch

    from skhyperlearn._numerics._kernels import SparseTensorData, hypergraph_sq_error

    if "tensor" not in cache:
        coords, values, _ = load_tensor(path)
        cache["shape"] = tuple(int(s) for s in coords.max(axis=1) + 1)
        cache["tensor"] = SparseTensorData(
            torch.as_tensor(coords), torch.as_tensor(values), cache["shape"], transposed=True
        )
    tensor = cache["tensor"]
    with np.load(factors_file) as f:
        factors = [torch.as_tensor(f[f"arr_{k}"]) for k in range(len(f.files))]
    err = hypergraph_sq_error(tensor, factors)
    return 1.0 - float(np.sqrt(err / tensor.norm_sq))


def plan(tensors: dict, keys: list[str], methods: list[str], explicit: bool) -> list:
    jobs = []
    for key in keys:
        for method in methods:
            if (key, method) in SKIP and not explicit:
                continue
            spec = {**tensors[key], **OVERRIDES.get((key, method), {})}
            jobs.append((key, method, spec))
    return jobs


def dense_bytes(shape) -> int:
    return int(np.prod(shape, dtype=np.float64) * 8)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small tensors (smoke test)")
    parser.add_argument(
        "--huge", action="store_true", help="also the 10^8-entry tensor (skhyperlearn and GenTen)"
    )
    parser.add_argument(
        "--huge-nnz",
        type=float,
        default=None,
        help="stored entries of the --huge tensor, where 10^8 would not fit the machine",
    )
    parser.add_argument(
        "--only", default="", help=f"comma-separated methods, from: {', '.join(METHODS)}"
    )
    parser.add_argument(
        "--tensors", default="", help=f"comma-separated tensors, from: {', '.join(TENSORS)}"
    )
    parser.add_argument(
        "--mem-limit-gb",
        type=float,
        default=16.0,
        help="address-space limit of each job (default 16)",
    )
    parser.add_argument(
        "--timeout-s",
        type=float,
        default=None,
        help="wall-clock limit of each job (default: per tensor)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per job (default: the libraries' defaults)",
    )
    parser.add_argument(
        "--readme",
        dest="readme",
        action="store_true",
        default=None,
        help="write the table into benchmarks/README.md",
    )
    parser.add_argument("--no-readme", dest="readme", action="store_false")
    parser.add_argument("--json", type=Path, default=None, help="also save raw results here")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where tensors and factors go (default: a temporary folder)",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        help="time only skhyperlearn and GenTen, in this many pairs of jobs that alternate "
        "which runs first (default tensors: all but --huge's)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child is not None:
        job = json.loads(args.child)
        child_main(job)
        if job["method"] == "genten":
            # GenTen's Kokkos runtime aborts when its arrays outlive it at interpreter exit.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        return 0

    tensors = dict(QUICK_TENSORS if args.quick else TENSORS)
    huge = {k: dict(v) for k, v in (QUICK_HUGE if args.quick else HUGE).items()}
    if args.huge_nnz:
        huge["huge"]["nnz"] = int(args.huge_nnz)
    methods = [m for m in args.only.split(",") if m] or list(METHODS)
    keys = [t for t in args.tensors.split(",") if t] or list(tensors)
    if args.pairs and not args.tensors:
        keys = [k for k in tensors if k in PAIR_TENSORS]
    if args.huge and "huge" not in keys:
        keys.append("huge")
    tensors.update(huge)
    for m in methods:
        if m not in METHODS:
            parser.error(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
    for t in keys:
        if t not in tensors:
            parser.error(f"unknown tensor {t!r}; choose from {', '.join(tensors)}")
    full = not args.quick and not args.only and not args.tensors and args.huge
    write = full if args.readme is None else args.readme
    given = sys.argv[1:] if argv is None else list(argv)
    # Where this run kept its files is not part of what reproduces it.
    for flag in ("--json", "--workdir"):
        while flag in given[:-1]:
            at = given.index(flag)
            del given[at : at + 2]
    command = " ".join(["python benchmarks/bench_cp_als.py", *given])
    if args.pairs < 0:
        parser.error(f"--pairs must be a positive number of pairs, got {args.pairs}")
    if args.pairs and args.only:
        parser.error("--pairs times skhyperlearn and GenTen only; it takes no --only")

    env = dict(os.environ)
    if args.threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(args.threads)
    limit = int(args.mem_limit_gb * 1e9)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_cp_als_"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load_before = os.getloadavg()
    results = []
    if args.pairs:
        return pairs_main(args, tensors, keys, workdir, env, limit, command, load_before)
    try:
        for key in keys:
            spec = tensors[key]
            tic = time.perf_counter()
            path = save_tensor(workdir, key, spec)
            print(
                f"\n== {key}: shape {spec['shape']}, {spec['nnz']:,} entries, rank "
                f"{spec['rank']} (made in {time.perf_counter() - tic:.1f} s)",
                flush=True,
            )
            fit_cache: dict = {}
            for _, method, job_spec in plan(tensors, [key], methods, bool(args.only)):
                if spec["nnz"] >= 50_000_000:
                    # The parent must not hold a 10^8-entry tensor while a job runs.
                    fit_cache.clear()
                    gc.collect()
                res = _run_job(key, method, job_spec, path, workdir, env, limit, args)
                if res.get("factors_file") and res["status"] == "ok":
                    res["fit"] = fit_of(path, Path(res["factors_file"]), fit_cache)
                results.append(res)
                _print_job(res)
            fit_cache.clear()
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - started

    info = machine_info(
        ["skhyperlearn", "torch", "numpy", "scipy", "sparse", "pygenten", "pyttb", "tensorly"]
    )
    info["load_before"] = " ".join(f"{x:.2f}" for x in load_before)
    threads = {r.get("torch_threads") for r in results if r.get("torch_threads")}
    info["torch_threads"] = ", ".join(str(t) for t in sorted(threads)) or "-"
    rows = table_rows(results, tensors)
    summary = targets(results)
    print()
    print(text_table(rows, COLUMNS))
    print()
    print("\n".join(summary + failures(results, tensors)))
    print(f"\nTotal time {elapsed / 60:.1f} min; machine: {info}")
    if args.json:
        args.json.write_text(
            json.dumps({"machine": info, "results": results}, indent=1, default=str)
        )
    if write:
        section = readme_section(
            rows, summary, failures(results, tensors), info, command, elapsed, tensors, args
        )
        write_readme_section(README, SECTION, section, README_HEADER)
        print(f"wrote {README}")
    return 0


def _run_job(key, method, spec, path, workdir, env, limit, args) -> dict:
    base = {
        "tensor": key,
        "method": method,
        "shape": list(spec["shape"]),
        "nnz": spec["nnz"],
        "rank": spec["rank"],
        "sweeps": spec["sweeps"],
    }
    if method == "tensorly-dense" and dense_bytes(spec["shape"]) > limit:
        return {
            **base,
            "status": "out of memory",
            "error": f"the dense array alone needs {format_bytes(dense_bytes(spec['shape']))}"
            f" (limit {format_bytes(limit)}); not started",
        }
    job = {
        **base,
        "path": str(path),
        "warmup": spec["warmup"],
        "short": spec["short"],
        "repeats": spec["repeats"],
        "threads": args.threads,
        "factors_file": str(workdir / f"factors-{key}-{method}.npz"),
    }
    timeout = args.timeout_s or spec["timeout"]
    if method == "genten":
        # As GenTen's Kokkos runtime asks for on a machine whose cores are shared.
        env = {**env, "OMP_PROC_BIND": "false"}
    print(f"-- {method} ...", end=" ", flush=True)
    child = run_child(
        [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(job)],
        timeout_s=timeout,
        mem_limit_bytes=limit,
        env=env,
    )
    res = {**base, **{k: v for k, v in child.result.items() if k != "job"}}
    res["status"] = child.status
    res["peak_rss"] = child.peak_rss
    res["wall_s"] = child.wall_s
    if child.status == "ok" and not method.startswith("floor"):
        res["factors_file"] = job["factors_file"]
    if child.status == "timeout":
        res["error"] = f"no result within {timeout:.0f} s"
    elif child.status != "ok":
        res["error"] = child.error_line()
    return res


def _print_job(res: dict) -> None:
    if res["status"] == "ok":
        extra = f"fit {res['fit']:.6f}" if "fit" in res else str(res.get("variants_s", ""))
        print(
            f"{res['step_s'] * 1e3:.1f} ms/sweep, peak {format_bytes(res['peak_rss'])}, "
            f"{extra} [{res.get('wall_s', 0):.0f} s]",
            flush=True,
        )
    else:
        print(f"{res['status']}: {res.get('error', '')}", flush=True)


# ---------------------------------------------------------------------------- reporting
COLUMNS = [
    ("tensor", "tensor"),
    ("method", "method"),
    ("per_sweep", "per sweep"),
    ("setup", "fixed cost per call"),
    ("fit", "fit"),
    ("peak", "peak RSS"),
    ("above", "peak above input"),
    ("per_entry", "bytes / stored entry"),
    ("vs_sk", "time ÷ skhyperlearn"),
    ("vs_floor", "time ÷ floor"),
]


def _label(spec: dict) -> str:
    shape = "×".join(str(s) for s in spec["shape"])
    return f"{shape}, {spec['nnz']:.0e} nnz, R={spec['rank']}".replace("e+0", "e")


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.1f} ms"


def _lookup(results, key, method):
    for r in results:
        if r["tensor"] == key and r["method"] == method and r["status"] == "ok":
            return r
    return None


def _per_entry(r: dict) -> float:
    """Peak above the loaded input and warm libraries, per stored entry."""
    return (r["peak_rss"] - r["ready_rss"]) / r["nnz"]


def table_rows(results: list[dict], tensors: dict) -> list[dict]:
    rows = []
    for r in results:
        key, method = r["tensor"], r["method"]
        row = {"tensor": _label(tensors[key]), "method": METHODS[method]}
        if r["status"] != "ok":
            row["per_sweep"] = r["status"]
            row["peak"] = format_bytes(r.get("peak_rss")) if r.get("peak_rss") else "-"
            rows.append(row)
            continue
        row["per_sweep"] = _ms(r["step_s"])
        if "setup_s" in r:
            row["setup"] = f"{r['setup_s']:.2f} s"
        if "fit" in r:
            row["fit"] = f"{r['fit']:.6f} ({r['sweeps_done']} sw)"
        row["peak"] = format_bytes(r["peak_rss"])
        if r.get("input_rss"):
            row["above"] = format_bytes(r["peak_rss"] - r["input_rss"])
        if r.get("ready_rss"):
            row["per_entry"] = f"{_per_entry(r):.0f}"
        sk = _lookup(results, key, "skhyperlearn")
        if sk and not method.startswith("floor"):
            row["vs_sk"] = f"{r['step_s'] / sk['step_s']:.1f}×"
        floor = _lookup(results, key, "floor-f32" if method.endswith("f32") else "floor")
        if floor and method.startswith("skhyperlearn"):
            row["vs_floor"] = f"{r['step_s'] / floor['step_s']:.2f}×"
        rows.append(row)
    return rows


def targets(results: list[dict]) -> list[str]:
    """The issue's three targets, checked against this run."""
    lines = ["Targets:"]
    sk, py = _lookup(results, "ml100k", "skhyperlearn"), _lookup(results, "ml100k", "pyttb")
    if sk and py:
        speed = py["step_s"] / sk["step_s"]
        dfit = abs(py["fit"] - sk["fit"])
        lines.append(
            f"- ≥ 5× faster per sweep than pyttb on the first tensor at equal fit: "
            f"{speed:.1f}× (fits {sk['fit']:.6f} vs {py['fit']:.6f}, |Δ| = {dfit:.1e}) — "
            f"{'met' if speed >= 5 and dfit < 1e-6 else 'NOT met'}"
        )
    for key in ("ml100k", "sparse20k", "large"):
        for m, fl in (("skhyperlearn", "floor"), ("skhyperlearn-f32", "floor-f32")):
            a, b = _lookup(results, key, m), _lookup(results, key, fl)
            if a and b:
                ratio = a["step_s"] / b["step_s"]
                lines.append(
                    f"- within 2× of the floor ({key}, {m}): {ratio:.2f}× — "
                    f"{'met' if ratio <= 2 else 'NOT met'}"
                )
    for key in ("ml100k", "medium", "large", "huge"):
        sk, gt = _lookup(results, key, "skhyperlearn"), _lookup(results, key, "genten")
        if sk and gt:
            ratio = sk["step_s"] / gt["step_s"]
            lines.append(
                f"- per sweep at most GenTen's ({key}): {_ms(sk['step_s'])} vs "
                f"{_ms(gt['step_s'])} ({ratio:.2f}×; fits {sk['fit']:.6f} vs {gt['fit']:.6f}) — "
                f"{'met' if ratio <= 1 else 'NOT met'}"
            )
            if key in ("large", "huge") and sk.get("ready_rss") and gt.get("ready_rss"):
                a, b = _per_entry(sk), _per_entry(gt)
                lines.append(
                    f"- bytes per stored entry at most GenTen's ({key}): {a:.0f} vs {b:.0f} — "
                    f"{'met' if a <= b else 'NOT met'}"
                )
    for m in ("skhyperlearn", "skhyperlearn-f32"):
        big = [r for r in results if r["tensor"] == "large" and r["method"] == m]
        if big:
            r = big[0]
            if r["status"] == "ok":
                lines.append(
                    f"- 10^7-entry tensor within 4 GB peak ({m}): {format_bytes(r['peak_rss'])}"
                    f" — {'met' if r['peak_rss'] <= 4e9 else 'NOT met'}"
                )
            else:
                lines.append(f"- 10^7-entry tensor ({m}): {r['status']} — NOT met")
    return lines


def failures(results: list[dict], tensors: dict) -> list[str]:
    """One line per job that did not finish, with the reason."""
    return [
        f"- {METHODS[r['method']]} on {_label(tensors[r['tensor']])}: {r['status']} — "
        f"{r.get('error', '')}".rstrip(" —")
        for r in results
        if r["status"] != "ok"
    ]


def readme_section(rows, summary, notes, info, command, elapsed, tensors, args) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    t = tensors
    w1, s1, n1 = (t["ml100k"][k] for k in ("warmup", "short", "sweeps"))
    w3, s3, n3 = (t["large"][k] for k in ("warmup", "short", "sweeps"))
    huge = (
        f", and with `--huge` {_label(t['huge'])} (skhyperlearn and GenTen only)"
        if "huge" in t
        else ""
    )
    return f"""## Plain sparse CP-ALS: skhyperlearn vs GenTen, pyttb, TensorLy (`bench_cp_als.py`)

Exact solver of `HyperLearnDecomposition` with no graphs (`laplacians=None,
loss="hypergraph", solver="als", tol=0`) — plain CP-ALS where absent cells count as zeros —
against Sandia's GenTen (`pygenten.cp_als` on a `pygenten.Sptensor`, C++/Kokkos with OpenMP,
`OMP_PROC_BIND=false`), pyttb `cp_als` on a `pyttb.sptensor`, TensorLy `parafac` on the dense
array and on its sparse backend, and a floor measured in the same run. Reproduce with

    {command}

({elapsed / 60:.0f} min on {info["cores"]} cores, {info["cpu"]}, {info.get("memory", "?")} RAM,
{info["os"]}, Python {info["python"]}; {versions}; torch threads {info["torch_threads"]};
load average before the run {info["load_before"]}. The machine is shared, so timings are noisy.)

{markdown_table(rows, COLUMNS, align={k: "r" for k, _ in COLUMNS[2:]})}

{chr(10).join(summary)}

How it is measured:

- **Tensors.** Same for every method, fixed seed: distinct random coordinates with planted
  block structure (each entry belongs to one of R communities; in every mode its index falls in
  that community's block with probability 0.9), values uniform on [0.5, 1.5). Shapes
  {_label(t["ml100k"])} (the MovieLens-100K shape), {_label(t["sparse20k"])},
  {_label(t["medium"])} and {_label(t["large"])}{huge}.
- **Same start, same steps.** Every method starts from the same uniform [0, 1) factors and
  sweeps the modes in the order 0, 1, 2 (skhyperlearn with `sample_mode=2`, which it solves
  last). Exact ALS steps do not depend on how the columns are scaled, so the methods follow
  the same iterates and their fits after the same number of sweeps should agree to rounding.
- **Per sweep.** Each job first calls the method on a small tensor (imports, JIT, pyttb's
  one-time set-up), then runs {w1} untimed sweeps on the tensor ({w3} on the largest), then
  times calls with `n_short` and `n_long` sweeps ({s1} and {n1} on the first tensor, {s3} and
  {n3} on the largest, fewer for the slowest peers; repeated and interleaved, medians). Per sweep =
  (t(n_long) − t(n_short)) / (n_long − n_short); the "fixed cost per call" is what is left of
  t(n_short): input validation and conversion, sorting the entries, the final clean-up
  (a negative value is the noise of subtracting two medians on a loaded machine).
  Every library is timed through its public call, with no instrumentation inside; skhyperlearn's
  own per-sweep log agrees (see `in_loop_step_s` with `--json`).
- **Fit** = 1 − ‖X − [[A]]‖ / ‖X‖ of each method's final factors after `n_long` sweeps
  ("sw"), computed afterwards for everyone by `skhyperlearn._numerics._kernels.hypergraph_sq_error`
  (over the stored entries only, never densified).
- **Peak RSS** is the peak resident memory of the job's own process (`ru_maxrss`), which
  also holds the input (coordinates and values, as loaded) and the Python runtime. *Peak
  above input* subtracts the resident memory once the input was loaded (so it includes the
  method's libraries); *bytes / stored entry* subtracts the resident memory once the input was
  loaded and the method had run on a tiny tensor (libraries imported, runtimes initialised),
  and divides by the stored entries: what the method needs for this tensor, factors and
  buffers included, over all its timed calls. GenTen is handed the loaded `(nnz, K)` int64
  subscripts and values with `copy=False`, skhyperlearn a `sparse.COO` over the loaded arrays.
  Each job runs under a {args.mem_limit_gb:.0f} GB address-space limit and a timeout; a method that
  cannot run is reported as out of memory or timeout.
- **Floor** = one bare gather–multiply–scatter pass per mode, summed over the K modes, in
  torch with the same thread count: gather the K−1 other factors' rows at the entries,
  multiply, and scatter-add, either with `index_add_` in storage order or (entries pre-sorted
  by the output mode, not timed) with a CSR sparse × dense product; the faster is reported.
  Entries are processed in chunks whose temporaries stay within 64 MiB. It is the work a CP-ALS
  sweep cannot avoid; "time ÷ floor" says how close skhyperlearn's sweep is to it.
- **GenTen** gets the same tensor and the same start (`Ktensor` of unit weights and the same
  factors), `tol=0`, `printitn=0`, `maxiters` sweeps, in its own process with
  `OMP_PROC_BIND=false` and its default OpenMP threads; its fit is computed afterwards like
  everyone's, from its factors with the weights folded into the first.
- TensorLy's sparse backend is given the same dense-numpy initial factors; with its own
  `init='random'` (last row of the first tensor) the factors become `sparse.COO` arrays and
  every sweep is much slower — that row starts elsewhere, so its fit is not comparable.

Jobs that did not finish:

{chr(10).join(notes) or "- none"}
"""


# ---------------------------------------------------------------------------- --pairs
# Every tensor of the table but the 10^8-entry one (a pair of jobs there takes half an hour).
PAIR_TENSORS = ("ml100k", "sparse20k", "medium", "large")
PAIR_METHODS = ("skhyperlearn", "genten")
PAIR_SECTION = "cp_als_pairs"


def pairs_main(args, tensors, keys, workdir, env, limit, command, load_before) -> int:
    """skhyperlearn and GenTen in ``args.pairs`` pairs of jobs per tensor, alternating which
    runs first, so that a burst of load from elsewhere falls on both alike; the per-pair
    ratios and their median are what a single pair of jobs on a shared machine cannot give."""
    started = time.perf_counter()
    summary = []
    try:
        for key in keys:
            spec = tensors[key]
            path = save_tensor(workdir, key, spec)
            print(f"\n== {key}: {_label(spec)}, {args.pairs} pairs", flush=True)
            steps = {m: [] for m in PAIR_METHODS}
            fits = {}
            cache: dict = {}
            for i in range(args.pairs):
                for method in PAIR_METHODS if i % 2 == 0 else PAIR_METHODS[::-1]:
                    res = _run_job(key, method, spec, path, workdir, env, limit, args)
                    if res["status"] == "ok" and method not in fits:
                        fits[method] = fit_of(path, Path(res["factors_file"]), cache)
                        res["fit"] = fits[method]
                    _print_job(res)
                    steps[method].append(res["step_s"] if res["status"] == "ok" else math.nan)
            summary.append(_pair_row(spec, steps, fits))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - started
    info = machine_info(["skhyperlearn", "torch", "numpy", "pygenten"])
    info["load_before"] = " ".join(f"{x:.2f}" for x in load_before)
    print()
    print(text_table(summary, PAIR_COLUMNS))
    print(f"\nTotal time {elapsed / 60:.1f} min; machine: {info}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rows": summary}, indent=1))
    if args.readme:
        section = _pairs_section(summary, info, command, elapsed, args)
        write_readme_section(README, PAIR_SECTION, section, README_HEADER)
        print(f"wrote {README}")
    return 0


PAIR_COLUMNS = [
    ("tensor", "tensor"),
    ("sk", "skhyperlearn per sweep (median)"),
    ("gt", "GenTen per sweep (median)"),
    ("ratios", "sk ÷ GenTen, pair by pair"),
    ("median", "median ratio"),
    ("wins", "pairs with sk ≤ GenTen"),
    ("fits", "fit sk / GenTen"),
]


def _pair_row(spec: dict, steps: dict, fits: dict) -> dict:
    sk, gt = (np.asarray(steps[m], dtype=float) for m in PAIR_METHODS)
    ratios = sk / gt
    done = np.isfinite(ratios)
    fit = " / ".join(f"{fits[m]:.6f}" if m in fits else "-" for m in PAIR_METHODS)
    return {
        "tensor": _label(spec),
        "sk": _ms(float(np.nanmedian(sk))) if np.isfinite(sk).any() else "-",
        "gt": _ms(float(np.nanmedian(gt))) if np.isfinite(gt).any() else "-",
        "ratios": " ".join(f"{r:.2f}" if np.isfinite(r) else "failed" for r in ratios),
        "median": f"{float(np.median(ratios[done])):.2f}×" if done.any() else "-",
        "wins": f"{int((ratios[done] <= 1).sum())} of {int(done.sum())}",
        "fits": fit,
    }


def _pairs_section(rows, info, command, elapsed, args) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    return f"""### skhyperlearn vs GenTen in alternating pairs (`bench_cp_als.py --pairs`)

One run of both methods is a coin toss on a shared machine when a sweep takes milliseconds:
the same job's time moves by ±50 % from one minute to the next. Here each tensor is timed in
{args.pairs} pairs of jobs (each job exactly as in the table above: own process, warm-up,
interleaved short and long calls, medians), the order within a pair alternating, and each pair
gives one ratio. Reproduce with

    {command}

({elapsed / 60:.0f} min on {info["cores"]} cores, {info["cpu"]}, {info.get("memory", "?")} RAM;
{versions}; load average before the run {info["load_before"]}.)

{markdown_table(rows, PAIR_COLUMNS, align={k: "r" for k, _ in PAIR_COLUMNS[1:]})}
"""


if __name__ == "__main__":
    sys.exit(main())
