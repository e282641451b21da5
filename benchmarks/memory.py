"""Estimated against measured peak memory of a fit (issue #5, resource bounds).

Before training, :class:`~skhyperlearn.HyperLearnDecomposition` estimates the memory the fit
needs (``memory_estimate_``; ``max_memory`` refuses a fit whose estimate exceeds it). This
benchmark checks that estimate against the real peak: each configuration runs in its own child
process, which builds its tensor, records its resident memory just before ``fit`` and its peak
resident memory (``ru_maxrss``) after; the measured figure is the difference. The tensor is
built so that its own construction peaks lower than the fit, so the fit's peak is the one
``ru_maxrss`` sees (a polling thread gives a second reading).

Run ``python benchmarks/memory.py`` (a few minutes); the table goes into
``benchmarks/README.md`` between ``<!-- memory:start -->`` and ``<!-- memory:end -->``.
``--quick`` runs small tensors only (for a smoke test); ``--no-readme`` only prints.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _common import (  # noqa: E402
    child_result,
    format_bytes,
    machine_info,
    markdown_table,
    peak_rss_bytes,
    run_child,
    text_table,
    write_readme_section,
)

# name, shape, stored entries, rank, estimator parameters
CONFIGS = [
    (
        "exact, hypergraph loss",
        (10_000, 5_000, 2_000),
        10_000_000,
        32,
        {"solver": "als", "loss": "hypergraph", "max_iter": 3, "tol": 0.0},
    ),
    (
        "exact, hypergraph loss, max_memory=2GiB",
        (10_000, 5_000, 2_000),
        10_000_000,
        32,
        {"solver": "als", "loss": "hypergraph", "max_iter": 3, "tol": 0.0, "max_memory": "2GiB"},
    ),
    (
        "exact, observed loss + biases",
        (2_000, 1_000, 500),
        1_000_000,
        32,
        {"solver": "als", "loss": "observed", "max_iter": 2, "tol": 0.0},
    ),
    (
        "exact, implicit loss (mode_solve='cg', the default)",
        (2_000, 1_000, 500),
        1_000_000,
        32,
        {"solver": "als", "loss": "implicit", "max_iter": 2, "tol": 0.0},
    ),
    (
        "exact, implicit loss, mode_solve='exact'",
        (2_000, 1_000, 500),
        1_000_000,
        32,
        {"solver": "als", "loss": "implicit", "mode_solve": "exact", "max_iter": 2, "tol": 0.0},
    ),
    (
        "hyperlearn (T=3, q=16), kNN graphs",
        (2_000, 1_000, 500),
        1_000_000,
        16,
        {
            "solver": "hyperlearn",
            "loss": "hypergraph",
            "max_iter": 2,
            "init": "random",
            "n_steps": 3,
            "hidden": 16,
            "n_terms": 3,
            "tol": 0.0,
        },
    ),
]

QUICK = [
    (name, tuple(max(s // 20, 10) for s in shape), nnz // 100, rank, params)
    for name, shape, nnz, rank, params in CONFIGS
]


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _tensor(shape, nnz, seed=0):
    """``nnz`` distinct random cells of ``shape``, in random order, values in (0.5, 1.5)."""
    import numpy as np
    import sparse

    rng = np.random.default_rng(seed)
    cells = int(np.prod(shape, dtype=np.int64))
    linear = np.unique(rng.integers(0, cells, int(nnz * 1.001) + 16))
    rng.shuffle(linear)
    linear = linear[:nnz]
    coords = np.empty((len(shape), linear.shape[0]), dtype=np.int64)
    rest = linear
    for k in range(len(shape) - 1, -1, -1):
        rest, coords[k] = np.divmod(rest, shape[k])
    del linear, rest
    values = rng.random(coords.shape[1]) + 0.5
    # Distinct coordinates in random order: the estimator sorts them itself.
    return sparse.COO(coords, values, shape=shape, has_duplicates=False, sorted=False)


def _knn_laplacians(shape, seed=0):
    import numpy as np

    from skhyperlearn.graphs import knn_graph, normalized_laplacian

    rng = np.random.default_rng(seed)
    return [normalized_laplacian(knn_graph(rng.random((n, 4)), 10)) for n in shape]


def child(config: dict) -> None:
    """One fit, measured; writes its result for the parent (see ``_common.run_child``)."""
    import numpy as np
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    from skhyperlearn import HyperLearnDecomposition

    payload: dict = {"name": config["name"]}
    with child_result(payload):
        shape, nnz, rank, params = (
            tuple(config["shape"]),
            config["nnz"],
            config["rank"],
            dict(config["params"]),
        )
        x = _tensor(shape, nnz)
        if config.get("binary"):
            # Presence (every value 1): what loss="auto" fits with the implicit loss.
            x.data[:] = 1.0
        laplacians = _knn_laplacians(shape) if params["solver"] == "hyperlearn" else None
        model = HyperLearnDecomposition(rank=rank, laplacians=laplacians, random_state=0, **params)
        gc.collect()
        rss_before = _rss()
        peak_before = peak_rss_bytes()
        polled = [rss_before]
        done = threading.Event()

        def poll():
            while not done.is_set():
                polled.append(_rss())
                time.sleep(0.005)

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        tic = time.perf_counter()
        model.fit(x)
        wall = time.perf_counter() - tic
        done.set()
        thread.join()
        peak_after = peak_rss_bytes()
        payload.update(
            shape=list(shape),
            nnz=int(x.nnz),
            rank=rank,
            estimate=int(model.memory_estimate_),
            rss_before=rss_before,
            peak_before=peak_before,
            peak_after=peak_after,
            # ru_maxrss moved during fit: the difference is the fit's exact peak increase.
            exact=peak_after > peak_before,
            measured=int(peak_after - rss_before) if peak_after > peak_before else None,
            polled=int(max(polled) - rss_before),
            fit_s=wall,
            n_iter=int(model.n_iter_),
            finite=bool(all(np.isfinite(a).all() for a in model.factors_)),
        )


def run(configs, *, timeout_s: float, mem_limit: int | None) -> list[dict]:
    rows = []
    for name, shape, nnz, rank, params in configs:
        config = {"name": name, "shape": shape, "nnz": nnz, "rank": rank, "params": params}
        print(f"-- {name}: shape {shape}, {nnz:,} entries, rank {rank}", flush=True)
        res = run_child(
            [sys.executable, __file__, "--child", json.dumps(config)],
            timeout_s=timeout_s,
            mem_limit_bytes=mem_limit,
        )
        r = res.result
        row = {
            "name": name,
            "shape": "×".join(str(s) for s in shape),
            "nnz": f"{nnz:.0e}".replace("e+0", "e"),
            "rank": rank,
            "status": res.status,
            "wall": f"{res.wall_s:.0f} s",
        }
        if res.ok:
            measured = r["measured"] if r["measured"] is not None else r["polled"]
            row.update(
                estimate=format_bytes(r["estimate"]),
                measured=format_bytes(measured),
                polled=format_bytes(r["polled"]),
                ratio=f"{measured / r['estimate']:.2f}",
                within="yes" if measured <= r["estimate"] else "**no**",
                fit=f"{r['fit_s']:.1f} s",
                raw=r,
            )
        else:
            row["error"] = res.error_line()
            print(res.stderr[-2000:], flush=True)
        print(
            "   ",
            {k: v for k, v in row.items() if k not in ("raw", "name")},
            flush=True,
        )
        rows.append(row)
    return rows


COLUMNS = [
    ("name", "configuration"),
    ("shape", "shape"),
    ("nnz", "stored entries"),
    ("rank", "rank"),
    ("estimate", "memory_estimate_"),
    ("measured", "measured peak increase"),
    ("polled", "polled RSS peak increase"),
    ("ratio", "measured / estimate"),
    ("within", "within estimate"),
    ("fit", "fit time"),
]


def section(rows: list[dict], info: dict, quick: bool) -> str:
    lines = [
        "## Memory: estimated against measured peak",
        "",
        "`memory_estimate_` is what `HyperLearnDecomposition` estimates, before any work, for "
        "the fit (one copy of the stored entries with int32 indices, a permutation per mode "
        "but the first, chunk buffers, factors, solver buffers, the largest transient over "
        "the entries); `max_memory` refuses a fit whose estimate exceeds it. *Measured* is the "
        "child process's peak resident memory (`ru_maxrss`) after `fit` minus its resident "
        "memory just before `fit` (the tensor itself is already resident then); *polled* is the "
        "same from a thread sampling RSS every 5 ms. One child process per row "
        "(`python benchmarks/memory.py`).",
        "",
        markdown_table(
            rows,
            COLUMNS,
            align={k: "r" for k in ("nnz", "rank", "estimate", "measured", "polled", "ratio")},
        ),
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info.get('memory', '?')} RAM, "
        f"Python {info['python']}; "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        + (" (quick run: small tensors)" if quick else "")
        + ".",
    ]
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed:
        lines.append(f"\n{r['name']}: {r['status']} — {r.get('error', '')}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small tensors only")
    parser.add_argument("--no-readme", action="store_true", help="print, do not write README")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per fit")
    parser.add_argument("--mem-limit-gb", type=float, default=16.0, help="address-space cap")
    parser.add_argument("--only", default="", help="run the configurations naming this text")
    args = parser.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return
    configs = [c for c in (QUICK if args.quick else CONFIGS) if args.only in c[0]]
    rows = run(configs, timeout_s=args.timeout, mem_limit=int(args.mem_limit_gb * 2**30) or None)
    info = machine_info(["skhyperlearn", "torch", "numpy", "scipy", "sparse"])
    print(text_table(rows, COLUMNS))
    if not args.no_readme:
        write_readme_section(
            HERE / "README.md",
            "memory",
            section(rows, info, args.quick),
            header="# Benchmarks",
        )
        print(f"wrote {HERE / 'README.md'}")


if __name__ == "__main__":
    main()
