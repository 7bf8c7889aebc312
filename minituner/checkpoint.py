"""Saving and loading models: safetensors for tensors, JSON for the config. Never pickle.

A checkpoint is two files side by side, written atomically (a temporary file in the
same folder, then ``os.replace``), so a crash never leaves half a file behind:

    NAME.safetensors   every tensor by its parameter name
    NAME.json          {"config": GPTConfig fields, "metadata": {...}}

``fingerprint(model)`` is a short hash of a model's tensors; adapters record the
fingerprint of the base they were trained on so they refuse to load onto another.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .model import GPT, GPTConfig


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path) on a temporary file next to path, then rename it onto path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_tensors(tensors: dict, path, metadata: dict | None = None) -> None:
    """safetensors file (its string metadata holds the JSON of `metadata`), written atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {"minituner": json.dumps(metadata or {})}
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata=meta))


def save_json(obj: dict, path) -> None:
    def write(tmp):
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")

    atomic_write(Path(path), write)


def fingerprint(model: torch.nn.Module) -> str:
    """sha256 over every tensor's name, shape and bytes (first 16 hex digits)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def save_model(model: GPT, path, metadata: dict | None = None) -> Path:
    """Write path.safetensors and path.json; returns the .safetensors path."""
    path = Path(path).with_suffix("")
    meta = dict(metadata or {}, fingerprint=fingerprint(model))
    save_tensors(model.state_dict(), path.with_suffix(".safetensors"), meta)
    save_json({"config": model.config.to_dict(), "metadata": meta}, path.with_suffix(".json"))
    return path.with_suffix(".safetensors")


def check_state(expected: dict, got: dict, what: str) -> None:
    """ValueError naming the first tensor that is missing, extra, or of another shape."""
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if missing or extra:
        raise ValueError(f"{what}: missing tensors {missing[:5]}, unexpected tensors {extra[:5]}")
    for name, t in expected.items():
        if tuple(got[name].shape) != tuple(t.shape):
            raise ValueError(f"{what}: tensor {name!r} has shape {tuple(got[name].shape)}, "
                             f"the model needs {tuple(t.shape)}")


def load_model(path) -> tuple[GPT, dict]:
    """Load a GPT saved by save_model; returns (model, metadata)."""
    path = Path(path).with_suffix("")
    info = json.loads(path.with_suffix(".json").read_text())
    try:
        config = GPTConfig(**info["config"])
    except TypeError as e:
        raise ValueError(f"{path.with_suffix('.json')}: the config is not a GPTConfig ({e})") from None
    model = GPT(config)
    state = load_file(str(path.with_suffix(".safetensors")))
    check_state(model.state_dict(), state, str(path.with_suffix(".safetensors")))
    model.load_state_dict(state)
    model.eval()
    return model, info.get("metadata", {})


ASSETS = Path(__file__).parent / "assets"
BASE_NAME = "base"


def load_base(path=None) -> GPT:
    """The shipped pretrained tiny GPT (made by ``minituner pretrain``): no training needed."""
    path = Path(path) if path is not None else ASSETS / BASE_NAME
    if not path.with_suffix(".safetensors").exists():
        raise FileNotFoundError(f"no base model at {path.with_suffix('.safetensors')}; "
                                f"make one with `minituner pretrain --out {path}`")
    return load_model(path)[0]


def base_metadata(path=None) -> dict:
    path = Path(path) if path is not None else ASSETS / BASE_NAME
    return json.loads(path.with_suffix(".json").read_text())["metadata"]
