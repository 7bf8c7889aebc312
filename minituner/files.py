"""Reading files, checked: every file minituner reads comes in through here.

Each reader names the file (and the key or the line) in its error, and says what was wrong:
    missing                    FileNotFoundError "PATH: no such file"
    not a regular file         ValueError "PATH is a named pipe (or a folder, a device, a socket), not a file"
                               (found with fstat on a descriptor opened without blocking: a pipe is
                               never read, so a reader never waits on it)
    cannot be opened           the OSError's own type, one line: no permission, a name over 255
                               characters, a folder in the path that is a file
    does not parse             ValueError "PATH: not valid JSON at line L: ..." / "not a safetensors file: ..."

``read_safetensors`` reads the file's bytes from the one descriptor it opened (what it returns is
one file, whatever renames happen meanwhile) and checks the safetensors layout (8 bytes of
header length, a JSON header, the data) before safetensors parses it.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import torch
from safetensors.torch import load

KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a named pipe", stat.S_IFCHR: "a character device",
         stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}
NAME_MAX = 255  # bytes in one file name (Linux, macOS)


def not_a_file(path) -> str | None:
    """What path is when it exists and is not a regular file ("a named pipe", ...), else None (links followed)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else KINDS.get(stat.S_IFMT(mode), "not a regular file")


def too_long(path, room: int = 0) -> str | None:
    """Why path cannot exist when one of its names is over NAME_MAX bytes (NAME_MAX - room for the last), else None."""
    parts = Path(path).parts
    for i, p in enumerate(parts):
        limit = NAME_MAX - (room if i == len(parts) - 1 else 0)
        if len(os.fsencode(p)) > limit:
            return (f"the name {p[:20]!r}... in {Path(*parts[:i]) if i else '.'} is {len(os.fsencode(p))} bytes "
                    f"long, more than the {limit} bytes a name may have here")
    return None


def _why(path: Path, e: OSError) -> str:
    """One line on why path could not be opened."""
    if too_long(path):
        return too_long(path)
    if isinstance(e, FileNotFoundError):
        return f"{path}: no such file"
    if isinstance(e, NotADirectoryError):
        return f"{path}: a folder in this path is a file"
    if isinstance(e, PermissionError):
        return f"{path}: no permission to read it"
    return f"{path}: cannot be read ({e.strerror or e})"


def read_with_id(path, size: int = -1) -> tuple[bytes, tuple[int, int]]:
    """(the bytes of the regular file at path, the first size only if size >= 0, its (device, inode));
    errors as the module docstring says."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a named pipe opens at once and is then refused
    except OSError as e:
        raise type(e)(_why(path, e)) from None  # FileNotFoundError, PermissionError, ...: one line
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path} is {KINDS.get(stat.S_IFMT(st.st_mode), 'not a regular file')}, not a file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(size)
    except OSError as e:
        raise OSError(_why(path, e)) from None
    finally:
        os.close(fd)
    return data, (st.st_dev, st.st_ino)


def read_bytes(path) -> bytes:
    return read_with_id(path)[0]


def file_id(path) -> tuple[int, int] | None:
    """(device, inode) of what is at path now, None when nothing is."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def parse_json(data: bytes, path) -> dict:
    """The JSON object in data (read from path); a ValueError naming the file and the line."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: must hold a JSON object, got {type(obj).__name__}")
    return obj


def read_json(path) -> dict:
    """The JSON object in the file at path, checked (see the module docstring)."""
    return parse_json(read_bytes(path), path)


def read_text(path) -> str:
    """The UTF-8 text of the file at path; a ValueError naming the line of a byte that is not UTF-8."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ValueError(f"{path}, line {line}: not UTF-8 text (byte {data[e.start]:#04x}); save the file as UTF-8") from None


def parse_metadata(data: bytes, path) -> dict[str, str]:
    """The metadata in the header of safetensors bytes (all of them, or the header's 8 + n first) read
    from path; a ValueError naming the file when the header is broken."""
    n = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if not 0 < n <= len(data) - 8:
        raise ValueError(f"{path}: not a safetensors file (its {len(data)} bytes do not start with a header "
                         f"length that fits); the file is damaged or truncated")
    try:
        meta = json.loads(data[8:8 + n]).get("__metadata__") or {}
    except (ValueError, AttributeError):
        meta = None
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError(f"{path}: not a safetensors file (its header is not the JSON safetensors writes); "
                         f"the file is damaged")
    return meta


def parse_safetensors(data: bytes, path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """(metadata, tensors) of safetensors bytes read from path; a ValueError naming the file when its
    layout is broken (the shapes and dtypes a model needs are checked by checkpoint.check_state)."""
    meta = parse_metadata(data, path)
    try:
        tensors = load(data)
    except Exception as e:  # noqa: BLE001 - safetensors' own errors: offsets out of range, truncated data
        raise ValueError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e}); the file is "
                         f"damaged or truncated") from None
    return meta, tensors


def read_safetensors(path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    return parse_safetensors(read_bytes(path), path)


def read_metadata(path) -> dict[str, str]:
    """The metadata of the safetensors file at path, reading its header only."""
    head = read_with_id(path, 8)[0]
    return parse_metadata(read_with_id(path, 8 + int.from_bytes(head.ljust(8, b"\0"), "little"))[0], path)


def check_weights(tensors: dict[str, torch.Tensor], what) -> None:
    """A ValueError naming the first tensor that is not floating point, or holds NaN or an infinity."""
    for name, t in tensors.items():
        if not t.is_floating_point():
            raise ValueError(f"{what}: tensor {name!r} has dtype {t.dtype}; model weights are floating point")
        if not torch.isfinite(t).all():
            raise ValueError(f"{what}: tensor {name!r} holds NaN or infinite values; a model that diverged was "
                             f"saved, or the file is damaged (minituner loads only finite weights)")
