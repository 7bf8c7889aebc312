"""Saving and loading models: safetensors for tensors, JSON for the config. Never pickle.

A base model is two files side by side, each written atomically (a temporary file in the
same folder, then ``os.replace``), so a crash never leaves half a file behind:

    NAME.safetensors   every tensor by its parameter name
    NAME.json          {"config": GPTConfig fields, "metadata": {...}}

A method's model (``model.save_pretrained(DIR)``) is a folder, PEFT's layout, written into a
temporary folder that is renamed into place, so the pair is never torn:

    DIR/adapter_config.json        {"method", "config", "base_fingerprint", "tensors_sha256", "minituner_version"}
    DIR/adapter_model.safetensors  the method's tensors (``model.adapter_state_dict()``)

``fingerprint(model)`` is a short hash of a model's tensors; a saved method records the
fingerprint of the base it was trained on and refuses to load onto another, and the
sha256 of its own tensors, so a flipped byte is found on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
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
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
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


def tensors_sha256(tensors: dict) -> str:
    """sha256 over every tensor's name, shape, dtype and bytes, in name order (64 hex digits)."""
    h = hashlib.sha256()
    for name, t in sorted(tensors.items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def fingerprint(model: torch.nn.Module) -> str:
    """The first 16 hex digits of tensors_sha256 over the model's state_dict."""
    return tensors_sha256(model.state_dict())[:16]


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


def read_json(path: Path) -> dict:
    """The JSON object in path; a ValueError naming the file (and the line) when it does not parse."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None


def load_model(path) -> tuple[GPT, dict]:
    """Load a GPT saved by save_model; returns (model, metadata)."""
    path = Path(path).with_suffix("")
    info = read_json(path.with_suffix(".json"))
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


ADAPTER_CONFIG, ADAPTER_TENSORS = "adapter_config.json", "adapter_model.safetensors"


def save_folder(path, info: dict, tensors: dict) -> Path:
    """Write info (+ the tensors' sha256) and tensors into a temporary folder, then rename it to path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"save path {path} is an existing file; give a folder name (it will hold "
                         f"{ADAPTER_CONFIG} and {ADAPTER_TENSORS})")
    if path.is_dir() and set(os.listdir(path)) - {ADAPTER_CONFIG, ADAPTER_TENSORS}:
        raise ValueError(f"save path {path} is a folder with other files in it; give a new or empty folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # what a killed save left behind
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        save_file(tensors, str(tmp / ADAPTER_TENSORS))
        (tmp / ADAPTER_CONFIG).write_text(json.dumps(dict(info, tensors_sha256=tensors_sha256(tensors)),
                                                     indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the folder the usual permissions
        if path.is_dir():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
            os.replace(path, old / "old")  # the old pair leaves as a whole, the new one arrives as a whole
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def load_folder(path) -> tuple[dict, dict]:
    """(info, tensors) of a folder written by save_folder; a ValueError if a file is missing,
    does not parse, or the tensors' sha256 differs from the one recorded."""
    path = Path(path)
    cfg, st = path / ADAPTER_CONFIG, path / ADAPTER_TENSORS
    for f in (cfg, st):
        if not f.is_file():
            raise ValueError(f"{path} is not a saved model folder: {f.name} is missing")
    info, tensors = read_json(cfg), None
    try:
        tensors = load_file(str(st))
    except Exception as e:  # safetensors that do not parse
        raise ValueError(f"{st}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    if not isinstance(info, dict) or not {"method", "config", "base_fingerprint", "tensors_sha256"} <= set(info):
        raise ValueError(f"{cfg}: needs the keys method, config, base_fingerprint, tensors_sha256")
    if tensors_sha256(tensors) != info["tensors_sha256"]:
        raise ValueError(f"{st}: the tensors' sha256 differs from the one recorded in {ADAPTER_CONFIG}; "
                         "the file is damaged or belongs to another save")
    return info, tensors


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


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
