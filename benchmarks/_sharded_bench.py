"""Part 3 of ``benchmarks/distributed.py``: the entry-sharded schedule (see its docstring)."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_info, markdown_table, text_table, write_readme_section

from skhyperlearn.datasets import make_hypergraph
from skhyperlearn.distributed._shards import write_shards
from skhyperlearn.hypergraph import Hypergraph

ROOT = Path(__file__).resolve().parents[1]
SHAPE, RANK, ROUNDS, WORLDS, N_SHARDS = (8000, 6000, 4000), 8, 5, (1, 2, 4), 4
# Assumed latency and bandwidth of the links of the projection (not measured).
LINKS = {"10 GbE": (50e-6, 1.1e9), "100 GbE": (10e-6, 11e9)}
AMAZON = dict(sizes=(4_800_000, 1_800_000, 1_800_000), nnz=1_700_000_000)
MIB = 2**20


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(folder: Path, world: int, workdir: Path, warm: bool = False, env: dict | None = None):
    """The fit over ``world`` gloo ranks (``warm``: the runtime baseline, ``--warm``, nothing of
    the data); rank 0's ``--stats``."""
    stats = workdir / f"sharded{world}{'w' if warm else ''}.json"
    params = {"init": "random", "loss": "hypergraph", "max_memory": "unlimited"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(world),
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
        "-m", "skhyperlearn.distributed", *_fit_args(folder, params), "--backend", "gloo",
        "--stats", str(stats), "--timeout", "600", *(["--warm"] if warm else []),
    ]  # fmt: skip
    subprocess.run(cmd, env=_env(env), check=True, capture_output=True, timeout=1800)
    return json.loads(stats.read_text())


def _fit_args(folder: Path, params: dict) -> list[str]:
    return [
        "--data", str(folder), "--solver", "als", "--rank", str(RANK), "--max-iter",
        str(ROUNDS), "--tol", "0", "--params", json.dumps(params),
    ]  # fmt: skip


def _env(extra: dict | None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    return dict(env, **(extra or {}))


def _warm_cache(folder: Path) -> float:
    """``python -m skhyperlearn.distributed --warm`` once, as a user would before launching:
    the ranks then load the compiled kernels instead of compiling them. Its seconds."""
    params = {"init": "random", "loss": "hypergraph", "max_memory": "unlimited"}
    cmd = [sys.executable, "-m", "skhyperlearn.distributed", *_fit_args(folder, params), "--warm"]
    tic = time.perf_counter()
    subprocess.run(cmd, env=_env(None), check=True, capture_output=True, timeout=1800)
    return time.perf_counter() - tic


def _median_part(result: dict, key: str) -> float:
    return statistics.median(r[key] for r in result["round_parts"][1:])


def _mode_collectives(result: dict) -> dict[int, float]:
    """Row-block collectives per mode per round (median over rounds 2 on), from rank 0."""
    rounds = result["round_parts"][1:]
    modes = sorted({int(k) for r in rounds for k in r["mode_collectives"]})
    return {
        k: statistics.median(r["mode_collectives"].get(str(k), 0) for r in rounds) for k in modes
    }


def _row_bytes(sizes, rank: int, world: int, counts: dict[int, float]) -> float:
    """The row blocks' bytes per round: each collective of mode k moves W·⌈N_k/W⌉ rows of R."""
    return sum(8 * rank * world * -(-n // world) * counts[k] for k, n in enumerate(sizes))


def _comm(world: int, collectives: float, row_bytes: float, reduced: float, link) -> float:
    """Every collective's latency and the bytes' time: a ring reduce_scatter or all_gather
    sends (W − 1)/W of its buffer per rank, an all_reduce twice that. ``link``: (α, β) of W
    ranks, α measured as one small collective of W ranks (or assumed per tree step)."""
    if world == 1:
        return 0.0
    alpha, beta = link
    return collectives * alpha + (world - 1) / world * (row_bytes + 2 * reduced) / beta


def _link(world: int, workdir: Path) -> tuple[float, float]:
    """The loopback's (α, β) between ``world`` gloo ranks on this machine (``_gloo_link.py``)."""
    out = workdir / f"link{world}.json"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(world),
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
        str(ROOT / "benchmarks" / "_gloo_link.py"), str(out),
    ]  # fmt: skip
    subprocess.run(cmd, env=_env(None), check=True, capture_output=True, timeout=600)
    got = json.loads(out.read_text())
    return got["alpha"], got["beta"]


def _rows(
    results: dict, nnz: int, base: dict, kernels: str, links: dict
) -> tuple[list[dict], dict]:
    """The measured rows beside the model, and the fitted constants; ``base[W]`` is the peak
    RSS of the same command with ``--warm`` over W ranks (the runtime: imports, the process
    group, the fit's code run once on 8 entries, compiled kernels loaded; nothing of the data)."""
    peak = {w: max(r["peak_rss"]) for w, r in results.items()}
    imports = {w: max(r["import_rss"]) for w, r in results.items()}
    raw = {w: peak[w] - imports[w] for w in results}
    above = {w: peak[w] - base[w] for w in results}
    # Memory: above(W) = m_f + m_e·nnz/W, fitted on W = 1 and 2, predicted for the others.
    m_e = 2 * (above[1] - above[2]) / nnz
    m_f = above[1] - m_e * nnz
    t1 = statistics.median(results[1]["round_times"][1:])
    p = _median_part(results[1], "pass_seconds")
    s = t1 - p - _median_part(results[1], "reduce_seconds")
    # The CG steps (so the collectives) per mode do not depend on W: counted at W = 1.
    counts = _mode_collectives(results[1])
    n_coll = _median_part(results[1], "collectives")
    split = bool(counts)
    rows = []
    for w, r in results.items():
        t = statistics.median(r["round_times"][1:])
        # Split: the row blocks, (P + S)/W. Replicated: one N_k × R all_reduce per mode, S.
        row_model = _row_bytes(SHAPE, RANK, w, counts) if split else 0.0
        reduced = 0.0 if split else 8.0 * RANK * sum(SHAPE)
        comm = _comm(w, n_coll, row_model, reduced, links.get(w))
        model_t = (p + s) / w + comm if split else p / w + s + comm
        rows.append(dict(
            W=w, kernels=kernels, nnz=f"{max(r['nnz_per_rank']):,}",
            imports=f"{imports[w] / MIB:.0f}", base=f"{base[w] / MIB:.0f}",
            peak=f"{peak[w] / MIB:.0f}", raw=f"{raw[w] / MIB:.0f}",
            raw_ratio=f"{raw[1] / raw[w]:.2f}", above=f"{above[w] / MIB:.0f}",
            ratio=f"{above[1] / above[w]:.2f}", model_mem=f"{(m_f + m_e * nnz / w) / MIB:.0f}",
            time=f"{t:.3f}", pass_=f"{_median_part(r, 'pass_seconds'):.3f}",
            model_p=f"{p / w:.3f}", reduce=f"{_median_part(r, 'reduce_seconds'):.3f}",
            model_t=f"{model_t:.3f}", model_c=f"{comm:.3f}",
            colls=f"{_median_part(r, 'collectives'):.0f}",
            bytes=f"{_median_part(r, 'bytes'):,.0f}", rowb=f"{_median_part(r, 'row_bytes'):,.0f}",
            model_b=f"{row_model + reduced:,.0f}",
        ))  # fmt: skip
    consts = dict(m_e=m_e, m_f=m_f, p=p, s=s, t1=t1, nnz=nnz, counts=counts, n_coll=n_coll)
    return rows, consts


COLUMNS = [
    ("W", "gloo ranks W"),
    ("kernels", "ranks run with"),
    ("nnz", "entries per rank"),
    ("imports", "RSS after imports (MiB)"),
    ("base", "runtime baseline: --warm, same W (MiB)"),
    ("peak", "peak RSS (MiB, largest rank)"),
    ("raw", "peak − imports (MiB)"),
    ("raw_ratio", "(W=1) / (W), above imports"),
    ("above", "peak − baseline (MiB)"),
    ("ratio", "(W=1) / (W), above baseline"),
    ("model_mem", "model m_f + m_e·nnz/W (MiB)"),
    ("time", "s/round (median)"),
    ("pass_", "of which entry passes (s)"),
    ("model_p", "model P/W (s)"),
    ("reduce", "of which collectives (s)"),
    ("model_t", "model: (P + S)/W split, P/W + S replicated, + comm (s)"),
    ("colls", "collectives per round"),
    ("bytes", "bytes per round (per rank, median)"),
    ("rowb", "of which row blocks"),
    ("model_b", "model: 8·R·Σ c_k·W⌈N_k/W⌉ split, 8·R·Σ N_k replicated"),
]


def _project(c: dict, split: dict, rank: int = 16) -> list[dict]:
    """Amazon reviews on 16 and 64 ranks with the constants measured here (``split``: those of
    the run with every solve split, for its collectives per mode)."""
    sizes, nnz = AMAZON["sizes"], AMAZON["nnz"]
    # The pass scales with entries (per entry and mode as measured); the rest with Σ N_k·R
    # (a CG step on a kNN graph's Laplacian, the same number of steps assumed), from S here.
    p_entry = c["p"] / c["nnz"]
    s_all = c["s"] / (sum(SHAPE) * RANK) * sum(sizes) * rank
    # Counted, not measured: the factors, the mode's MTTKRP and CG vectors (8·max N_k·R).
    fixed = 8 * rank * (sum(sizes) + 8 * max(sizes))
    # Each mode's collectives per round as counted here for the same mode (the same CG steps).
    counts = {k: split["counts"][min(k, len(SHAPE) - 1)] for k in range(len(sizes))}
    reduced = 8 * rank * sum(sizes)
    rows = []
    for w in (16, 64):
        nbytes = _row_bytes(sizes, rank, w, counts)
        row = dict(
            W=w, entries=f"{nnz / w / 1e6:.0f} M",
            mem=f"{(c['m_e'] * nnz / w + fixed) / 2**30:.1f}",
            pass_=f"{p_entry * nnz / w:.1f}", rest=f"{s_all:.1f}", split=f"{s_all / w:.1f}",
            reduced=f"{reduced / 1e9:.2f} GB", bytes=f"{nbytes / 1e9:.0f} GB",
        )  # fmt: skip
        for link, (alpha, beta) in LINKS.items():
            # An assumed link's α per step of a tree of ⌈log₂W⌉.
            tree = alpha * math.ceil(math.log2(w))
            row["r " + link] = f"{_comm(w, c['n_coll'], 0.0, reduced, (tree, beta)):.1f}"
            row["s " + link] = f"{_comm(w, split['n_coll'], nbytes, 0.0, (tree, beta)):.1f}"
        rows.append(row)
    return rows


PROJECT_COLUMNS = [
    ("W", "ranks"),
    ("entries", "entries per rank"),
    ("mem", "memory above the runtime baseline per rank (GiB)"),
    ("pass_", "P/W (s)"),
    ("rest", "S, solves replicated (s)"),
    ("reduced", "replicated: all-reduced per round"),
    *[("r " + link, f"replicated: collectives on {link} (s)") for link in LINKS],
    ("split", "S/W, solves split (s)"),
    ("bytes", "split: row blocks per round"),
    *[("s " + link, f"split: collectives on {link} (s)") for link in LINKS],
]


#: How the ranks run: numba's compiled passes (the default); the same with glibc's mmap
#: threshold fixed (freed large buffers go back to the system at once, instead of the dynamic
#: threshold's history deciding whether a large allocation reuses freed memory); torch's kernels.
KERNELS = {
    "numba": None,
    "numba, MALLOC_MMAP_THRESHOLD_": {"MALLOC_MMAP_THRESHOLD_": "131072"},
    "torch": {"SKHYPERLEARN_NO_NUMBA": "1"},
    # Every mode's solve over the ranks' row blocks (at this size the default solves these
    # graph-coupled modes whole on every rank).
    "numba, solves split": {"SKHYPERLEARN_SPLIT_SOLVES": "all"},
}


def _measure(folder: Path, workdir: Path, env: dict | None) -> tuple[dict, dict]:
    results, base = {}, {}
    for w in WORLDS:
        base[w] = max(_run(folder, w, workdir, warm=True, env=env)["peak_rss"])
        results[w] = _run(folder, w, workdir, env=env)
        print(f"W={w}: baseline {base[w]}, peak {results[w]['peak_rss']}", flush=True)
    return results, base


def run_sharded(n_entries: int, no_readme: bool) -> None:
    load0 = os.getloadavg()
    tic = time.perf_counter()
    data = make_hypergraph(SHAPE, rank=4, n_entries=n_entries, random_state=0)
    X = Hypergraph(data.tensor, data.laplacians)
    nnz = X.tensor.nnz
    rows, consts = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_shards(X, Path(tmp) / "shards", N_SHARDS)
        del X, data
        warm_seconds = _warm_cache(folder)
        links = {w: _link(w, Path(tmp)) for w in WORLDS if w > 1}
        for kernels, env in KERNELS.items():
            results, base = _measure(folder, Path(tmp), env)
            got, consts[kernels] = _rows(results, nnz, base, kernels, links)
            rows += got
    c = consts["numba"]
    print(text_table(rows, COLUMNS))
    proj = _project(c, consts["numba, solves split"])
    print(text_table(proj, PROJECT_COLUMNS))
    load1 = os.getloadavg()
    info = machine_info(["torch"])
    print(f"{info}; {time.perf_counter() - tic:.0f} s; load {load0} -> {load1}; constants {consts}")
    print(f"links (alpha s, beta B/s) by W: {links}")
    if not no_readme:
        _readme(rows, proj, consts, info, (load0, load1), nnz, warm_seconds, links)


def _round_total(row: dict, solves: str, comm: str) -> str:
    """A projected round: the pass, the solves (``solves``: replicated or split) and ``comm``."""
    return f"{float(row['pass_']) + float(row[solves]) + float(row[comm]):.1f}"


def _verdict(rows, key: str) -> str:
    """Whether ``key``'s ratios (W=1)/(W) are W within 20 %, for W = 2 and 4."""
    got = {r["W"]: float(r[key]) for r in rows if r["W"] != 1}
    ok = all(0.8 * w <= v <= 1.2 * w for w, v in got.items())
    return ("within" if ok else "not within") + " 20 % of W (" + ", ".join(
        f"W={w}: {v:.2f}" for w, v in got.items()
    ) + ")"  # fmt: skip


def _readme(rows, proj, consts, info, loads, nnz, warm_seconds, links) -> None:
    right = {k: "r" for k, _ in COLUMNS if k != "kernels"}
    c = consts["numba"]
    numba = [r for r in rows if r["kernels"] == "numba"]
    split = [r for r in rows if r["kernels"] == "numba, solves split"]
    cs = consts["numba, solves split"]
    steps = ", ".join(f"{cs['counts'][k]:.0f}" for k in sorted(cs["counts"]))
    link_text = "; ".join(
        f"W = {w}: α = {a * 1e3:.2f} ms, β = {b / 1e9:.2f} GB/s" for w, (a, b) in links.items()
    )
    fixed = [r for r in rows if r["kernels"] == "numba, MALLOC_MMAP_THRESHOLD_"]
    torch_rows = [r for r in rows if r["kernels"] == "torch"]
    text = f"""## The sharded schedule: stored entries over the ranks (`distributed.py --sharded`)

`python benchmarks/distributed.py --sharded` — one synthetic binary hypergraph
{" × ".join(map(str, SHAPE))} with {nnz:,} stored entries and graphs on every mode (float64,
`loss="hypergraph"`, `solver="als"`, rank {RANK}, `init="random"`), written once as
{N_SHARDS} shards (`skhyperlearn.distributed.write_shards`) and fitted by W gloo ranks on this
machine, each reading only its own shards (`torchrun --nproc-per-node W -m
skhyperlearn.distributed --data DIR`), {ROUNDS} rounds; time per round is the median over rounds
2–{ROUNDS}. Before any rank starts, `python -m skhyperlearn.distributed --data DIR ... --warm`
puts the compiled kernels in numba's cache ({warm_seconds:.0f} s here), so the ranks load them
instead of compiling. Machine: {info["cpu"]}, {info["cores"]} cores, shared with other jobs
(load average {loads[0][0]:.2f} before, {loads[1][0]:.2f} after); one intra-op thread per
rank. The rows "numba, MALLOC_MMAP_THRESHOLD_" run the same with
`MALLOC_MMAP_THRESHOLD_=131072` in the ranks' environment (glibc's threshold fixed: a freed
large buffer goes back to the system at once, where the default, dynamic threshold lets the
history of frees decide whether a later large allocation reuses memory or adds to the RSS);
the rows "torch" with `SKHYPERLEARN_NO_NUMBA=1` (torch's kernels, no numba runtime in the
ranks); the rows "numba, solves split" with `SKHYPERLEARN_SPLIT_SOLVES=all`: every mode's solve
over the ranks' blocks of its rows (by default, at this size, N_k·R below 2^20, these
graph-coupled solves are repeated whole on every rank: the other rows).

{markdown_table(rows, COLUMNS, right)}

Two baselines, both measured in this run on this machine:

- **imports**: the RSS of the rank when the entry point starts (Python, torch, scipy,
  `sparse` with numba imported, skhyperlearn), before anything else. Against it the peak
  falls {_verdict(numba, "raw_ratio")} with numba's kernels,
  {_verdict(fixed, "raw_ratio")} with the threshold fixed, {_verdict(torch_rows, "raw_ratio")}
  with torch's kernels.
- **runtime baseline** (`--warm`, same W): the peak RSS of the same command with `--warm`
  under torchrun: the imports, the gloo process group joined, and the same estimator fitted
  for one round on a 4 × 4 × 4 tensor of 8 entries with a 4-node path graph on every mode
  (so numba's runtime and the compiled kernels loaded from the cache, and torch's code for
  the solves paged in), with nothing of the data: no entry, no graph or factor of the data's
  size. Against it the peak falls {_verdict(numba, "ratio")} with numba's kernels,
  {_verdict(fixed, "ratio")} with the threshold fixed, {_verdict(torch_rows, "ratio")} with
  torch's kernels.

What sits between the two (one rank, measured with `/proc/self/status` at each step): numba's
runtime, loaded at the first compiled call even from the cache, about 46 MiB (its typing
and target registries, about 15 MiB of Python objects, and LLVM's code pages, about 30 MiB of
shared-library pages that every rank on a machine maps from the same file), torch's first
solves a few MiB, gloo's group under 2 MiB (`python benchmarks/sharded_memory_steps.py DIR`
prints these steps). `read_shard` hands a shard in row-major order to `sparse.COO` as it is:
`sparse.COO`'s own coordinate check and sort are numba functions compiled in every process,
54 MiB per rank at any share. With the default malloc settings the W = 1 peak moves between
runs (640 to 710 MiB in runs of `sharded_memory_steps.py` and of this benchmark): it comes
at the end of the fit (+15 MiB after the last round, in a run of `sharded_memory_steps.py`),
and whether that reuses freed memory depends on the history of frees; with the threshold
fixed it does not move (635 MiB in three runs). A sharded fit no longer copies the entries'
coordinates at its end (12 bytes per entry, which held only the rank's share, so
`recommend(exclude="train")` excluded a share: it now asks for `exclude=`). Model
constants (numba rows, above the runtime baseline): m_e =
{c["m_e"]:.0f} bytes per stored entry, m_f = {c["m_f"] / MIB:.0f} MiB per rank (negative when
the W = 1 peak holds more than its share), P =
{c["p"]:.3f} s (one MTTKRP per mode over every entry, timed inside the W = 1 run), S = T_1 − P −
collectives = {c["s"]:.3f} s (Grams, solves, normalization). The time model: P/W + S + comm
with the solves repeated on every rank, (P + S)/W + comm with them split; comm = the
collectives per round (counted at W = 1) × α + (W − 1)/W × (row blocks + 2 × all-reduced
bytes) / β, with this machine's loopback measured in this run (`benchmarks/_gloo_link.py`: α
one all_reduce of 8 numbers, β from an all_gather of 8 MB): {link_text}. It assumes W
devices; here W ranks share 2 cores (so α at W = 4 is the cost of waking oversubscribed
processes), and W = 4 cannot run faster than W = 2. With the solves split, each mode's row
blocks move c_k times per round, c_k = {steps} for modes 0, 1, 2 here (one reduce_scatter,
one all_gather per CG step plus the first residual's, one all_gather of the result): the
model 8·R·Σ c_k·W⌈N_k/W⌉ counts them, the small all_reduces (Grams, CG's inner products)
aside.

**Projection** (on paper, these constants; R = 16): Amazon reviews, 4.8M × 1.8M × 1.8M,
1.7·10⁹ entries. The pass P scales with the entries, S with Σ N_k·R (a CG step on a kNN
graph's Laplacian; the same number of CG steps assumed, which larger graphs will not keep),
the row blocks with c_k as counted here; the fixed memory is counted (the factors plus a
mode's MTTKRP and CG vectors, 8·R·(Σ N_k + 8·max N_k) bytes), not measured; α per step of a
tree of ⌈log₂ W⌉, the links' α and β assumed (10 GbE: 50 µs, 1.1 GB/s; 100 GbE: 10 µs,
11 GB/s). At this size the default rule splits every mode (N_k·R ≥ 2^20).

{markdown_table(proj, PROJECT_COLUMNS, {k: "r" for k, _ in PROJECT_COLUMNS})}

What it says: the bytes per round follow the model, whatever W: one N_k × R block per mode
when the solves are repeated on every rank (measured {numba[0]["bytes"]} against
{numba[0]["model_b"]}; the rest, the Grams' R × R blocks), c_k blocks per mode when they are
split (row blocks {split[0]["rowb"]} against {split[0]["model_b"]}, of {split[0]["bytes"]} in
all with the inner products and Grams). What the entries cost a rank falls with W above the
runtime baseline, but the peak of one run against another moves by tens of MiB with malloc's
history, so the ratios at W = 4 sit near the 20 % bound (the fixed threshold steadies them and
costs time: each large temporary is then a fresh mapping the system zeroes; compare its
s/round). Above the bare
imports a rank also carries the runtime (about
{(float(numba[0]["base"]) - float(numba[0]["imports"])):.0f} MiB with numba's kernels,
{(float(torch_rows[0]["base"]) - float(torch_rows[0]["imports"])):.0f} MiB with torch's), which
no split of the entries removes. On this benchmark's modes (N_k·R ≤ 64,000) a split solve's
CG steps cost more in collectives (about {float(split[1]["colls"]):.0f} per round, each
{links[2][0] * 1e3:.2f} ms between two ranks here) than the arithmetic they share
(S = {c["s"]:.3f} s for the whole round): s/round {split[1]["time"]} split against
{numba[1]["time"]} replicated at W = 2, which is why the default repeats small coupled solves.
The model misses the split rows by the collectives' waits: at W = 2 it counts
{split[1]["model_c"]} s
of collectives against {split[1]["reduce"]} s measured (a collective inside the fit also waits
for the slower rank's arithmetic, and for a sleeping rank to wake, which the ping of
`_gloo_link.py` does not). At Amazon's size the solves, repeated, would set the round (S in
the projection); split, they fall as 1/W and the round is set by the row blocks' bandwidth
(at 64 ranks, P/W + S/W + collectives {_round_total(proj[-1], "split", "s 100 GbE")} s against
P/W + S + collectives {_round_total(proj[-1], "rest", "r 100 GbE")} s on 100 GbE, and
{_round_total(proj[-1], "split", "s 10 GbE")} s against
{_round_total(proj[-1], "rest", "r 10 GbE")} s on 10 GbE): the next step there is a halo
exchange (each rank gathers only the rows its Laplacian rows reach, a fraction of N_k on a
kNN graph whose rows are ordered by locality, instead of all of them), and holding each factor
once per machine rather than once per rank.
"""
    write_readme_section(ROOT / "benchmarks" / "README.md", "sharded", text, "# Benchmarks")
