"""Saving and loading models: safetensors for tensors, JSON for the config. Never pickle.

Two layouts, one pair of files each:

    save_model(model, "d/NAME")    d/NAME.safetensors  +  d/NAME.json
                                   JSON: {"config": GPTConfig fields, "metadata": {...}, ...}
    model.save_pretrained("DIR")   DIR/adapter_model.safetensors  +  DIR/adapter_config.json  (PEFT's)
                                   JSON: {"method", "config", "base_fingerprint", "minituner_version", ...}

Every name is used as given: "d/base.v2" is d/base.v2.safetensors, never d/base.safetensors
(only a trailing ".safetensors" or ".json" is taken off a save_model path).

What ties the pair together. The JSON file also holds ``tensors_sha256`` (tensors_sha256 of the
tensors) and ``sha256``: the sha256 of the canonical JSON of everything else in it, so the hash
covers the config as well as the tensors. The safetensors file carries a copy of that record in
its metadata. A load refuses, naming the file: a JSON file whose contents no longer give its
``sha256`` (edited by hand), a tensors file whose tensors or record do not match (a flipped
byte, a truncated file), and two files of different saves side by side.

Why a kill never loses the last good copy. A save
    1. takes an exclusive lock (flock) on the folder the two files live in: saves into one
       folder wait for each other (threads and processes alike); loads take a shared lock;
    2. writes the new safetensors file under a temporary name, fsyncs it and renames it over
       the old one (rename(2) is atomic: the name holds the old file or the new, never a part);
    3. does the same for the JSON file.
The folder is never moved or emptied, so a symlink to it is written through and stays a link.
Between 2 and 3 the folder holds the new tensors file beside the old JSON file. The tensors
file records, as ``replaces``, the ``sha256`` of the JSON file that was on disk when the save
began; the loader recognises exactly that state and loads the new model from the tensors
file's own copy of the record. So at every instant the path loads as the old complete model
or the new complete one (tests/test_checkpoint.py kills saves at every step and at random).

Temporary files are ``.minituner-tmp-<random hex>``: save names starting with ``.minituner-``
are refused, so no user file has such a name. A writer removes the ones it finds in its folder
while it holds the lock, when no other minituner writer can be using them.

``fingerprint(model)`` is a short hash of a model's tensors; a saved method records the
fingerprint of the base it was trained on and refuses to load onto another.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import threading
import warnings
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from .model import GPT, GPTConfig

MARKER = ".minituner-"  # every name minituner writes for itself starts with it
TMP_PREFIX = MARKER + "tmp-"
ADAPTER_CONFIG, ADAPTER_TENSORS = "adapter_config.json", "adapter_model.safetensors"

_held = threading.local()  # the folders this thread has locked: {real path: fd}


@contextlib.contextmanager
def locked(folder, exclusive: bool = True):
    """Hold flock on folder (exclusive to write, shared to read); re-entrant within a thread.

    Taking the exclusive lock first removes the temporary files a killed writer left there."""
    key = os.path.realpath(folder)
    held = _held.__dict__.setdefault("folders", {})
    if key in held:
        yield held[key]
        return
    fd = os.open(key, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        if exclusive:
            for name in os.listdir(key):
                if name.startswith(TMP_PREFIX):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(key, name))
        held[key] = fd
        try:
            yield fd
        finally:
            del held[key]
    finally:
        os.close(fd)  # closing releases the lock


def _through_link(path) -> Path:
    """path, or where it points when it is a symlink (a save writes through a link)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def check_name(path: Path) -> None:
    """A save name: not empty, not '.' or '..', not one of minituner's temporary names."""
    name = Path(path).name
    if name in ("", ".", ".."):
        raise ValueError(f"save path {str(path)!r} has no name; give a file or folder name")
    if name.startswith(MARKER):
        raise ValueError(f"save path {path}: names starting with {MARKER!r} are minituner's "
                         f"temporary files; choose another name")


def check_writable(folder, only: tuple[str, ...] | None = None) -> Path:
    """Refuse, before any work, an output folder that cannot be written; returns it as a Path.

    The folder may exist or not (a save creates it and its parents). A ValueError names it when
    it is empty text, is a file, lies under a file, or the nearest existing folder above it
    cannot be written; with ``only``, also when it exists holding files other than those."""
    if isinstance(folder, str) and not folder.strip():
        raise ValueError("the output folder is empty; give a folder name")
    folder = _through_link(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"save path {folder} is an existing file; give a folder name"
                         + (f" (it will hold {' and '.join(only)})" if only else ""))
    nearest = folder
    while not nearest.exists() and not nearest.is_symlink():
        nearest = nearest.parent
    if not nearest.is_dir():
        raise ValueError(f"cannot write {folder}: {nearest} is a file, not a folder")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {folder}: no permission to write in {nearest}")
    if only is not None and folder.is_dir():
        other = sorted(n for n in os.listdir(folder) if n not in only and not n.startswith(TMP_PREFIX))
        if other:
            raise ValueError(f"save path {folder} is a folder with other files in it ({', '.join(other[:3])}); "
                             f"give a new or empty folder")
    return folder


def atomic_write(path, write) -> None:
    """Call write(tmp) on a temporary file in path's folder, fsync it, then rename it onto path.

    Holds the folder's lock; a symlink at path is written through."""
    path = _through_link(path)
    check_name(path)
    check_writable(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path.parent) as folder_fd:
        tmp = path.parent / f"{TMP_PREFIX}{secrets.token_hex(8)}"
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies
        mode = os.stat(tmp).st_mode
        try:
            write(str(tmp))
            os.chmod(tmp, mode)  # in case the writer made the file anew (with another mode)
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.fsync(folder_fd)  # the rename itself reaches the disk


def save_file(tensors: dict, path, metadata: dict[str, str]) -> None:
    """Write a safetensors file at exactly path (safetensors' own save_file writes a temporary
    file of its own beside it first, which a kill would leave behind under a name we do not own)."""
    with open(path, "wb") as f:
        f.write(save(tensors, metadata=metadata))


def tensors_sha256(tensors: dict) -> str:
    """sha256 over every tensor's name, shape, dtype and bytes, in name order (64 hex digits)."""
    h = hashlib.sha256()
    for name, t in sorted(tensors.items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())  # the raw bytes: bfloat16 has no numpy type
    return h.hexdigest()


def fingerprint(model: torch.nn.Module) -> str:
    """The first 16 hex digits of tensors_sha256 over the model's state_dict."""
    return tensors_sha256(model.state_dict())[:16]


def record_sha256(record: dict) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of record without its "sha256" key."""
    rest = {k: v for k, v in record.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_json(path: Path) -> dict:
    """The JSON object in path; a ValueError naming the file (and the line) when it does not parse."""
    try:
        obj = json.loads(Path(path).read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        why = f"{e.msg} at line {e.lineno}, column {e.colno}" if isinstance(e, json.JSONDecodeError) else e.reason
        raise ValueError(f"{path}: not valid JSON ({why})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: must hold a JSON object, got {type(obj).__name__}")
    return obj


def _save_pair(tensors_path: Path, json_path: Path, info: dict, tensors: dict) -> None:
    """Write the tensors file, then the JSON file (the caller holds the folder's lock)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    record = dict(info, tensors_sha256=tensors_sha256(tensors))
    record["sha256"] = record_sha256(record)
    replaces = ""  # the sha256 of the JSON file that stays beside the new tensors until step 3
    with contextlib.suppress(OSError, ValueError):
        old = read_json(json_path).get("sha256")
        replaces = old if isinstance(old, str) else ""
    meta = {"minituner": json.dumps(record, sort_keys=True), "minituner_replaces": replaces}
    atomic_write(tensors_path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    atomic_write(json_path, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n"))


def _read_tensors(path: Path) -> tuple[dict, dict]:
    """(record, tensors) of a tensors file written by _save_pair, both checked against its hashes."""
    if not path.is_file():
        raise ValueError(f"{path} is missing")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
    except Exception as e:  # safetensors that do not parse: truncated, garbled header
        raise ValueError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    if "minituner" not in meta:
        raise ValueError(f"{path} was not written by minituner's save: its metadata holds no minituner record "
                         f"(a file of another program; minituner reads its own folders and PEFT's)")
    try:
        record = json.loads(meta["minituner"])
        ok = isinstance(record, dict) and record.get("sha256") == record_sha256(record)
    except json.JSONDecodeError:
        ok = False
    if not ok:
        raise ValueError(f"{path}: the sha256 differs from its record of what was saved, or the record is "
                         f"missing; the file is damaged, or was not written by this version of minituner's save")
    if tensors_sha256(tensors) != record.get("tensors_sha256"):
        raise ValueError(f"{path}: the tensors' sha256 differs from the one recorded when it was saved; "
                         "the file is damaged")
    return dict(record, replaces=meta.get("minituner_replaces", "")), tensors


def _load_pair(tensors_path: Path, json_path: Path) -> tuple[dict, dict]:
    """(record, tensors) of a pair written by _save_pair; a ValueError naming the file at fault."""
    with locked(tensors_path.parent, exclusive=False):
        record, tensors = _read_tensors(tensors_path)
        replaces = record.pop("replaces")
        if not json_path.is_file():
            raise ValueError(f"{json_path} is missing (it is written beside {tensors_path.name})")
        saved = read_json(json_path)
    if saved.get("sha256") != record_sha256(saved):
        raise ValueError(f"{json_path}: its contents no longer give the sha256 recorded when it was saved: "
                         f"the file was edited or damaged; change a model by saving it again, not by editing")
    if saved["sha256"] == record["sha256"]:
        return record, tensors
    if saved["sha256"] == replaces:  # a save stopped between its two renames: the new model is complete
        warnings.warn(f"{json_path} is from the save before the one {tensors_path.name} holds (that save was "
                      f"interrupted); loading the newer model, whose record the tensors file carries", stacklevel=3)
        return record, tensors
    raise ValueError(f"{json_path} and {tensors_path.name} come from different saves: the sha256 differs; "
                     f"save the model again")


def _stem(path) -> Path:
    """The save name: path as given, less a trailing .safetensors or .json (no other suffix is touched)."""
    path = Path(path)
    for ext in (".safetensors", ".json"):
        if path.name.endswith(ext) and len(path.name) > len(ext):
            return path.with_name(path.name[: -len(ext)])
    return path


def _pair(stem: Path) -> tuple[Path, Path]:
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save_model(model: GPT, path, metadata: dict | None = None) -> Path:
    """Write path.safetensors and path.json (path's dots kept); returns the .safetensors path."""
    stem = _stem(path)
    check_name(stem)
    check_writable(stem.parent)
    meta = dict(metadata or {}, fingerprint=fingerprint(model))
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors_path, json_path = _pair(stem)
    with locked(stem.parent):
        _save_pair(tensors_path, json_path, {"config": model.config.to_dict(), "metadata": meta},
                   model.state_dict())
    return tensors_path


def check_state(expected: dict, got: dict, what: str) -> None:
    """ValueError naming the first tensor that is missing, extra, or of another shape."""
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if missing or extra:
        raise ValueError(f"{what}: missing tensors {missing[:5]}, unexpected tensors {extra[:5]}")
    for name, t in expected.items():
        if tuple(got[name].shape) != tuple(t.shape):
            raise ValueError(f"{what}: tensor {name!r} has shape {tuple(got[name].shape)}, "
                             f"the model needs {tuple(t.shape)}")


def _check_fields(record: dict, where: Path, fields: dict) -> None:
    """ValueError naming the file when a field is missing or of another type than fields[name]."""
    for name, kind in fields.items():
        if not isinstance(record.get(name), kind):
            raise ValueError(f"{where}: {name!r} must be a {kind.__name__}, got {record.get(name)!r:.60}")


def load_model(path) -> tuple[GPT, dict]:
    """Load a GPT saved by save_model (path with or without .safetensors); returns (model, metadata)."""
    tensors_path, json_path = _pair(_stem(path))
    if not tensors_path.exists():
        raise FileNotFoundError(f"no saved model at {tensors_path}")
    record, state = _load_pair(tensors_path, json_path)
    _check_fields(record, json_path, {"config": dict, "metadata": dict})
    try:
        config = GPTConfig(**record["config"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{json_path}: the config is not a GPTConfig ({e})") from None
    model = GPT(config)
    check_state(model.state_dict(), state, str(tensors_path))
    model.load_state_dict(state)
    model.eval()
    return model, record["metadata"]


def save_folder(path, info: dict, tensors: dict) -> Path:
    """Write info and tensors as path/adapter_config.json + path/adapter_model.safetensors
    (see the module docstring for how the pair is replaced); returns path."""
    check_name(Path(path))
    folder = check_writable(path, only=(ADAPTER_CONFIG, ADAPTER_TENSORS))
    folder.mkdir(parents=True, exist_ok=True)
    with locked(folder):
        check_writable(folder, only=(ADAPTER_CONFIG, ADAPTER_TENSORS))  # again, now that no one else writes
        _save_pair(folder / ADAPTER_TENSORS, folder / ADAPTER_CONFIG, info, tensors)
    return Path(path)


def load_folder(path) -> tuple[dict, dict]:
    """(info, tensors) of a folder written by save_folder; a ValueError naming the file when one is
    missing, does not parse, was edited, or does not match the other (see the module docstring)."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path} is not a saved model folder: {ADAPTER_CONFIG} is missing (no such folder)")
    info, tensors = _load_pair(path / ADAPTER_TENSORS, path / ADAPTER_CONFIG)
    _check_fields(info, path / ADAPTER_CONFIG, {"method": str, "config": dict, "base_fingerprint": str})
    return info, tensors


ASSETS = Path(__file__).parent / "assets"
BASE_NAME = "base"


def _base_stem(path) -> Path:
    """The shipped base (None), a folder written by `minituner pretrain --out DIR` (DIR/base), or a save_model path."""
    if path is None:
        return ASSETS / BASE_NAME
    path = Path(path)
    if path.is_dir():
        if not _pair(path / BASE_NAME)[0].exists():
            raise FileNotFoundError(f"{path} is a folder without {BASE_NAME}.safetensors; pass the folder "
                                    f"`minituner pretrain --out DIR` wrote, or the path given to save_model")
        return path / BASE_NAME
    stem = _stem(path)
    if not _pair(stem)[0].exists():
        raise FileNotFoundError(f"no base model at {path} (neither a folder holding {BASE_NAME}.safetensors nor "
                                f"{_pair(stem)[0]}); make one with `minituner pretrain --out {path}`")
    return stem


def load_base(path=None) -> GPT:
    """The shipped pretrained tiny GPT (made by ``minituner pretrain``), or the base at path:
    a folder written by ``minituner pretrain --out DIR``, or a path given to save_model."""
    return load_model(_base_stem(path))[0]


def base_metadata(path=None) -> dict:
    """The metadata saved with a base (its recipe and scores), checked like load_base."""
    return load_model(_base_stem(path))[1]
