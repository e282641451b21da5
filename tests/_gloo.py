"""Launching gloo ranks on 127.0.0.1 for the multi-process tests (one helper for every file).

A run is bounded by ``communicate(timeout)``: a guard against a hang, not a timing assertion.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gloo_env(**extra) -> dict:
    """The environment of a rank: this checkout first on the path, one thread, loopback."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def launch(worker, cfg: dict, world: int) -> list[subprocess.Popen]:
    """``world`` processes of ``worker`` with ``cfg``, joined as one group by a free port."""
    port = free_port()
    return [
        subprocess.Popen(
            [sys.executable, str(worker), json.dumps(cfg)],
            env=gloo_env(
                MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK=r, WORLD_SIZE=world, LOCAL_RANK=r
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for r in range(world)
    ]


def wait(procs, timeout: float) -> list[tuple[int, str]]:
    """Each process's return code and stderr; any still running after ``timeout`` is killed."""
    out = []
    try:
        for p in procs:
            _, err = p.communicate(timeout=timeout)
            out.append((p.returncode, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return out
