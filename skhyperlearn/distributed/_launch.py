"""Joining the process group torchrun (or the caller's environment) describes."""

from __future__ import annotations

import datetime
import io
import math
import os
import sys
from numbers import Real

import torch
import torch.distributed as dist

__all__ = ["DEFAULT_TIMEOUT", "init_process_group", "local_device", "prefix_output"]

#: Seconds a collective waits for the other ranks before failing (a dead or hung rank).
DEFAULT_TIMEOUT = 300.0


def local_device(backend: str) -> torch.device:
    """The device this rank computes on: its GPU under NCCL (``LOCAL_RANK``), else the CPU."""
    if backend == "nccl":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def init_process_group(backend: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Join the default process group from the environment torchrun sets.

    Parameters
    ----------
    backend : {"gloo", "nccl"}, optional
        Default: NCCL when CUDA is available, else gloo.
    timeout : float, default=300
        Seconds after which a collective fails when another rank died or hangs. Under NCCL the
        failure needs asynchronous error handling, on by default in recent PyTorch
        (``TORCH_NCCL_ASYNC_ERROR_HANDLING``).

    Returns
    -------
    backend : str
    """
    if not (isinstance(timeout, Real) and math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout!r}.")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}.")
    missing = [
        v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ
    ]
    if missing:
        raise RuntimeError(
            f"environment variables {missing} are not set: launch with "
            "torchrun --nproc-per-node N -m skhyperlearn.distributed ..."
        )
    if backend == "nccl":
        torch.cuda.set_device(local_device(backend))
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=float(timeout)))
    return backend


class _Prefixed(io.TextIOBase):
    """A text stream that starts every line it writes with ``prefix``."""

    def __init__(self, stream, prefix: str) -> None:
        self._stream, self._prefix, self._at_line_start = stream, prefix, True

    def write(self, text: str) -> int:
        out = []
        for piece in text.splitlines(keepends=True):
            if self._at_line_start:
                out.append(self._prefix)
            out.append(piece)
            self._at_line_start = piece.endswith("\n")
        self._stream.write("".join(out))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    @property
    def encoding(self):
        return self._stream.encoding


def prefix_output(prefix: str) -> None:
    """Prefix every line this process prints (stdout and stderr: warnings, errors, progress).

    Under torchrun every rank writes to the same terminal; the prefix says which one wrote.
    """
    sys.stdout = _Prefixed(sys.stdout, prefix)
    sys.stderr = _Prefixed(sys.stderr, prefix)
