"""Implicit-feedback ALS on a matrix (K = 2): skhyperlearn's ``loss="implicit"`` against
``implicit``'s ``AlternatingLeastSquares`` (CPU, conjugate gradient and Cholesky).

Both fit the same objective from the same start, with the same rank, confidence and
regularization, and the objective reached after n iterations is computed afterwards by ONE
formula (float64, over the stored entries only) on both sets of factors:

``J(U, V) = Σ_all (p − UVᵀ)² + Σ_stored c·x (1 − UVᵀ)² + reg (‖U‖² + ‖V‖²)``

(``p`` = 1 on a stored entry). The mapping of the parameters: implicit weighs a stored cell by
the value it is given (times its ``alpha``) and an absent cell by 1, with target 1 on stored
cells; it is given ``1 + c·x`` with ``alpha=1``. skhyperlearn's J is
``λ·data/(1 + c) + α(‖U‖² + ‖V‖²)``, so with ``lam=1`` and ``factor_scale="free"`` (no
normalization between modes) it is ``J/(1 + c)`` when ``α = reg/(1 + c)``: the same minimisers,
and the same sequence of subproblems (users then items: ``sample_mode=1``). The defaults
``alpha=0.03`` and ``confidence="auto"`` (resolved on the matrix) fix ``c`` and
``reg = 0.03·(1 + c)``. Start: implicit's own initialisation, ``U(0, 0.01)`` entries, float32.

Time per iteration: skhyperlearn's callback ``time`` (the sweep and J) and implicit's callback
``elapsed`` (the sweep), median over the iterations and the pairs; the methods run in
alternating order pair after pair in one process, 2 threads each (``torch.set_num_threads``,
``implicit``'s ``num_threads``; ``OPENBLAS_NUM_THREADS=1``, set here before numpy loads).

    python benchmarks/bench_implicit.py                  # Last.fm and Zipf 5·10^5, README
    python benchmarks/bench_implicit.py --quick          # small, prints only
    python benchmarks/bench_implicit.py --zipf 20000x10000x500000,200000x100000x5000000
    python benchmarks/bench_implicit.py --three-way      # 10^7-entry 3-way tensor, README

``--three-way``: the default loss (``mode_solve="cg"`` and ``"exact"``) against plain CP
(``loss="hypergraph"``) on a 100000 × 50000 × 1000 tensor of 10^7 random entries, R = 32,
three sweeps with the defaults otherwise: fit time and peak memory above the input, each fit
in its own process (the child of ``benchmarks/memory.py``), in alternating order.

Last.fm: ``user_artists.dat`` of hetrec2011-lastfm-2k (1892 users × 17632 artists, 92834 play
counts), values ``log(1 + plays)``; skipped when absent. Zipf: users uniform, items drawn with
probability ∝ 1/(i + 1), duplicates dropped, binary values.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    format_bytes,
    machine_info,
    markdown_table,
    run_child,
    text_table,
    write_readme_section,
)

THREADS = 2
LASTFM = Path(
    os.environ.get("SKHYPERLEARN_DATA", "/work/shared/data"),
    "hetrec2011-lastfm-2k",
    "user_artists.dat",
)
METHODS = ("skhyperlearn cg", "skhyperlearn exact", "implicit cg", "implicit cholesky")


def lastfm() -> sp.csr_matrix | None:
    if not LASTFM.exists():
        return None
    table = np.loadtxt(LASTFM, skiprows=1, dtype=np.int64)
    users, u = np.unique(table[:, 0], return_inverse=True)
    artists, a = np.unique(table[:, 1], return_inverse=True)
    values = np.log1p(table[:, 2]).astype(np.float32)
    return sp.csr_matrix((values, (u, a)), shape=(users.size, artists.size))


def zipf(n_users: int, n_items: int, nnz: int, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1)
    p /= p.sum()
    keys = np.empty(0, dtype=np.int64)
    while keys.size < nnz:
        draw = 2 * (nnz - keys.size)
        new = rng.integers(0, n_users, draw) * n_items + rng.choice(n_items, draw, p=p)
        keys = np.unique(np.concatenate([keys, new]))
    keys = rng.permutation(keys)[:nnz]
    ones = np.ones(nnz, dtype=np.float32)
    return sp.csr_matrix((ones, (keys // n_items, keys % n_items)), shape=(n_users, n_items))


def objective(x: sp.csr_matrix, u: np.ndarray, v: np.ndarray, c: float, reg: float) -> float:
    """The one formula of the module docstring, in float64 over the stored entries."""
    from skhyperlearn._numerics._kernels import SparseTensorData, implicit_sq_error

    coo = x.tocoo()
    coords = np.stack([coo.row, coo.col], 1)
    data = SparseTensorData.from_numpy(coords, coo.data.astype(np.float64), x.shape)
    factors = [torch.as_tensor(u, dtype=torch.float64), torch.as_tensor(v, dtype=torch.float64)]
    ridge = float((u.astype(np.float64) ** 2).sum() + (v.astype(np.float64) ** 2).sum())
    return implicit_sq_error(data, factors, c) + reg * ridge


def run_skhyperlearn(x, start, rank, c, alpha, n_iter, mode_solve):
    import sparse

    from skhyperlearn import HyperLearnDecomposition

    times, last = [], {}

    def callback(info):
        times.append(info["time"])
        last["factors"] = [a.detach().numpy().copy() for a in info["factors"]]

    coo = x.tocoo()
    tensor = sparse.COO(np.stack([coo.row, coo.col]), coo.data, shape=x.shape)
    model = HyperLearnDecomposition(
        rank, lam=1.0, loss="implicit", confidence=c, alpha=alpha, factor_scale="free",
        init=[a.copy() for a in start], max_iter=n_iter, tol=0, sample_mode=1,
        mode_solve=mode_solve, callback=callback,
    )  # fmt: skip
    model.fit(tensor)
    return times, last["factors"]


def run_implicit(x, start, rank, c, reg, n_iter, use_cg):
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(
        factors=rank, regularization=reg, alpha=1.0, iterations=n_iter, use_cg=use_cg,
        num_threads=THREADS, calculate_training_loss=False, random_state=0,
    )  # fmt: skip
    model.user_factors, model.item_factors = start[0].copy(), start[1].copy()
    confidence = x.copy()
    confidence.data = 1.0 + c * confidence.data
    times = []
    model.fit(
        confidence, show_progress=False, callback=lambda it, elapsed, loss: times.append(elapsed)
    )
    return times, [model.user_factors, model.item_factors]


def run(method, x, start, rank, c, alpha, n_iter):
    reg = alpha * (1.0 + c)
    if method.startswith("skhyperlearn"):
        return run_skhyperlearn(x, start, rank, c, alpha, n_iter, method.split()[1])
    return run_implicit(x, start, rank, c, reg, n_iter, method == "implicit cg")


def compare(name, x, rank, n_iter, pairs, methods=METHODS, alpha=0.03):
    from skhyperlearn.solvers.losses import get_loss

    c = float(get_loss("implicit").for_data(x.shape, x.nnz).confidence)
    rng = np.random.default_rng(0)
    start = [(rng.random((n, rank), dtype=np.float32) * 0.01) for n in x.shape]
    times = {m: [] for m in methods}
    finals = {}
    for p in range(pairs):
        for m in methods if p % 2 == 0 else methods[::-1]:
            t, factors = run(m, x, start, rank, c, alpha, n_iter)
            times[m] += t
            finals[m] = factors
    reg = alpha * (1.0 + c)
    js = {m: objective(x, *finals[m], c, reg) for m in methods}
    base = statistics.median(times["implicit cg"]) if "implicit cg" in times else None
    rows = []
    for m in methods:
        med = statistics.median(times[m])
        rows.append({
            "matrix": name, "method": m, "s_per_iter": f"{med:.3f}",
            "ratio": "-" if base is None else f"{med / base:.2f}",
            "J": f"{js[m]:.8g}", "J_rel": f"{js[m] / min(js.values()):.4f}",
        })  # fmt: skip
    info = f"{x.shape[0]}×{x.shape[1]}, {x.nnz} entries, R={rank}, c={c:.3g}, reg={reg:.3g}"
    return rows, info


COLUMNS = [
    ("matrix", "matrix"),
    ("method", "method"),
    ("s_per_iter", "s / iteration"),
    ("ratio", "× implicit cg"),
    ("J", "J after n iterations"),
    ("J_rel", "J / lowest J"),
]


def _warm_up():
    x = zipf(200, 100, 2000, seed=1)
    for m in METHODS:
        run(m, x, [np.full((n, 4), 0.01, np.float32) for n in x.shape], 4, 1.0, 0.03, 2)


THREE_WAY = {
    "default (projection terms, mode_solve='cg')": {},
    "tensor term (projection_weight=0, mode_solve='cg')": {"projection_weight": 0.0},
    "loss='implicit', mode_solve='exact'": {"mode_solve": "exact", "projection_weight": 0.0},
    "plain CP (loss='hypergraph')": {"loss": "hypergraph"},
}


def three_way(shape, nnz, rank, pairs, names=tuple(THREE_WAY)):
    """Fit time and memory above the input of the default loss and plain CP, one process each,
    on binary hyperedges (presence: ``loss="auto"`` resolves to the implicit loss there)."""
    import json

    script = str(Path(__file__).with_name("memory.py"))
    names = list(names)
    results = {name: [] for name in names}
    for p in range(pairs):
        for name in names if p % 2 == 0 else names[::-1]:
            params = {"solver": "als", "max_iter": 3, "tol": 0.0, **THREE_WAY[name]}
            config = {"name": name, "shape": shape, "nnz": nnz, "rank": rank, "params": params}
            config["binary"] = True
            res = run_child([sys.executable, script, "--child", json.dumps(config)], timeout_s=1800)
            if not res.ok:
                print(name, res.status, res.error_line(), flush=True)
                continue
            r = res.result
            above = r["measured"] if r["measured"] is not None else r["polled"]
            results[name].append((r["fit_s"], above, r["peak_after"]))
            print(name, f"{r['fit_s']:.1f} s, {format_bytes(above)} above the input", flush=True)
    base = results["plain CP (loss='hypergraph')"]
    t0 = statistics.median(t for t, _, _ in base) if base else None
    m0 = statistics.median(m for _, m, _ in base) if base else None
    rows = []
    for name, runs in results.items():
        if not runs:
            rows.append({"method": name, "time": "failed"})
            continue
        t = statistics.median(x for x, _, _ in runs)
        m = statistics.median(x for _, x, _ in runs)
        peak = statistics.median(x for _, _, x in runs)
        rows.append({
            "method": name, "time": f"{t:.1f} s", "time_ratio": f"{t / t0:.2f}" if t0 else "-",
            "mem": format_bytes(m), "mem_ratio": f"{m / m0:.2f}" if m0 else "-",
            "peak": format_bytes(peak),
        })  # fmt: skip
    return rows


THREE_WAY_COLUMNS = [
    ("method", "fit (3 sweeps incl. set-up and fold-in)"),
    ("time", "time"),
    ("time_ratio", "× plain CP"),
    ("mem", "peak memory above the input"),
    ("mem_ratio", "× plain CP"),
    ("peak", "whole-process peak"),
]


def _three_way_main(args) -> None:
    shape = [int(n) for n in args.three_way_shape.split("x")]
    nnz = int(float(args.three_way_nnz))
    if args.quick:
        shape, nnz = [2_000, 1_000, 100], 100_000
    names = [n for n in THREE_WAY if not (args.no_exact and "exact" in n)]
    rows = three_way(shape, nnz, 32, args.pairs, names)
    print(text_table(rows, THREE_WAY_COLUMNS), flush=True)
    if args.quick:
        return
    mi = machine_info(["torch", "numba"])
    content = "\n".join([
        "### The default loss against plain CP on a 3-way tensor (`bench_implicit.py --three-way`)",
        "",
        f"{'×'.join(map(str, shape))}, {nnz:.0e} random binary entries, R = 32, "
        f"3 sweeps, defaults otherwise; median of {args.pairs} runs in alternating order, one "
        f"process each, {THREADS} threads; {mi.get('cpu')}, {mi.get('cores')} cores (shared).",
        "", markdown_table(rows, THREE_WAY_COLUMNS, {"time": "r", "mem": "r"}),
    ])  # fmt: skip
    write_readme_section(args.readme, "implicit-3way", content, "# Benchmarks")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--zipf", default="20000x10000x500000")
    parser.add_argument("--no-lastfm", action="store_true")
    parser.add_argument(
        "--methods", default=",".join(METHODS), help=f"comma-separated, from: {', '.join(METHODS)}"
    )
    parser.add_argument("--three-way", action="store_true")
    parser.add_argument("--three-way-shape", default="100000x50000x1000")
    parser.add_argument("--three-way-nnz", default="1e7")
    parser.add_argument(
        "--no-exact", action="store_true", help="--three-way without mode_solve='exact'"
    )
    parser.add_argument("--readme", default=str(Path(__file__).with_name("README.md")))
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    if args.three_way:
        _three_way_main(args)
        return
    _warm_up()
    rank, n_iter, pairs = args.rank, args.iterations, args.pairs
    jobs = []
    if not args.no_lastfm and (x := lastfm()) is not None:
        jobs.append(("Last.fm user × artist", x))
    for spec in [] if args.quick else args.zipf.split(","):
        n_u, n_i, nnz = (int(float(s)) for s in spec.split("x"))
        jobs.append((f"Zipf {n_u}×{n_i}", zipf(n_u, n_i, nnz)))
    if args.quick:
        rank, n_iter, pairs = 8, 3, 1
        jobs.append(("Zipf 2000×1000", zipf(2000, 1000, 20000)))
    rows, infos = [], []
    for name, x in jobs:
        tic = time.perf_counter()
        r, info = compare(name, x, rank, n_iter, pairs, tuple(args.methods.split(",")))
        rows += r
        infos.append(f"- {name}: {info} ({time.perf_counter() - tic:.0f} s for the comparison)")
        print(text_table(r, COLUMNS), "\n", infos[-1], flush=True)
    if args.quick:
        return
    mi = machine_info(["torch", "numba", "implicit"])
    content = "\n".join([
        "## Implicit-feedback ALS on a matrix: skhyperlearn vs implicit (`bench_implicit.py`)",
        "",
        "`loss=\"implicit\"` with `mode_solve=\"cg\"` (the default: a few warm-started CG steps "
        "per row and sweep, no per-row Gram) and `\"exact\"` (per-row Grams) against "
        "`implicit.cpu.als.AlternatingLeastSquares` with CG (`use_cg=True`, 3 steps, its "
        "default) and Cholesky, same rank, confidence and regularization (implicit is given "
        "`1 + c·x` with `alpha=1` and `regularization = α(1 + c)`; skhyperlearn runs with "
        "`lam=1`, `factor_scale=\"free\"`), from the same start (implicit's: U(0, 0.01), "
        "float32). J is one formula evaluated afterwards on both sets of factors: "
        "`Σ_all (p − UVᵀ)² + Σ_stored c·x (1 − UVᵀ)² + reg (‖U‖² + ‖V‖²)`. Time per "
        "iteration: median over the iterations and pairs (skhyperlearn's includes J).",
        "",
        f"{n_iter} iterations from the same start, {pairs} alternating pairs, {THREADS} "
        f"threads; {mi.get('cpu')}, {mi.get('cores')} cores (shared, loaded).",
        "", markdown_table(rows, COLUMNS, {"s_per_iter": "r", "ratio": "r", "J": "r"}),
        "", *infos, "",
        "Reproduce: `OPENBLAS_NUM_THREADS=1 python benchmarks/bench_implicit.py` "
        "(`--quick` for a smoke test, `--zipf N_UxN_IxNNZ,...` for other sizes).",
    ])  # fmt: skip
    write_readme_section(args.readme, "implicit", content, "# Benchmarks")


if __name__ == "__main__":
    main()
