"""Where each modality's block lives: the one place that turns ``devices`` into torch devices."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["available_or_cpu", "resolve_devices"]


def _one_device(spec, name: str) -> torch.device:
    if isinstance(spec, torch.device):
        dev = spec
    elif isinstance(spec, str):
        try:
            dev = torch.device(spec)
        except RuntimeError as exc:
            raise ValueError(f"{name}: {spec!r} is not a valid torch device string.") from exc
    else:
        raise TypeError(
            f"{name} must be a device string such as 'cpu' or 'cuda:0', got {type(spec).__name__}."
        )
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name}: device {spec!r} is unavailable (CUDA is not available).")
        index = 0 if dev.index is None else dev.index
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"{name}: device {spec!r} is unavailable; this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
        return torch.device("cuda", index)
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"{name}: device {spec!r} is unavailable (MPS is not available).")
        return dev
    raise ValueError(f"{name}: device type {dev.type!r} is not supported (use 'cpu' or 'cuda').")


def resolve_devices(devices, order: int, name: str = "devices") -> list[torch.device]:
    """One torch device per mode.

    ``None`` places every mode on the CPU, a single device string (or ``torch.device``) places
    all modes there, and a list gives one device per mode.
    """
    if devices is None:
        return [torch.device("cpu")] * order
    if isinstance(devices, (str, torch.device)):
        return [_one_device(devices, name)] * order
    if not isinstance(devices, Sequence):
        raise TypeError(
            f"{name} must be None, a device string or a list of {order} device strings, got "
            f"{type(devices).__name__}."
        )
    if len(devices) != order:
        raise ValueError(
            f"{name} has {len(devices)} entries but X has {order} modes; give one device per "
            "mode or a single device for all."
        )
    return [_one_device(d, f"{name}[{k}]") for k, d in enumerate(devices)]


def available_or_cpu(devices: Sequence[str]) -> list[torch.device]:
    """The fitted devices where they exist on this machine, else the CPU.

    A model fitted on GPUs and loaded (unpickled) on a CPU-only machine still transforms.
    """
    out = []
    for spec in devices:
        dev = torch.device(spec)
        usable = (
            dev.type == "cpu"
            or (
                dev.type == "cuda"
                and torch.cuda.is_available()
                and (dev.index or 0) < torch.cuda.device_count()
            )
            or (dev.type == "mps" and torch.backends.mps.is_available())
        )
        out.append(dev if usable else torch.device("cpu"))
    return out
