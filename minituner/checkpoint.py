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

Why a kill never loses the last good copy. A save (``_save_pair``: minituner's two layouts and
PEFT's format, written by peft_format.py, all go through it)
    1. takes an exclusive lock (flock) on the folder the two files live in: saves into one
       folder take turns (threads and processes alike); a save waits at most LOCK_WAIT seconds,
       then gives up naming the process that holds the lock (one stopped with Ctrl-Z, say);
    2. writes the new safetensors file under a temporary name, fsyncs it and renames it over
       the old one (rename(2) is atomic: the name holds the old file or the new, never a part);
    3. does the same for the JSON file.
The folder is never moved or emptied, so a symlink to it is written through and stays a link.
Between 2 and 3 the folder holds the new tensors file beside the old JSON file. The tensors
file carries a copy of the new JSON object and records, as ``replaces``, the hash
(``record_sha256``) of the JSON object that was on disk when the save began; the loader
recognises exactly that state and loads the new model with the tensors file's copy. So at
every instant the path loads as the old complete model or the new complete one
(tests/test_checkpoint.py kills saves at every step and at random).

Loads take no lock, so a stopped saver never stops a reader. A load reads the JSON file, then
the tensors file, then checks that the JSON file at the path is still the one it read (the same
inode): then both were on disk together, a state a save passes through; otherwise a save went
by in between and it reads again (READ_TRIES times at most).

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
import time
import warnings
from pathlib import Path

import torch
from safetensors.torch import save

from .files import (
    check_weights,
    file_id,
    not_a_file,
    parse_json,
    read_json,
    read_metadata,
    read_safetensors,
    read_with_id,
    too_long,
)
from .model import GPT, GPTConfig

MARKER = ".minituner-"  # every name minituner writes for itself starts with it
TMP_PREFIX = MARKER + "tmp-"
ADAPTER_CONFIG, ADAPTER_TENSORS = "adapter_config.json", "adapter_model.safetensors"
LOCK_WAIT = 60.0  # seconds a save waits for another save into the same folder before it gives up
READ_TRIES = 50  # a load reads again when a save replaced the files meanwhile, this many times at most

_held = threading.local()  # the folders this thread has locked: {real path: fd}


def lock_holder(fd: int) -> str:
    """'process PID' holding a flock on fd's file, from /proc/locks (Linux), else 'another process'."""
    st = os.fstat(fd)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with contextlib.suppress(OSError):
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if "FLOCK" in fields and "->" not in fields and inode in fields:
                return f"process {fields[fields.index(inode) - 1]}"
    return "another process"


def _flock(fd: int, folder: str) -> None:
    """Take the exclusive flock on fd, waiting LOCK_WAIT seconds at most; then a TimeoutError naming the holder."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                who = lock_holder(fd)
                raise TimeoutError(f"{folder}: {who} has been saving into this folder for more than {LOCK_WAIT:g} s "
                                   f"and holds its lock (stopped, e.g. with Ctrl-Z?); let it finish or end it, "
                                   f"then save again") from None
            time.sleep(0.01)


@contextlib.contextmanager
def locked(folder):
    """Hold the exclusive flock on folder (saves into it take turns); re-entrant within a thread.

    Taking the lock first removes the temporary files a killed writer left there."""
    key = os.path.realpath(folder)
    held = _held.__dict__.setdefault("folders", {})
    if key in held:
        yield held[key]
        return
    fd = os.open(key, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _flock(fd, key)
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
    if too_long(path, room=len(".safetensors")):  # save_model writes NAME.safetensors
        raise ValueError(f"cannot save there: {too_long(path, room=len('.safetensors'))}")


def check_writable(folder, only: tuple[str, ...] | None = None) -> Path:
    """Refuse, before any work, an output folder that cannot be written; returns it as a Path.

    The folder may exist or not (a save creates it and its parents). A ValueError names it when
    it is empty text, is a file, lies under a file, or the nearest existing folder above it
    cannot be written; with ``only``, also when it exists holding files other than those."""
    if isinstance(folder, str) and not folder.strip():
        raise ValueError("the output folder is empty; give a folder name")
    if too_long(folder):
        raise ValueError(f"cannot write there: {too_long(folder)}")
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


def check_ours(tensors_path: Path, json_path: Path) -> None:
    """Refuse, before any work, to save over a pair that minituner did not write: a JSON file with no
    tensors file beside it, or a tensors file without minituner's record (or either not a regular file)."""
    for p in (tensors_path, json_path):
        kind = not_a_file(p)
        if kind:
            raise ValueError(f"save path {p} is {kind}, not a file; remove it or give another name")
    if json_path.exists() and not tensors_path.exists():
        raise ValueError(f"{json_path} was not written by minituner ({tensors_path.name} is not beside it); "
                         f"move it away or give another name")
    if tensors_path.exists():
        try:
            ours = "minituner" in read_metadata(tensors_path)
        except (OSError, ValueError):
            ours = False
        if not ours:
            raise ValueError(f"{tensors_path} was not written by minituner (no minituner record in it, or it is "
                             f"damaged); move it away or give another name")


def _save_pair(tensors_path: Path, json_path: Path, obj: dict, tensors: dict, meta: dict, copy_key: str) -> None:
    """The one door of every model file: write the tensors file (meta, a copy of obj under copy_key, and
    what it replaces), then obj as the JSON file (the caller holds the folder's lock)."""
    check_ours(tensors_path, json_path)
    replaces = ""  # record_sha256 of the JSON object that stays beside the new tensors until step 3
    with contextlib.suppress(OSError, ValueError):
        replaces = record_sha256(read_json(json_path))
    meta = dict(meta, **{copy_key: json.dumps(obj, sort_keys=True), "minituner_replaces": replaces})
    atomic_write(tensors_path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    atomic_write(json_path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n"))


def load_pair(tensors_path: Path, json_path: Path, copy_key: str) -> tuple[dict, dict, dict]:
    """(JSON object, tensors' metadata, tensors) of a pair written by _save_pair, read with no lock (see the
    module docstring); a pair with no copy_key in its metadata (PEFT's own) is read as it is."""
    for _ in range(READ_TRIES):
        data, ident = read_with_id(json_path)
        meta, tensors = read_safetensors(tensors_path)
        if file_id(json_path) == ident:  # the JSON file stayed: the two were on disk together
            break
    else:
        raise ValueError(f"{json_path} was replaced {READ_TRIES} times while it was read: another process keeps "
                         f"saving there; load it when that save is done")
    saved = parse_json(data, json_path)
    if copy_key not in meta:
        return saved, meta, tensors
    try:
        new = json.loads(meta[copy_key])
    except ValueError:
        new = None
    if not isinstance(new, dict):  # not an assert: `python -O` would drop the check
        raise ValueError(f"{tensors_path}: its copy of {json_path.name} is damaged")
    if record_sha256(saved) == record_sha256(new):
        return saved, meta, tensors
    if record_sha256(saved) == meta.get("minituner_replaces"):  # a save stopped between its two renames
        warnings.warn(f"{json_path} is from the save before the one {tensors_path.name} holds (that save was "
                      f"interrupted); loading the newer model, whose record the tensors file carries", stacklevel=3)
        return new, meta, tensors
    if copy_key == "minituner" and saved.get("sha256") != record_sha256(saved):
        raise ValueError(f"{json_path}: its contents no longer give the sha256 recorded when it was saved: "
                         f"the file was edited or damaged; change a model by saving it again, not by editing")
    raise ValueError(f"{json_path} and {tensors_path.name} come from different saves: the sha256 differs; "
                     f"save the model again")


def _save_record(tensors_path: Path, json_path: Path, info: dict, tensors: dict) -> None:
    """minituner's own layouts: info + the tensors' sha256 + the sha256 of both, through _save_pair."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    record = dict(info, tensors_sha256=tensors_sha256(tensors))
    record["sha256"] = record_sha256(record)
    _save_pair(tensors_path, json_path, record, tensors, {}, "minituner")


def _load_record(tensors_path: Path, json_path: Path) -> tuple[dict, dict]:
    """(record, tensors) of a pair written by _save_record, every hash checked; a ValueError naming the file."""
    if not os.path.lexists(tensors_path):
        raise ValueError(f"{tensors_path} is missing")
    if not os.path.lexists(json_path):
        raise ValueError(f"{json_path} is missing (it is written beside {tensors_path.name})")
    record, meta, tensors = load_pair(tensors_path, json_path, "minituner")
    if "minituner" not in meta:
        raise ValueError(f"{tensors_path} was not written by minituner's save: its metadata holds no minituner "
                         f"record (a file of another program; minituner reads its own folders and PEFT's)")
    if record.get("sha256") != record_sha256(record):
        raise ValueError(f"{json_path}: the sha256 differs from its record of what was saved; the file was edited "
                         f"or damaged; change a model by saving it again, not by editing")
    if tensors_sha256(tensors) != record.get("tensors_sha256"):
        raise ValueError(f"{tensors_path}: the tensors' sha256 differs from the one recorded when it was saved; "
                         "the file is damaged")
    return record, tensors


def _stem(path) -> Path:
    """The save name: path as given, less a trailing .safetensors or .json (no other suffix is touched)."""
    path = Path(path)
    for ext in (".safetensors", ".json"):
        if path.name.endswith(ext) and len(path.name) > len(ext):
            return path.with_name(path.name[: -len(ext)])
    return path


def _pair(stem: Path) -> tuple[Path, Path]:
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def plain_state(model) -> dict:
    """model's state_dict, when model is a plain GPT (what load_model rebuilds); else a TypeError saying
    what to save instead (a PeftModel, or a GPT that still holds adapter layers)."""
    if not isinstance(model, GPT):
        raise TypeError(f"save_model saves a GPT, got {type(model).__name__}; save an adapter with "
                        f"model.save_pretrained(dir), or a merged model with save_model(model.merge_and_unload(), path)")
    with torch.device("meta"):  # the names and shapes load_model will expect, without the memory
        expected = GPT(model.config).state_dict()
    state = model.state_dict()
    if state.keys() != expected.keys():
        extra = sorted(set(state) - set(expected))
        raise TypeError(f"save_model: this GPT holds tensors a plain GPT has not ({extra[:3]}): an adapter is still "
                        f"in it; save the adapter with save_pretrained, or save merge_and_unload()'s model")
    return state


def save_model(model: GPT, path, metadata: dict | None = None) -> Path:
    """Write path.safetensors and path.json (path's dots kept); returns the .safetensors path.

    path names the pair, not a folder: an existing folder, or a name ending in "/", is refused
    (``minituner pretrain --out DIR`` writes DIR/base; pass DIR/NAME)."""
    if str(path).endswith(("/", os.sep)) or Path(path).is_dir():
        raise ValueError(f"save path {path} is a folder; save_model writes NAME.safetensors + NAME.json, "
                         f"give a name in it (e.g. {Path(path) / BASE_NAME})")
    state = plain_state(model)
    stem = _stem(path)
    check_name(stem)
    check_writable(stem.parent)
    tensors_path, json_path = _pair(stem)
    check_ours(tensors_path, json_path)
    meta = dict(metadata or {}, fingerprint=fingerprint(model))
    stem.parent.mkdir(parents=True, exist_ok=True)
    with locked(stem.parent):
        _save_record(tensors_path, json_path, {"config": model.config.to_dict(), "metadata": meta}, state)
    return tensors_path


def check_state(expected: dict, got: dict, what: str) -> None:
    """ValueError naming the first tensor that is missing, extra, of another shape, not floating point,
    or not finite (NaN, inf: files.check_weights)."""
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if missing or extra:
        raise ValueError(f"{what}: missing tensors {missing[:5]}, unexpected tensors {extra[:5]}")
    for name, t in expected.items():
        if tuple(got[name].shape) != tuple(t.shape):
            raise ValueError(f"{what}: tensor {name!r} has shape {tuple(got[name].shape)}, "
                             f"the model needs {tuple(t.shape)}")
    check_weights(got, what)


def _check_fields(record: dict, where: Path, fields: dict) -> None:
    """ValueError naming the file when a field is missing or of another type than fields[name]."""
    for name, kind in fields.items():
        if not isinstance(record.get(name), kind):
            raise ValueError(f"{where}: {name!r} must be a {kind.__name__}, got {record.get(name)!r:.60}")


def load_model(path) -> tuple[GPT, dict]:
    """Load a GPT saved by save_model (path with or without .safetensors); returns (model, metadata)."""
    tensors_path, json_path = _pair(_stem(path))
    if not os.path.lexists(tensors_path):
        raise FileNotFoundError(f"no saved model at {tensors_path}")
    record, state = _load_record(tensors_path, json_path)
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


def check_folder(path, tensors_name: str = ADAPTER_TENSORS, json_name: str = ADAPTER_CONFIG) -> Path:
    """Refuse, before any work, a folder a save of that pair cannot use: one that cannot be written,
    holds other files, or holds files of that name that minituner did not write; returns it."""
    check_name(Path(path))
    folder = check_writable(path, only=(json_name, tensors_name))
    check_ours(folder / tensors_name, folder / json_name)
    return folder


def save_folder(path, info: dict, tensors: dict, meta: dict | None = None, copy_key: str = "") -> Path:
    """Write path/adapter_config.json + path/adapter_model.safetensors (see the module docstring for how
    the pair is replaced); returns path. Without copy_key: minituner's record of info (hashes included);
    with one (PEFT's format): info as the JSON file as it is, meta in the tensors file."""
    folder = check_folder(path)
    folder.mkdir(parents=True, exist_ok=True)
    with locked(folder):
        check_folder(folder)  # again, now that no one else writes
        if copy_key:
            _save_pair(folder / ADAPTER_TENSORS, folder / ADAPTER_CONFIG, info, tensors, meta or {}, copy_key)
        else:
            _save_record(folder / ADAPTER_TENSORS, folder / ADAPTER_CONFIG, info, tensors)
    return Path(path)


def load_folder(path) -> tuple[dict, dict]:
    """(info, tensors) of a folder written by save_folder; a ValueError naming the file when one is
    missing, does not parse, was edited, or does not match the other (see the module docstring)."""
    path = Path(path)
    if not path.is_dir():
        what = f"it is {not_a_file(path) or 'a file'}" if os.path.exists(path) else \
            f"{ADAPTER_CONFIG} is missing (no such folder)"
        raise ValueError(f"{path} is not a saved model folder: {what}")
    info, tensors = _load_record(path / ADAPTER_TENSORS, path / ADAPTER_CONFIG)
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


def check_base_folder(folder) -> Path:
    """What `minituner pretrain --out DIR` may write into, refused before training: a folder that holds only
    base.safetensors + base.json written by minituner (or nothing). The package's assets folder holds other
    files by design: there only the pair is checked."""
    names = _pair(Path(BASE_NAME))
    if Path(folder).resolve() == ASSETS.resolve():
        check_ours(*_pair(ASSETS / BASE_NAME))
        return Path(folder)
    return check_folder(folder, names[0].name, names[1].name)


def load_base(path=None) -> GPT:
    """The shipped pretrained tiny GPT (made by ``minituner pretrain``), or the base at path:
    a folder written by ``minituner pretrain --out DIR``, or a path given to save_model."""
    return load_model(_base_stem(path))[0]


def base_metadata(path=None) -> dict:
    """The metadata saved with a base (its recipe and scores), checked like load_base."""
    return load_model(_base_stem(path))[1]
