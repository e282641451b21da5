"""Mutation check: do the tests catch one-line breaks of the solvers and kernels?

Each mutation replaces one line of the package (an exact text match, which must occur once) in
a scratch copy of the repository, runs the tests that should catch it, and reports whether they
failed (caught) or passed (missed). Every mutation must be caught; the script exits with 1
otherwise, or when a mutation no longer applies (the code it targets changed: update it).

    python tools/mutation_check.py            # all mutations
    python tools/mutation_check.py -k cg      # those whose name contains "cg"
    python tools/mutation_check.py --check-only  # each still applies once; no tests run
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REF = "tests/solvers/test_references.py"
HL = "tests/solvers/test_hyperlearn.py"
SCALE = "tests/properties/test_scale_properties.py"
CATALOGUE = "tests/inputs/test_catalogue_estimator.py"
IMPL = "tests/solvers/test_implicit_loss.py"
FUSED = "tests/numerics/test_fused.py"
SWEEP = "tests/numerics/test_sweep_helpers.py"
LOSSES = "skhyperlearn/solvers/losses"
NUMERICS = "skhyperlearn/_numerics"
KERNELS_PY = f"{NUMERICS}/_kernels.py"
FUSED_PY = f"{NUMERICS}/_cpu/_fused.py"
NUMBA_PY = f"{NUMERICS}/_cpu/_fused_numba.py"
KERNELS = "tests/numerics/test_kernels.py"
CKPT = "tests/solvers/test_checkpoint_safety.py"
GUARDS = "tests/estimators/test_fit_guards.py"
RESUME = "tests/solvers/test_checkpoints.py"
DIST = "tests/solvers/test_distributed_ownership.py"
MEM = "tests/solvers/test_memory_estimate.py"
PROJ = "tests/solvers/test_projections.py"
SHARDED = "tests/solvers/test_sharded.py"
SPLIT = "tests/solvers/test_sharded_rows.py"
SVD = "tests/solvers/test_svd_start.py"
CHOICES = "tests/estimators/test_estimator_choices.py"
DATA = "tests/data/test_data_references.py"
FOLD = "tests/estimators/test_fold_in_graph.py"
SHIFT = "tests/solvers/test_fold_in_shift.py"

# (name, file, original line fragment, mutated fragment, tests to run)
MUTATIONS = [
    ("laplacian x0.5 in the exact hypergraph solve", f"{LOSSES}/_hypergraph.py",
     "return lap @ rows.gather(y) + y * shifts", "return 0.5 * (lap @ y) + y * shifts", [REF]),
    ("laplacian x2 in the exact hypergraph solve", f"{LOSSES}/_hypergraph.py",
     "return lap @ rows.gather(y) + y * shifts", "return 2 * (lap @ y) + y * shifts", [REF]),
    ("laplacian x4 in the exact hypergraph solve", f"{LOSSES}/_hypergraph.py",
     "return lap @ rows.gather(y) + y * shifts", "return 4 * (lap @ y) + y * shifts", [REF]),
    ("laplacian x2 in the exact observed solve", f"{LOSSES}/_rowwise.py",
     "out[:, :rank] += lap @ rows.gather(y[:, :rank])",
     "out[:, :rank] += 2 * (lap @ y[:, :rank])", [REF]),
    ("cg capped at 2 iterations", f"{NUMERICS}/_cg.py",
     "for _ in range(maxiter):", "for _ in range(min(maxiter, 2)):", [REF]),
    ("ridge x10 in the observed system", f"{LOSSES}/_rowwise.py",
     "system = 2.0 * lam * grams + 2.0 * alpha * eye",
     "system = 2.0 * lam * grams + 20.0 * alpha * eye", [REF]),
    ("ridge x2 in the hypergraph system", f"{LOSSES}/_hypergraph.py",
     "shifts = 2.0 * lam * g.clamp_min(0) + 2.0 * alpha",
     "shifts = 2.0 * lam * g.clamp_min(0) + 4.0 * alpha", [REF]),
    ("graph term dropped from a block's training loss", "skhyperlearn/solvers/_problem.py",
     "return data + self.graph_term(quad.mode, a) + self.ridge_term(a, b)",
     "return data + self.ridge_term(a, b)", [REF]),
    ("graph term of J halved", "skhyperlearn/solvers/_problem.py",
     "return 0.5 * (a * symmetric_spmm(lap, a)).sum()",
     "return 0.25 * (a * symmetric_spmm(lap, a)).sum()", [REF]),
    ("bias dropped from the ridge of J", "skhyperlearn/solvers/_problem.py",
     "out = out + self._sq_norm(b)", "out = out", [REF]),
    ("ridge dropped from the blocks' exact bias", f"{LOSSES}/_rowwise.py",
     "den = lam * count + alpha", "den = lam * count", [REF]),
    ("mean update half a step", f"{LOSSES}/_observed.py",
     "return mean + float(res.mean())", "return mean + 0.5 * float(res.mean())",
     [REF]),
    ("a mode's quadratic reads mode 0's copy of the entries", "skhyperlearn/solvers/_problem.py",
     "return self.data(mode, index), factors, biases, state.mean",
     "return self.data(0, index), factors, biases, state.mean", [REF]),
    ("round driver skips the mean update", "skhyperlearn/solvers/_rounds.py",
     "if problem.bias:", "if not problem.bias:", [REF]),
    ("blocks rescale every Laplacian by 2, weighted or not", "skhyperlearn/solvers/_block.py",
     "return 2.0 * largest if largest > 0 else 2.0", "return 2.0",
     ["tests/solvers/test_block.py", "tests/properties/test_representation_quality.py"]),
    ("parallel schedule keeps the old factors", "skhyperlearn/solvers/_schedules.py",
     "state.assign(k, a, b)\n        problem.carry_scale(state, self.mode_order[-1])",
     "pass\n        problem.carry_scale(state, self.mode_order[-1])", [REF]),
    ("kernel: Gram of the Khatri-Rao product summed, not multiplied", KERNELS_PY,
     "out = g if out is None else out * g", "out = g if out is None else out + g",
     [REF, KERNELS]),
    ("kernel: the mode's own bias left in its target", KERNELS_PY,
     "if b is not None and j != skip:", "if b is not None:", [REF, KERNELS]),
    ("ridge floor absolute again (1 at least)", f"{LOSSES}/_hypergraph.py",
     "floor = relative_floor(self.gram.dtype, scale)",
     "floor = relative_floor(self.gram.dtype, max(scale, 1.0))",
     [SCALE, "tests/solvers/test_small_scale_solve.py"]),
    ("Laplacians no longer checked semidefinite", "skhyperlearn/_validation.py",
     "    _check_semidefinite(mat, where, scale, _rounding(dtype))\n", "", [CATALOGUE]),
    ("implicit: stored entries' Gram weighted half", KERNELS_PY,
     "h.mul_(w.sqrt_()[:, None])", "h.mul_(w.mul_(0.5).sqrt_()[:, None])", [IMPL, REF]),
    ("implicit: a row's padding reads the next row's first entry", KERNELS_PY,
     "torch.where(offsets < counts[rows, None], idx, n)",
     "torch.where(offsets <= counts[rows, None], idx, n)", [IMPL]),
    ("implicit: confidence left out of the linear term", KERNELS_PY,
     "        linear[rows] += chunk.scatter(1.0 + w) @ h\n        _add_row_grams(",
     "        linear[rows] += chunk.scatter(1.0 + 0 * w) @ h\n        _add_row_grams(",
     [IMPL, REF]),
    ("implicit: quadratic not divided by 1 + confidence", f"{LOSSES}/_implicit.py",
     "scale = 1.0 / (1.0 + confidence * typical)", "scale = 1.0", [REF]),
    ("solved scale: a sequential round solves against the others' own scale",
     "skhyperlearn/solvers/_schedules.py",
     "            if problem.normalize:\n"
     "                state.normalize_except(k, problem.keeps_model)\n",
     "", [REF]),
    ("solved scale: a parallel round leaves the scale on every mode",
     "skhyperlearn/solvers/_schedules.py",
     "        problem.carry_scale(state, self.mode_order[-1])\n", "", [REF]),
    ("fused: values read in the mode's order, not through the permutation",
     NUMBA_PY, "v, i1, i2 = values[e], c1[e], c2[e]",
     "v, i1, i2 = values[s], c1[e], c2[e]", [FUSED]),
    ("fused: the last row left out of the parts", FUSED_PY,
     "cuts, [rowptr.shape[0] - 1]", "cuts, [rowptr.shape[0] - 2]", [FUSED]),
    ("fused implicit: stored values ignored", NUMBA_PY,
     "    w = conf * v\n", "    w = conf\n", [FUSED]),
    ("fused implicit: absent-cell weight dropped from the linear term",
     NUMBA_PY, "linear[i, p] += (1.0 + w) * h[p]",
     "linear[i, p] += w * h[p]", [FUSED]),
    ("ridge x2 in the hypergraph solve without a graph", f"{LOSSES}/_hypergraph.py",
     "shifts = 2.0 * lam * np.maximum(g, 0) + 2.0 * alpha",
     "shifts = 2.0 * lam * np.maximum(g, 0) + 4.0 * alpha", [REF]),
    ("no pseudo-inverse on G's null space without a graph", f"{LOSSES}/_hypergraph.py",
     "keep = shifts > floor", "keep = shifts > 0", [SWEEP]),
    ("the monitor's best state is the live state", "skhyperlearn/solvers/_monitor.py",
     "self.best_state = state.clone()", "self.best_state = state", [SWEEP]),
    ("the monitor's copy writes nothing", "skhyperlearn/solvers/_problem.py",
     "                a.copy_(b)\n", "                pass\n", [SWEEP]),
    ("checkpoint read as a full pickle", "skhyperlearn/solvers/_checkpoint.py",
     'torch.load(path, map_location="cpu", weights_only=True)',
     'torch.load(path, map_location="cpu", weights_only=False)', [CKPT]),
    ("checkpoint key compared with nothing", "skhyperlearn/solvers/_checkpoint.py",
     'differ = key_differences(saved["key"].get(field, {}), key)', "differ = []", [CKPT]),
    ("checkpoint resumed under a stricter tol stops at the saved tol stop",
     "skhyperlearn/solvers/_rounds.py", 'if saved["stop_reason"] not in (None, "tol"):',
     'if saved["stop_reason"] is not None:', [CKPT]),
    ("checkpoint of another world size not looked for", "skhyperlearn/solvers/_checkpoint.py",
     "                    worlds.add(int(found.group(2)))\n", "                    pass\n", [CKPT]),
    ("the monitor keeps HyperLearn's latest state under the solved scale",
     "skhyperlearn/solvers/_monitor.py", "if self.problem.normalize and not self.by_loss:",
     "if self.problem.normalize:", [GUARDS]),
    ("finiteness check blind to infinities", "skhyperlearn/solvers/_problem.py",
     "return bool(np.isfinite(a.detach().numpy()).all())",
     "return not bool(np.isnan(a.detach().numpy()).any())", [SWEEP]),
    ("checkpoint: resumed from the oldest saved round", "skhyperlearn/solvers/_checkpoint.py",
     "return candidates[max(rounds)] if rounds else None",
     "return candidates[min(rounds)] if rounds else None", [RESUME]),
    ("checkpoint: only OSError caught on load (a damaged file not refused by name)",
     "skhyperlearn/solvers/_checkpoint.py",
     "    except (OSError, RuntimeError, EOFError, ValueError, TypeError, AttributeError) as exc:",
     "    except OSError as exc:", [RESUME]),
    ("checkpoint: no save at max_iter", "skhyperlearn/solvers/_rounds.py",
     "if reason is not None or it % checkpoint.every == 0 or it == max_iter:",
     "if reason is not None or it % checkpoint.every == 0:", [RESUME]),
    ("distributed: mode k owned by rank k + 1 mod W", "skhyperlearn/solvers/_distributed.py",
     "return mode % world_size", "return (mode + 1) % world_size", [DIST]),
    ("distributed: every bias broadcast from rank 0", "skhyperlearn/solvers/_distributed.py",
     "b = self._broadcast(b, src, f\"mode {k}'s bias\")",
     "b = self._broadcast(b, 0, f\"mode {k}'s bias\")", [DIST]),
    ("memory: the implicit loss's Grams sized by the smallest mode", f"{LOSSES}/_implicit.py",
     "own = 4 * max(shape) * rank**2 * itemsize", "own = 4 * min(shape) * rank**2 * itemsize",
     [MEM]),
    ("memory: one permutation too few", "skhyperlearn/_memory.py",
     "perms = max(order - 1, 0) * nnz * pidx", "perms = max(order - 2, 0) * nnz * pidx", [MEM]),
    ("memory: the stored entries counted once whatever the devices", "skhyperlearn/_memory.py",
     "data = n_devices * (entries + perms)", "data = entries + perms", [MEM]),
    ("memory: max_memory never shrinks the chunks", "skhyperlearn/_decomposition.py",
     "return int(min(DEFAULT_CHUNK_BYTES, max(limit // 32, 2**20)))",
     "return DEFAULT_CHUNK_BYTES", [MEM]),
    ("svd start: the eigsh path returns sigma squared", "skhyperlearn/solvers/_init.py",
     "return vecs, np.sqrt(np.clip(vals, 0.0, None))", "return vecs, np.clip(vals, 0.0, None)",
     [SVD]),
    ("svd start: the singular values' scale lost", "skhyperlearn/solvers/_init.py",
     "factors.append(u * signs * np.sqrt(s) ** (1.0 / max(len(shape) - 1, 1)))",
     "factors.append(u * signs)", [SVD]),
    ("λ's unit: 30 for the implicit loss under factor_scale='free' too",
     f"{LOSSES}/_implicit.py",
     "return _SOLVED_SCALE_UNIT if normalize else 1.0",
     "return _SOLVED_SCALE_UNIT", [CHOICES]),
    ("fold-in drops the solved bias", "skhyperlearn/solvers/_fold_in.py",
     "    state.assign(mode, a, b)\n", "    state.assign(mode, a, None)\n", [CHOICES]),
    ("Hypergraph: an index equal to the mode's size accepted", "skhyperlearn/hypergraph.py",
     "if arr.size and (arr.min() < -n or arr.max() >= n):",
     "if arr.size and (arr.min() < -n or arr.max() > n):", [DATA]),
    ("kNN graph: default sigma the mean of the distances, not the median",
     "skhyperlearn/graphs.py", "sigma = float(np.median(positive)) if positive.size else 1.0",
     "sigma = float(np.mean(positive)) if positive.size else 1.0", [DATA]),
    ("projections: a pair's error not divided by its typical entry's weight",
     f"{LOSSES}/_projections.py",
     "    return implicit_sq_error(tensor, factors, c) / (1.0 + c * constants.typical)",
     "    return implicit_sq_error(tensor, factors, c)",
     [PROJ]),
    ("projections: the exact solve drops a term's weight from its constant",
     f"{LOSSES}/_projections.py", "const += weight * part.const", "const += part.const", [PROJ]),
    ("λ's unit with the projection terms 1 instead of 0.1", f"{LOSSES}/_implicit.py",
     "_PROJECTIONS_UNIT = 0.1", "_PROJECTIONS_UNIT = 1.0", [CHOICES]),
    ("the estimator forgets λ's unit", "skhyperlearn/_decomposition.py",
     "self._given_lam(loss, normalize) * loss.lam_unit(normalize)",
     "self._given_lam(loss, normalize)", [CHOICES]),
    ("the memory estimate leaves out the projection terms' pairs", f"{LOSSES}/_implicit.py",
     "        return own + self._projection_bytes(shape, itemsize)", "        return own", [MEM]),
    ("sharded: a rank's partial MTTKRP not summed over the ranks",
     "skhyperlearn/solvers/_sharded.py",
     'linear = rows.scatter_sum(m, "stored-entry products")',
     "linear = rows.local(m)", [SHARDED]),
    ("sharded: a CG step's stored-entry product not summed over the ranks",
     "skhyperlearn/solvers/_sharded_cg.py",
     'return self.rows.scatter_sum(super()._stored_apply(y), "operator product")',
     "return self.rows.local(super()._stored_apply(y))", [SHARDED]),
    ("split solves: CG's inner products not summed over the row blocks",
     f"{NUMERICS}/_cg.py", "        if allsum is None:", "        if True:", [SPLIT]),
    ("split solves: each block stops CG on its own", f"{NUMERICS}/_cg.py",
     "return flag if allany is None else allany(flag)", "return flag", [SPLIT]),
    ("split solves: a block starts one row late", "skhyperlearn/solvers/_sharded_rows.py",
     "self.start = min(comm.rank * self.size, n)",
     "self.start = min(comm.rank * self.size + 1, n)", [SPLIT]),
    ("split solves: the Laplacian's rows applied to the block, not to every row",
     f"{LOSSES}/_hypergraph.py", "return lap @ rows.gather(y) + y * shifts",
     "return lap.rows[:, rows.start : rows.start + y.shape[0]] @ y + y * shifts"
     " if not rows.whole else lap @ y + y * shifts", [SPLIT]),
    ("split solves: the rule splits small coupled modes", "skhyperlearn/solvers/_sharded_rows.py",
     "(not coupled or cells >= SPLIT_MIN_CELLS)", "(not coupled or cells < SPLIT_MIN_CELLS)",
     [SPLIT]),
    ("replicated CG solve: the data term's entries not summed",
     "skhyperlearn/solvers/_sharded_cg.py",
     '_, (stored,) = self.comm.sum([], [float(local)], f"mode {self.mode}\'s data term")',
     "stored = float(local)", [SHARDED]),
    ("split solves: the Grams summed from every row on every rank",
     "skhyperlearn/solvers/_sharded_rows.py", "own = blocks[j].local(a)", "own = a", [SPLIT]),
    ("fold-in: the fitted neighbours' pull dropped", "skhyperlearn/solvers/_fold_in.py",
     "laplacian=laplacian, shift=shift", "laplacian=laplacian, shift=None", [FOLD]),
    ("fold-in: the neighbours' pull not scaled with the others' norms",
     "skhyperlearn/solvers/_fold_in.py",
     "shift = shift * scale.to(shift.device)", "shift = shift", [FOLD]),
    ("fold-in: the union's adjacency taken for its Laplacian", "skhyperlearn/_graph_origin.py",
     'lap = normalized_laplacian(block) if fitted.kind == "adjacency" else sp.csr_array(block)',
     "lap = sp.csr_array(block)", [FOLD]),
    ("a slice forgets where its entities sit", "skhyperlearn/hypergraph.py",
     "origins[mode] = origins[mode].take(idx)", "origins[mode] = None", [FOLD]),
    ("the matrix-free solve drops the shift", f"{LOSSES}/_matrix_free.py",
     "            b.sub_(shift)", "            pass", [SHIFT]),
    ("the coupled projections' solve adds the shift", f"{LOSSES}/_projections.py",
     "            b.sub_(shift)", "            b.add_(shift)", [SHIFT]),
    ("J from CG's per-row objectives forgets the ridge", f"{LOSSES}/_matrix_free.py",
     "return (2.0 * float(f.sum()) - ridge * sq) / ws", "return 2.0 * float(f.sum()) / ws",
     ["tests/solvers/test_coupled_cg.py", "tests/solvers/test_matrix_free.py"]),
    ("the compiled implicit error forgets the confidence's constant", KERNELS_PY,
     "tensor.nnz + confidence * tensor.value_sum + stored", "tensor.nnz + stored",
     ["tests/solvers/test_implicit_loss.py"]),
    ("a sharded fit keeps its rank's share as the fitted hyperedges",
     "skhyperlearn/_decomposition.py", "        if not self._sharded:", "        if True:",
     [SHARDED]),
]  # fmt: skip


def _copy_repo(dest: Path) -> None:
    for name in ("skhyperlearn", "tests", "pyproject.toml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)


def _run_one(scratch: Path, path: str, old: str, new: str, tests: list[str]) -> str:
    target = scratch / path
    original = target.read_text()
    if original.count(old) != 1:
        return f"NOT APPLIED ({original.count(old)} matches)"
    target.write_text(original.replace(old, new))
    try:
        env = dict(os.environ, PYTHONPATH=str(scratch), OMP_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
        out = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True)
    finally:
        target.write_text(original)
    return "caught" if out.returncode == 1 else ("MISSED" if out.returncode == 0 else "ERROR")


def _applies(path: str, old: str, tests: list[str]) -> str:
    """Whether a mutation still applies: its line occurs once, its tests exist."""
    count = (ROOT / path).read_text().count(old) if (ROOT / path).is_file() else 0
    if count != 1:
        return f"NOT APPLIED ({count} matches in {path})"
    missing = [t for t in tests if not (ROOT / t).exists()]
    return f"NO TESTS ({', '.join(missing)})" if missing else "applies"


def _check_only(pattern: str) -> int:
    failed = 0
    for name, path, old, _new, tests in MUTATIONS:
        if pattern in name:
            result = _applies(path, old, tests)
            failed += result != "applies"
            print(f"{result:12s} {name}", flush=True)
    print(f"{failed} mutation(s) do not apply" if failed else "every mutation applies")
    return int(failed > 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only mutations whose name contains this")
    parser.add_argument(
        "--check-only",
        action="store_true",
        help="only check that every mutation applies exactly once and its tests exist",
    )
    args = parser.parse_args()
    if args.check_only:
        return _check_only(args.k)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        _copy_repo(scratch)
        for name, path, old, new, tests in MUTATIONS:
            if args.k not in name:
                continue
            tic = time.perf_counter()
            result = _run_one(scratch, path, old, new, tests)
            failed += result != "caught"
            print(f"{result:12s} {name}  ({time.perf_counter() - tic:.0f} s)", flush=True)
    print(f"{failed} mutation(s) not caught" if failed else "every mutation caught")
    return int(failed > 0)


if __name__ == "__main__":
    sys.exit(main())
