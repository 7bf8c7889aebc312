"""Every reader of a file format takes any bytes and any kind of path: it loads, or refuses in one
line naming the file (issue 35). Never another exception, never a wait on a pipe, never "missing"
for a path that exists.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minituner as mt
from minituner import files
from minituner.bpe import BPETokenizer
from minituner.checkpoint import load_folder, load_model, save_model
from minituner.gpt2 import gpt2_config
from minituner.model import GPT, GPTConfig

GOOD = {  # a valid file of each format, to cut and flip
    "data.jsonl": b'{"prompt": "who says meow?", "answer": " the cat"}\n' * 3,
    "config.json": json.dumps({"model_type": "gpt2", "vocab_size": 300, "n_positions": 64, "n_layer": 1,
                               "n_head": 1, "n_embd": 8}).encode(),
    "vocab.json": json.dumps({c: i for i, c in enumerate(mt.bpe.BYTE_TO_CHAR.values())} | {"<|endoftext|>": 256}).encode(),
}


def read_any(path):
    """The reader of path's format, on path."""
    name = path.name
    if name == "data.jsonl":
        return mt.Dataset.from_jsonl(path)
    if name == "config.json":
        return gpt2_config(path.parent)
    if name == "vocab.json":
        (path.parent / "merges.txt").write_text("#version: 0.2\n")
        return BPETokenizer.from_files(path.parent)
    if name == "base.safetensors":
        return load_model(path)
    return files.read_json(path)


def mangled(good: bytes):
    """good cut at any point, a byte of it flipped, or any bytes at all."""
    return st.one_of(st.integers(0, len(good)).map(lambda n: good[:n]),
                     st.tuples(st.integers(0, len(good) - 1), st.integers(1, 255)).map(
                         lambda a: good[:a[0]] + bytes([good[a[0]] ^ a[1]]) + good[a[0] + 1:]),
                     st.binary(max_size=100))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(sorted(GOOD)), data=st.data())
def test_any_bytes_load_or_are_refused_naming_the_file(tmp_path, which, data):
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / which
    path.write_bytes(data.draw(mangled(GOOD[which])))
    try:
        read_any(path)
    except (ValueError, TypeError) as e:
        assert str(path) in str(e) or str(path.parent) in str(e), str(e)
        assert len(str(e).splitlines()) == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mangled_saved_tensors_file_loads_or_is_refused_naming_it(tmp_path, data):
    model = GPT(GPTConfig(vocab_size=mt.CharTokenizer().vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=4))
    stem = Path(tempfile.mkdtemp(dir=tmp_path)) / "base"
    save_model(model, stem)
    f = stem.parent / "base.safetensors"
    f.write_bytes(data.draw(mangled(f.read_bytes())))
    try:
        load_model(stem)
    except ValueError as e:
        assert "base.safetensors" in str(e) or "base.json" in str(e)


KINDS = ["folder", "named pipe", "character device"]


def make(kind: str, path):
    if kind == "folder":
        path.mkdir()
    elif kind == "named pipe":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/null")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["data.jsonl", "config.json", "vocab.json", "adapter_config.json",
                                  "adapter_model.safetensors", "base.safetensors"])
def test_a_path_that_is_not_a_file_is_named_as_such_never_read(tmp_path, kind, name):
    if name.startswith("adapter"):
        mt.lora(GPT(GPTConfig(vocab_size=mt.CharTokenizer().vocab_size, block_size=8, n_layer=1, n_head=1,
                              n_embd=4)), r=1).save_pretrained(tmp_path)
        (tmp_path / name).unlink()
    elif name == "base.safetensors":
        (tmp_path / "base.json").write_text("{}")
    else:
        (tmp_path / "other").write_text("")
    make(kind, tmp_path / name)
    with pytest.raises(ValueError, match=f"{name} is a {kind}, not a file"):
        load_folder(tmp_path) if name.startswith("adapter") else read_any(tmp_path / name)


def test_a_file_that_cannot_be_read_is_one_line_naming_it(tmp_path):
    """No permission (as a user that is not root: a forked child drops to 'nobody' when the tests run as root):
    the reader's error and the command line's both say so in one line."""
    from minituner.cli import main

    f = tmp_path / "pairs.jsonl"
    f.write_text('{"prompt": "who says meow?", "answer": " the cat"}\n')
    f.chmod(0)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            try:
                mt.Dataset.from_jsonl(f)
            except PermissionError as e:
                os.write(w, str(e).encode())
                code = 0
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    os.close(w)
    message = os.read(r, 10_000).decode()
    assert "no permission to read it" in message and len(message.splitlines()) == 1
    assert "pairs.jsonl" in message or str(tmp_path) in message
    if os.geteuid() != 0:
        assert main(["finetune", "--method", "lora", "--data", str(f), "--out", str(tmp_path / "o")]) == 2
