"""Where tensors live: one check before any work starts, and the GPU's peak memory.

    check_device("cpu")      -> torch.device("cpu")
    check_device("cuda:1")   -> torch.device("cuda:1"), if this PyTorch has CUDA and that GPU exists
    check_device("tpu")      -> ValueError listing the choices

Every ``minituner`` command and ``train()`` call it first, so a wrong device is one clear
line before training, never a torch error after it (e.g. the CPU build's AttributeError
from ``torch.cuda.reset_peak_memory_stats``).
"""

from __future__ import annotations

import torch

CHOICES = ("cpu", "cuda", "cuda:N", "mps")


def check_device(device) -> torch.device:
    """The torch.device for `device` (a str or torch.device), or a ValueError saying why not."""
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {str(device)!r}; the choices are {', '.join(CHOICES)}") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if torch.version.cuda is None:
            raise ValueError(f"CUDA was requested but this PyTorch ({torch.__version__}) has no CUDA; "
                             f"use --device cpu")
        if not torch.cuda.is_available():
            raise ValueError(f"CUDA was requested but no GPU is visible to PyTorch ({torch.__version__}); "
                             f"use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r} does not exist: this machine has "
                             f"{torch.cuda.device_count()} GPU(s), cuda:0..cuda:{torch.cuda.device_count() - 1}")
        return dev
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"MPS was requested but this PyTorch ({torch.__version__}) on this machine "
                             f"has no MPS; use --device cpu")
        return dev
    raise ValueError(f"unsupported device {str(device)!r}; the choices are {', '.join(CHOICES)}")

