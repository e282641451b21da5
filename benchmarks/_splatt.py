"""SPLATT (Smith & Karypis, MIT licence) as a plain CP-ALS peer of ``bench_cp_als.py``.

SPLATT is a C program (CSF storage, OpenMP); its source and build script lie outside the
repository (``SPLATT_PEERS``, default ``/work/shared/peers``). :func:`build` runs that script
when the benchmark is asked for SPLATT and returns the binary, or ``None`` with the reason, so
that the benchmark skips SPLATT cleanly where it cannot be built (no LAPACK, no compiler).

Its command line takes no initial factors (it draws them from ``--seed``), so SPLATT does not
follow the same iterates as the other methods: its fit after the same number of sweeps is
comparable only roughly. The per-sweep time is taken as for every method, from calls with two
numbers of sweeps (the text file is read in each call, so reading it is a fixed cost of the
call), and SPLATT's own per-iteration log gives ``in_loop_step_s``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# A process's peak resident memory counts what its parent held when it was forked (Linux keeps
# the largest RSS across exec), so SPLATT is started from this small interpreter, which reports
# SPLATT's peak (about the interpreter's ~10 MB more than SPLATT's own, as on the tiny tensor).
_LAUNCHER = (
    "import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
    "print(f'peak_rss_kb={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}'); "
    "sys.exit(rc)"
)
PEERS = Path(os.environ.get("SPLATT_PEERS", "/work/shared/peers"))
_ITERATION = re.compile(r"^\s*its =\s*\d+ \(([0-9.]+)s\)", re.MULTILINE)


def build(dest: Path) -> tuple[str | None, str]:
    """Build SPLATT into ``dest`` (once); ``(binary, "")`` or ``(None, why not)``."""
    script = PEERS / "build_splatt.sh"
    if not script.exists():
        return None, f"{script} not found"
    try:
        done = subprocess.run(
            ["bash", str(script), str(dest)], capture_output=True, text=True, timeout=1800
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"build failed: {exc}"
    binary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not Path(binary).is_file():
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"build failed ({reason}; needs cmake, a C compiler and liblapack-dev)"
    return binary, ""


def write_tns(path: Path, coords: np.ndarray, values: np.ndarray) -> None:
    """SPLATT's text format: one entry a line, 1-based indices, then the value."""
    with open(path, "w") as f:
        step = 1_000_000
        for start in range(0, values.shape[0], step):
            block = coords[:, start : start + step].T + 1
            lines = np.column_stack([block, values[start : start + step]])
            np.savetxt(f, lines, fmt=["%d"] * coords.shape[0] + ["%.17g"])


def _read_factors(stem: str, n_modes: int) -> list[np.ndarray]:
    weights = np.loadtxt(f"{stem}.lambda.mat", ndmin=1)
    factors = [np.loadtxt(f"{stem}.mode{k + 1}.mat", ndmin=2) for k in range(n_modes)]
    factors[0] = factors[0] * weights
    return factors


def factory(binary: str, threads: int | None, scratch: Path):
    """A runner factory like ``bench_cp_als.RUNNERS``' (``init`` is unused, see above); its
    files go to a new folder in ``scratch``."""

    def make(coords, values, shape, init, rank):
        workdir = Path(tempfile.mkdtemp(prefix="splatt_", dir=scratch))
        tns = workdir / "x.tns"
        write_tns(tns, coords, values)
        stem = str(workdir / "out")
        iteration_times: list[float] = []

        def run(n):
            cmd = [binary, "cpd", "-r", str(rank), "-i", str(n), "--tol", "0", "--seed", "1"]
            cmd += ["-t", str(threads or os.cpu_count() or 1), "-v", "-s", stem, str(tns)]
            log = workdir / "log.txt"
            with open(log, "w") as out:
                done = subprocess.run(
                    [sys.executable, "-I", "-S", "-c", _LAUNCHER, *cmd], stdout=out, check=False
                )
            text = log.read_text()
            if done.returncode != 0:
                raise RuntimeError(f"splatt exited with {done.returncode}: {text[-300:]}")
            peak = re.findall(r"^peak_rss_kb=(\d+)$", text, re.MULTILINE)
            run.peak_rss = max(run.peak_rss, int(peak[-1]) * 1024)
            # Every iteration but the first (which pays first-touch page faults).
            iteration_times.extend(float(t) for t in _ITERATION.findall(text)[1:])
            return _read_factors(stem, len(shape))

        run.peak_rss = 0

        run.sweep_times = iteration_times
        run.workdir = workdir
        return run

    return make


def coordinate_bytes(n_modes: int, nnz: int) -> int:
    """What SPLATT holds for the entries as read (64-bit indices and double values)."""
    return 8 * (n_modes + 1) * nnz
