"""200 seeded corruptions of a tiny Monti ``.mat`` file and of a tiny Last.fm file set (#23).

Each corruption must end in a clear error (naming the file and the corrupted part) or in a load
equal to an independent pure-Python reading of the corrupted files. The loop runs in a
subprocess (tests/_fuzz_loaders_worker.py): a SIGSEGV or an abort of compiled code, which the
unchecked Monti parts used to cause, fails the test instead of killing pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
_WORKER = Path(__file__).resolve().parents[1] / "_fuzz_loaders_worker.py"
_CASES = 200


def _run(which: str, seed: int, folder: Path) -> str:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(_ROOT), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.run(
        [sys.executable, str(_WORKER), which, str(seed), str(_CASES), str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"fuzz worker exited with {proc.returncode}:\n{out[-3000:]}"
    return out


def _counts(out: str) -> tuple[int, int]:
    # "<which>: 200 cases, E errors, L loads"
    words = out.split()
    return int(words[words.index("errors,") - 1]), int(words[words.index("loads") - 1])


def test_fuzz_monti_sparse_parts(tmp_path):
    pytest.importorskip("h5py")
    out = _run("monti", 20231, tmp_path)
    errors, loads = _counts(out)
    assert errors + loads == _CASES
    # Both outcomes are exercised: the corruptions are not all caught (or all harmless).
    assert errors > 50 and loads > 10, out


def test_fuzz_lastfm_files(tmp_path):
    out = _run("lastfm", 20232, tmp_path)
    errors, loads = _counts(out)
    assert errors + loads == _CASES
    assert errors > 50 and loads > 10, out
