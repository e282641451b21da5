"""GPU check of both solvers, prepared to run in one call on a machine with CUDA.

(a) Agreement: the same small planted problem in float32, fitted with ``devices=None`` (CPU),
    ``devices="cuda:0"`` and a per-mode device list (one GPU per mode when there are enough,
    else ``["cuda:0"] * K``), for ``solver="als"`` and ``solver="hyperlearn"`` and both losses.
    Reports the largest difference of J (every round) and of the factors, and fails when they
    exceed the float32 tolerances below.
(b) ML-100K (Monti's split, 943 × 1682, 80,000 training ratings, 10-NN user and movie graphs):
    time per round of ``solver="hyperlearn"`` (Monti's sizes) and per sweep of ``solver="als"``.
(c) A 10^7-entry synthetic 3-mode tensor: time per sweep / round and peak device memory.
(d) The distributed schedule over NCCL with one process (gloo with ``--device cpu``): a
    one-rank process group on 127.0.0.1, ``schedule="distributed"`` against
    ``schedule="parallel"`` on the same device (same tolerances as (a)), time per round and
    bytes broadcast per round. Several GPUs: ``torchrun --nproc-per-node K -m
    skhyperlearn.distributed --backend nccl ...``.

Times are the wall time between consecutive callbacks with ``torch.cuda.synchronize()`` at both
ends (so kernels still queued are counted), median over the rounds after a warm-up.

    python benchmarks/gpu_check.py --out gpu_check.txt                 # on a CUDA machine
    python benchmarks/gpu_check.py --device cpu --quick --out /tmp/x   # CPU smoke test

Tolerances (float32, unit round-off u ≈ 6e-8): CPU and CUDA sum the stored entries in
different orders (CUDA's scatter-add is atomic and unordered), so every pass over the data
differs by ~u·√n relative, and the exact solver's CG and the Adam steps carry those differences
forward. Over the few sweeps / rounds run here this stays orders of magnitude below the bounds,
while a real device bug (wrong index, missing term, data left on the wrong device) changes J by
far more than 1e-3:

- J (every entry of ``loss_history_``): relative difference ≤ 1e-3;
- factors: ``max |A_cpu − A_dev| / max |A_cpu|`` ≤ 1e-2 per mode (the factors are less well
  determined than J: flat directions of J let small differences move them further).
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import sparse
import torch

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import load_monti_movielens, make_hypergraph
from skhyperlearn.graphs import normalized_laplacian

HERE = Path(__file__).resolve().parent
DEFAULT_MOVIELENS = HERE.parent.parent / "shared" / "data" / "mgcnn" / "movielens" / "split_1.mat"
J_RTOL = 1e-3
FACTOR_RTOL = 1e-2
# Monti's ML-100K block: R = 10, p = 4 (5 terms), q = 32, T = 10, Adam lr 1e-3.
MONTI = {"rank": 10, "n_terms": 5, "hidden": 32, "n_steps": 10, "learning_rate": 1e-3}


class Report:
    """Prints lines and keeps them for the ``--out`` file."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def table(self, rows: list[dict], columns: list[tuple[str, str]]) -> None:
        cells = [[str(r.get(k, "")) for k, _ in columns] for r in rows]
        widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h) in enumerate(columns)]
        self("  ".join(h.ljust(w) for (_, h), w in zip(columns, widths, strict=True)))
        self("  ".join("-" * w for w in widths))
        for c in cells:
            self("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class RoundTimer:
    """Callback: synchronized wall time between consecutive rounds (and the solver's own time)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.wall: list[float] = []
        self.inner: list[float] = []
        self.last = None

    def start(self) -> None:
        synchronize(self.device)
        self.last = time.perf_counter()

    def __call__(self, info: dict) -> None:
        synchronize(self.device)
        now = time.perf_counter()
        self.wall.append(now - self.last)
        self.inner.append(info["time"])
        self.last = now

    def median(self, warmup: int) -> float:
        timed = self.wall[warmup:] or self.wall
        return statistics.median(timed)


def peak_memory(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.max_memory_allocated() / 1e9:.2f} GB (device)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB (host RSS)"


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


# ----------------------------------------------------------------------------- (a) agreement
def agreement(device: str, quick: bool, log: Report) -> bool:
    order = 3
    data = make_hypergraph((60, 50, 40), rank=4, n_entries=3000, random_state=0)
    real = make_hypergraph(
        (60, 50, 40), rank=4, n_entries=3000, values="real", noise=0.1, random_state=0
    )
    if device.startswith("cuda") and torch.cuda.device_count() >= order:
        per_mode = [f"cuda:{k}" for k in range(order)]
    else:
        per_mode = [device] * order
    placements = [("cpu (devices=None)", None), (device, device), ("per-mode list", per_mode)]
    rows, ok = [], True
    n_iter = 3 if quick else 6
    for loss, bunch in (("hypergraph", data), ("observed", real)):
        tensor = bunch.tensor.astype(np.float32)
        for solver in ("als", "hyperlearn"):
            fits = []
            for _, devices in placements:
                model = HyperLearnDecomposition(
                    rank=4,
                    laplacians=bunch.laplacians,
                    loss=loss,
                    solver=solver,
                    devices=devices,
                    init="exact_sweeps" if solver == "hyperlearn" else "random",
                    init_iter=3,
                    max_iter=n_iter,
                    tol=0.0,
                    n_iter_no_change=n_iter + 1,
                    cg_tol=1e-5,  # float32 cannot resolve CG residuals much below ~1e-6
                    n_terms=3,
                    hidden=16,
                    n_steps=4,
                    learning_rate=1e-3,
                    random_state=0,
                )
                model.fit(tensor)
                fits.append(model)
            ref = fits[0]
            for (name, _), model in zip(placements[1:], fits[1:], strict=True):
                j_ref, j_dev = np.array(ref.loss_history_), np.array(model.loss_history_)
                same_len = j_ref.shape == j_dev.shape
                j_rel = (
                    float(np.max(np.abs(j_ref - j_dev) / np.abs(j_ref))) if same_len else math.inf
                )
                f_abs = max(
                    float(np.max(np.abs(a - b)))
                    for a, b in zip(ref.factors_, model.factors_, strict=True)
                )
                f_rel = max(
                    float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-30))
                    for a, b in zip(ref.factors_, model.factors_, strict=True)
                )
                passed = (
                    same_len
                    and j_rel <= J_RTOL
                    and f_rel <= FACTOR_RTOL
                    and all(f.dtype == np.float32 for f in model.factors_)
                )
                ok &= passed
                rows.append(
                    {
                        "loss": loss,
                        "solver": solver,
                        "devices": name if isinstance(name, str) else str(name),
                        "placed": ",".join(sorted(set(model.devices_))),
                        "J_cpu": f"{j_ref[-1]:.6g}",
                        "J_rel": f"{j_rel:.1e}",
                        "A_abs": f"{f_abs:.1e}",
                        "A_rel": f"{f_rel:.1e}",
                        "ok": "ok" if passed else "FAIL",
                    }
                )
    log(f"(a) CPU vs {device}, float32, {n_iter} sweeps/rounds; tolerances: J rel {J_RTOL:g}, "
        f"factors max|ΔA|/max|A| {FACTOR_RTOL:g}")  # fmt: skip
    log.table(
        rows,
        [
            ("loss", "loss"),
            ("solver", "solver"),
            ("devices", "devices"),
            ("placed", "devices_"),
            ("J_cpu", "J (cpu, last)"),
            ("J_rel", "max rel ΔJ"),
            ("A_abs", "max |ΔA|"),
            ("A_rel", "max|ΔA|/max|A|"),
            ("ok", "check"),
        ],
    )
    return ok


# ----------------------------------------------------------------------------- timing helpers
def time_fit(tensor, laplacians, device, *, solver, loss, warmup, rounds, extra=None) -> dict:
    params = dict(
        rank=MONTI["rank"],
        laplacians=laplacians,
        loss=loss,
        solver=solver,
        devices=device,
        init="random",
        max_iter=warmup + rounds,
        tol=0.0,
        n_iter_no_change=warmup + rounds + 1,
        random_state=0,
    )
    if solver == "hyperlearn":
        params.update({k: v for k, v in MONTI.items() if k != "rank"})
    params.update(extra or {})
    timer = RoundTimer(device)
    model = HyperLearnDecomposition(callback=timer, **params)
    reset_peak(device)
    synchronize(device)
    tic = time.perf_counter()
    timer.start()
    model.fit(tensor)
    synchronize(device)
    total = time.perf_counter() - tic
    return {
        "solver": solver,
        "per_round": f"{timer.median(warmup) * 1e3:.1f} ms",
        "inner": f"{statistics.median(timer.inner[warmup:] or timer.inner) * 1e3:.1f} ms",
        "rounds": len(timer.wall),
        "fit": f"{total:.1f} s",
        "J": f"{model.loss_history_[-1]:.6g}",
        "peak": peak_memory(device),
    }


TIMING_COLUMNS = [
    ("solver", "solver"),
    ("per_round", "per round/sweep (sync'd)"),
    ("inner", "info['time']"),
    ("rounds", "rounds"),
    ("fit", "whole fit"),
    ("J", "J (last)"),
    ("peak", "peak memory"),
]


# ----------------------------------------------------------------------------- (b) ML-100K
def movielens(path: Path, device: str, quick: bool, log: Report) -> None:
    if not path.is_file():
        log(f"(b) ML-100K: skipped, {path} not found (pass --movielens path/to/split_1.mat)")
        return
    ml = load_monti_movielens(path)
    tensor = sparse.COO(
        ml.train_coords.T, ml.train_values.astype(np.float32), shape=ml.shape
    )  # fmt: skip
    laps = [normalized_laplacian(ml.user_adjacency), normalized_laplacian(ml.movie_adjacency)]
    warmup, rounds = (1, 3) if quick else (3, 20)
    rows = [
        time_fit(tensor, laps, device, solver=s, loss="observed", warmup=warmup, rounds=rounds)
        for s in ("hyperlearn", "als")
    ]
    log()
    log(f"(b) ML-100K (Monti split_1, {tensor.nnz:,} training ratings, {ml.shape}), "
        f"loss='observed', float32, rank 10, Monti's block (p=4, q=32, T=10), on {device}; "
        f"median of {rounds} after {warmup} warm-up")  # fmt: skip
    log.table(rows, TIMING_COLUMNS)


# ----------------------------------------------------------------------------- (c) 10^7 entries
def large(device: str, quick: bool, log: Report) -> None:
    if quick:
        shape, n_entries, warmup, rounds = (2000, 1000, 200), 100_000, 1, 2
    else:
        shape, n_entries, warmup, rounds = (20_000, 10_000, 2_000), 10_000_000, 1, 5
    tic = time.perf_counter()
    data = make_hypergraph(shape, rank=10, n_entries=n_entries, values="real", random_state=0)
    tensor = data.tensor.astype(np.float32)
    gen = time.perf_counter() - tic
    rows = [
        time_fit(
            tensor,
            data.laplacians,
            device,
            solver=s,
            loss="hypergraph",
            warmup=warmup,
            rounds=rounds,
            extra={"cg_tol": 1e-5},
        )
        for s in ("als", "hyperlearn")
    ]
    log()
    log(f"(c) synthetic {shape}, {tensor.nnz:,} stored entries, loss='hypergraph', float32, "
        f"rank 10, on {device}; median of {rounds} after {warmup} warm-up "
        f"(data generated in {gen:.0f} s on the host)")  # fmt: skip
    log.table(rows, TIMING_COLUMNS)


# ----------------------------------------------------------------------------- (d) distributed
def distributed(device: str, quick: bool, log: Report) -> bool:
    import datetime
    import os
    import socket

    import torch.distributed as dist

    from skhyperlearn.solvers import _distributed

    backend = "nccl" if device.startswith("cuda") else "gloo"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1")
    if backend == "nccl":
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=120))
    try:
        data = make_hypergraph((600, 500, 400), rank=4, n_entries=30_000, random_state=0)
        tensor = data.tensor.astype(np.float32)
        n_iter = 3 if quick else 6
        fits = {}
        for schedule in ("parallel", "distributed"):
            timer = RoundTimer(device)
            model = HyperLearnDecomposition(
                solver="hyperlearn", max_iter=n_iter, tol=0.0, init_iter=2, devices=device,
                laplacians=data.laplacians, schedule=schedule, random_state=0, callback=timer,
                **MONTI,
            )  # fmt: skip
            before = dict(_distributed.traffic)
            timer.start()
            model.fit(tensor)
            sent = _distributed.traffic["bytes"] - before["bytes"]
            fits[schedule] = (model, timer.median(1), sent / n_iter)
        ref, got = fits["parallel"][0], fits["distributed"][0]
        dj = max(
            abs(a - b) / abs(a) for a, b in zip(ref.loss_history_, got.loss_history_, strict=True)
        )
        df = max(
            np.abs(a - b).max() / np.abs(a).max()
            for a, b in zip(ref.factors_, got.factors_, strict=True)
        )
        ok = dj <= J_RTOL and df <= FACTOR_RTOL
        log()
        log(f"(d) {backend} process group of one rank on {device}: schedule='distributed' vs "
            f"'parallel', (600, 500, 400), 30,000 entries, float32, Monti's block, {n_iter} "
            f"rounds")  # fmt: skip
        log(f"    max relative J difference {dj:.2e} (≤ {J_RTOL:g}), factors {df:.2e} "
            f"(≤ {FACTOR_RTOL:g}): {'ok' if ok else 'FAIL'}")  # fmt: skip
        log(f"    time per round: parallel {fits['parallel'][1]:.4f} s, distributed "
            f"{fits['distributed'][1]:.4f} s; broadcast {fits['distributed'][2]:,.0f} bytes "
            f"per round (Σ N_k·R·4 = {4 * 1500 * MONTI['rank']:,})")  # fmt: skip
        return ok
    finally:
        dist.destroy_process_group()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0", help="cuda:0 (default) or cpu")
    parser.add_argument("--movielens", type=Path, default=DEFAULT_MOVIELENS)
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: a,b,c,d")
    args = parser.parse_args(argv)
    log = Report()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        log(f"CUDA is not available (torch {torch.__version__}): nothing to check on "
            f"{args.device}. Use --device cpu --quick for a CPU smoke test.")  # fmt: skip
        if args.out:
            args.out.write_text("\n".join(log.lines) + "\n")
        return 0
    if args.device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(args.device))
        where = f"{props.name}, {props.total_memory / 2**30:.0f} GiB"
        where += f", {torch.cuda.device_count()} GPU(s), CUDA {torch.version.cuda}"
    else:
        where = f"CPU, {torch.get_num_threads()} intra-op threads"
    log(f"gpu_check on {args.device} ({where}); torch {torch.__version__}")
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    tic = time.perf_counter()
    ok = True
    parts = [
        ("a", lambda: agreement(args.device, args.quick, log)),
        ("b", lambda: movielens(args.movielens, args.device, args.quick, log)),
        ("c", lambda: large(args.device, args.quick, log)),
        ("d", lambda: distributed(args.device, args.quick, log)),
    ]
    for name, part in parts:
        if name in skip:
            continue
        try:
            result = part()
        except Exception as exc:
            traceback.print_exc()
            log(f"({name}) FAILED: {type(exc).__name__}: {exc}")
            result = False
        ok &= result is not False
    log()
    log(f"{'PASS' if ok else 'FAIL'}: agreement within float32 tolerance; "
        f"total {time.perf_counter() - tic:.0f} s")  # fmt: skip
    if args.out:
        args.out.write_text("\n".join(log.lines) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
