"""Checkpoints of a run of rounds: everything needed to resume it with nothing lost.

A checkpoint holds the round reached, the state (factors, biases, mean), the per-mode update's
own state (the diffusion blocks' weights, Adam's moments and the biases they solved), the
monitor's record (best state, scores, stall count), J's history, and why the run stopped if it
did. It is written every ``every`` rounds (and when the run stops), atomically (a temporary
file, then a rename), and the previous one is kept as ``PATH.prev``, so a crash while writing
loses at most the round being saved. Under the distributed schedule each rank writes its own
file (``PATH.rank{r}of{w}``: it owns its blocks) after a barrier (every rank reached the round),
and on resume the ranks agree on the latest round that every one of them saved.

Safety and identity. A checkpoint holds tensors and plain values only (numbers, strings,
lists, dicts) and is read with ``torch.load(weights_only=True)``: a file that names anything
else (a pickled object whose loading would run code) is refused with that name, and nothing
of it runs. Each checkpoint carries a key: every parameter that changes the fit (resolved, so
``lam="auto"`` and the value it stands for agree), a fingerprint of X (shape, stored entries,
dtype and a hash of the coordinates and values), of each graph and of ``init`` arrays, and the
number of ranks. :meth:`Checkpoint.prepare` checks, before any work, that the path can be
written and that every file found there is a checkpoint of this very fit; a mismatch is
refused with the fields that differ (never silently started over or mixed in). Left out of the
key, because they do not change the rounds run: ``max_iter`` and ``tol`` (the round driver
decides whether the saved run goes on under the new ones), ``callback``, ``verbose``,
``devices`` and ``max_memory`` (placement and chunk sizes: the same rounds up to rounding),
``on_nonfinite``.

Resuming runs again what precedes the rounds (hold-out, initial state, exact sweeps: all
deterministic given ``random_state``), then loads the checkpoint and goes on from the next round,
so a resumed fit ends where the uninterrupted one ends.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ._problem import Problem, State

__all__ = ["NOT_IN_KEY", "Checkpoint", "fit_key"]

_VERSION = 2
_FORMAT = "skhyperlearn checkpoint"
#: Estimator parameters a checkpoint's key leaves out (see the module docstring).
NOT_IN_KEY = frozenset(
    {"max_iter", "tol", "callback", "verbose", "devices", "max_memory", "on_nonfinite"}
)
_STOPS = (None, "tol", "callback")
_NONE = type(None)
# Every field of a checkpoint and the types it may hold: anything else is refused.
_FIELDS = {
    "format": (str,),
    "version": (int,),
    "key": (dict,),
    "iteration": (int,),
    "factors": (list,),
    "biases": (list, _NONE),
    "mean": (float, int),
    "update": (dict, _NONE),
    "callback": (dict, _NONE),
    "history": (list,),
    "stop_reason": (str, _NONE),
}
_RANK_FILE = re.compile(r"\.rank(\d+)of(\d+)(\.prev)?$")
_HASH_CHUNK = 1 << 20  # rows hashed at a time: bounded copies of non-contiguous arrays


def _cpu(tensors):
    return None if tensors is None else [t.detach().cpu() for t in tensors]


def _world() -> tuple[int, int] | None:
    """``(rank, world size)`` of the torch.distributed group, None outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return None


def _collective(what: str, fn, *args):
    from ._distributed import DistributedFault

    try:
        return fn(*args)
    except (RuntimeError, dist.DistError) as exc:
        raise DistributedFault(
            f"rank {dist.get_rank()}/{dist.get_world_size()}: {what} failed (a rank died, hung "
            f"past the timeout or left the group): {exc}"
        ) from exc


# ---------------------------------------------------------------------------- the key
def _digest(arrays: Sequence[np.ndarray]) -> str:
    """A hash of the arrays' contents, dtypes and shapes, in bounded pieces."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.asarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        flat = a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(-1)
        for start in range(0, flat.shape[0], _HASH_CHUNK):
            h.update(np.ascontiguousarray(flat[start : start + _HASH_CHUNK]).data)
    return h.hexdigest()


def data_fingerprint(coords: np.ndarray, values: np.ndarray, shape: Sequence[int]) -> dict:
    """Shape, stored entries, dtype and a hash of X's coordinates and values."""
    return {
        "shape": [int(n) for n in shape],
        "nnz": int(values.shape[0]),
        "dtype": str(values.dtype),
        "digest": _digest([coords, values]),
    }


def graph_fingerprint(lap) -> dict | None:
    """Shape, stored entries and a hash of a Laplacian (its canonical CSR form)."""
    if lap is None:
        return None
    if isinstance(lap, np.ndarray):
        return {
            "shape": list(lap.shape),
            "nnz": int(np.count_nonzero(lap)),
            "digest": _digest([lap]),
        }
    csr = lap.tocsr(copy=True)
    csr.sum_duplicates()
    csr.sort_indices()
    return {
        "shape": list(csr.shape),
        "nnz": int(csr.nnz),
        "digest": _digest([csr.indptr, csr.indices, csr.data]),
    }


def _plain(value):
    """A parameter as a plain value (what a weights-only checkpoint can hold and compare)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple) and all(
        isinstance(a, np.ndarray | torch.Tensor) or hasattr(a, "__array__") for a in value
    ):
        arrays = [np.asarray(a) for a in value]  # init arrays: their contents count
        return [{"shape": list(a.shape), "digest": _digest([a])} for a in arrays]
    # A RandomState instance, an object: only its type can be compared.
    return f"<{type(value).__name__}>"


def fit_key(params: Mapping, data, laplacians: Sequence) -> dict:
    """The key of a fit: its parameters (those in :data:`NOT_IN_KEY` left out), X and graphs.

    ``params`` are the estimator's parameters with the "auto" ones resolved; ``data`` has
    ``coords``, ``values`` and ``shape`` (the training X after validation).
    """
    key = {name: _plain(v) for name, v in sorted(params.items()) if name not in NOT_IN_KEY}
    key.pop("laplacians", None)  # the graphs used are fingerprinted below
    key["X"] = data_fingerprint(data.coords, data.values, data.shape)
    key["graphs"] = [graph_fingerprint(lap) for lap in laplacians]
    return key


def _flatten(value, prefix: str, out: dict) -> dict:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list | tuple):
        out[f"{prefix}.length"] = len(value)
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}[{i}]", out)
    else:
        out[prefix] = value
    return out


def key_differences(saved: dict, current: dict) -> list[str]:
    """``"name: A in the checkpoint, B here"`` for every field of the keys that differs."""
    a, b = _flatten(saved, "", {}), _flatten(current, "", {})
    missing = object()
    out = []
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name, missing), b.get(name, missing)
        if x != y:
            show = lambda v: "absent" if v is missing else repr(v)  # noqa: E731
            out.append(f"{name}: {show(x)} in the checkpoint, {show(y)} here")
    return out


# ---------------------------------------------------------------------------- reading
def _refuse(path: Path, why: str) -> ValueError:
    return ValueError(
        f"checkpoint {str(path)!r} {why}; remove it or choose another checkpoint path."
    )


def _unsafe_name(exc: Exception) -> str | None:
    """The global a weights-only load refused (``exec``, ``numpy.core...``), if it says one."""
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    return found.group(1) if found else None


def _last_line(exc: Exception) -> str:
    """What a load error says was wrong, in one short line (torch's own advice left out)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation")[0]
    text = " ".join(text.split())
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _read(path: Path) -> dict:
    """One checkpoint file, read as tensors and plain values only, and its fields checked."""
    if path.is_dir():
        raise _refuse(path, "is a folder, not a checkpoint file")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        name = _unsafe_name(exc)
        if name is not None:
            raise _refuse(
                path,
                f"holds {name}, which a checkpoint never holds (only tensors and plain values "
                "are read: nothing in the file was run)",
            ) from None
        raise _refuse(path, f"is not a checkpoint (unreadable: {_last_line(exc)})") from None
    except (OSError, RuntimeError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise _refuse(path, f"is not a checkpoint (unreadable: {_last_line(exc)})") from None
    if not isinstance(saved, dict) or saved.get("format") != _FORMAT:
        raise _refuse(path, "is not a skhyperlearn checkpoint (no format field)")
    if saved.get("version") != _VERSION:
        raise _refuse(path, f"has format version {saved.get('version')!r}, not {_VERSION}")
    missing = [name for name in _FIELDS if name not in saved]
    if missing:
        raise _refuse(path, f"lacks the fields {missing}")
    for name, types in _FIELDS.items():
        if isinstance(saved[name], bool) or not isinstance(saved[name], types):
            raise _refuse(path, f"has a {type(saved[name]).__name__} as {name!r}")
    if saved["stop_reason"] not in _STOPS or saved["iteration"] < 1:
        raise _refuse(path, f"has round {saved['iteration']} and stop {saved['stop_reason']!r}")
    if len(saved["history"]) != saved["iteration"]:
        raise _refuse(path, "has a J history whose length is not its round")
    saved["_path"] = str(path)
    return saved


def _check_tensors(path: str, saved: list, like: list, what: str) -> None:
    """The saved factors (or biases) have the shapes of this fit's, and are finite."""
    if len(saved) != len(like) or any(
        not isinstance(s, torch.Tensor)
        or tuple(s.shape) != tuple(t.shape)
        or not torch.is_floating_point(s)
        or not bool(torch.isfinite(s).all())
        for s, t in zip(saved, like, strict=False)
    ):
        raise _refuse(
            Path(path), f"holds {what} that do not fit this fit's shapes (or are not finite)"
        )


# ---------------------------------------------------------------------------- the checkpoint
class Checkpoint:
    """Where and how often a run of rounds is saved.

    Parameters
    ----------
    path : str or path-like
        The checkpoint file (resumed from when it exists). Refused at once when empty or an
        existing folder.
    every : int, default=1
        Save after every ``every``-th round (and after the last one).
    """

    def __init__(self, path: str | os.PathLike, every: int = 1) -> None:
        raw = os.fspath(path)
        if isinstance(raw, bytes) or not raw.strip():
            raise ValueError(
                f"checkpoint={path!r} is not a file path; give one such as 'fit.ckpt'."
            )
        self.path = Path(raw)
        if self.path.is_dir() or raw.endswith(("/", os.sep)):
            raise ValueError(
                f"checkpoint={raw!r} is a folder; give a file path (for example "
                f"{str(self.path / 'fit.ckpt')!r})."
            )
        self.every = int(every)
        self.key: dict = {}
        self._found: dict | None = None

    def file(self) -> Path:
        """This process's checkpoint file."""
        world = _world()
        if world is not None:
            return self.path.with_name(f"{self.path.name}.rank{world[0]}of{world[1]}")
        return self.path

    def _previous(self) -> Path:
        target = self.file()
        return target.with_name(target.name + ".prev")

    def prepare(self, key: dict) -> None:
        """Before any work: check the path is writable and every file there is this fit's.

        ``key`` is :func:`fit_key`'s; the number of ranks is added to it. Raises ValueError
        naming the file and the fields that differ.
        """
        world = _world()
        self.key = dict(key, world_size=1 if world is None else world[1])
        self._check_layout(world)
        self._check_writable()
        self._found = self._saved()
        for saved in self._found.values():
            self._check_key(saved, self.key, "key")

    def _check_layout(self, world) -> None:
        """Files written by another number of ranks (or by one process) are refused by name."""
        parent = self.path.parent if str(self.path.parent) else Path(".")
        name = self.path.name
        worlds = set()
        if parent.is_dir():
            for p in parent.iterdir():
                found = (
                    _RANK_FILE.fullmatch(p.name[len(name) :]) if p.name.startswith(name) else None
                )
                if found:
                    worlds.add(int(found.group(2)))
        single = self.path.exists() or self.path.with_name(name + ".prev").exists()
        here = 1 if world is None else world[1]
        if world is None and worlds:
            raise _refuse(
                self.path,
                f"was written by a distributed fit over {sorted(worlds)} ranks (its "
                "PATH.rank{r}of{w} files), and this fit runs in one process",
            )
        if world is not None and (worlds - {here} or single):
            other = f"{sorted(worlds - {here})} ranks" if worlds - {here} else "one process"
            raise _refuse(
                self.path,
                f"was written by {other}, and this fit runs on {here} ranks; resume with the "
                "same number of ranks",
            )

    def _check_writable(self) -> None:
        target = self.file()
        probe = target.with_name(target.name + ".tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(probe, "wb"):
                pass
            probe.unlink()
        except OSError as exc:
            raise ValueError(
                f"checkpoint={str(self.path)!r} cannot be written ({exc}); choose a writable "
                "folder."
            ) from exc

    def _saved(self) -> dict:
        """This process's checkpoints by round, each read safely and checked."""
        out = {}
        for path in (self._previous(), self.file()):
            if path.exists() or path.is_symlink():
                saved = _read(path)
                out[saved["iteration"]] = saved
        return out

    @staticmethod
    def _structure(problem: Problem, state: State, update) -> dict:
        # What the rounds' tensors must match, whoever built the checkpoint.
        return {
            "shape": list(problem.shape),
            "rank": int(state.factors[0].shape[1]),
            "update": type(update).__name__,
            "bias": bool(problem.bias),
        }

    @staticmethod
    def _check_key(saved: dict, key: dict, field: str) -> None:
        differ = key_differences(saved["key"].get(field, {}), key)
        if differ:
            raise _refuse(
                Path(saved["_path"]),
                "was written by another fit (" + "; ".join(differ[:8])
                + (f"; {len(differ) - 8} more" if len(differ) > 8 else "") + ")",
            )  # fmt: skip

    def save(self, iteration, problem, state, update, callback, history, stop_reason) -> None:
        payload = {
            "format": _FORMAT,
            "version": _VERSION,
            "key": {"key": self.key, "structure": self._structure(problem, state, update)},
            "iteration": int(iteration),
            "factors": _cpu(state.factors),
            "biases": _cpu(state.biases),
            "mean": float(state.mean),
            "update": update.state_dict() if hasattr(update, "state_dict") else None,
            "callback": callback.state_dict() if hasattr(callback, "state_dict") else None,
            "history": [float(j) for j in history],
            "stop_reason": stop_reason,
        }
        if _world() is not None:
            # Every rank reached this round: no rank saves a round another never finished.
            _collective(f"the barrier before saving round {iteration}", dist.barrier)
        target = self.file()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        torch.save(payload, tmp)
        if target.exists():
            os.replace(target, self._previous())
        os.replace(tmp, target)

    def _latest(self) -> dict | None:
        """The saved round to resume: this process's latest, or the ranks' latest common one."""
        candidates = self._found if self._found is not None else self._saved()
        rounds = set(candidates)
        if _world() is not None:
            everyone = [None] * dist.get_world_size()
            _collective("agreeing on the checkpoint", dist.all_gather_object, everyone, rounds)
            if not any(everyone):
                return None
            rounds = set.intersection(*everyone)
            if not rounds:
                raise ValueError(
                    f"the ranks' checkpoints under {str(self.path)!r} share no round "
                    f"({everyone}); remove them to start again."
                )
        return candidates[max(rounds)] if rounds else None

    def load(self, problem: Problem, state: State, update, callback) -> dict | None:
        """Restore ``state``, ``update`` and ``callback`` in place; None when nothing is saved."""
        saved = self._latest()
        if saved is None:
            return None
        self._check_key(saved, self.key, "key")
        self._check_key(saved, self._structure(problem, state, update), "structure")
        _check_tensors(saved["_path"], saved["factors"], state.factors, "factors")
        if (saved["biases"] is None) != (state.biases is None):
            raise _refuse(Path(saved["_path"]), "holds biases where this fit has none, or none")
        if saved["biases"] is not None:
            _check_tensors(saved["_path"], saved["biases"], state.biases, "biases")
        try:
            if saved["update"] is not None:
                update.load_state_dict(saved["update"])
            if saved["callback"] is not None and hasattr(callback, "load_state_dict"):
                callback.load_state_dict(saved["callback"])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
            raise _refuse(
                Path(saved["_path"]), f"holds a record this fit cannot use ({exc})"
            ) from exc
        state.factors = problem.place(saved["factors"])
        if saved["biases"] is not None:
            state.biases = problem.place(saved["biases"])
        state.mean = float(saved["mean"])
        return saved
