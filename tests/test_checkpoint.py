"""Saves never lose the last good copy; loads refuse what is not exactly what was saved (issues 24, 35).

Every writer of a model goes through one door (checkpoint._save_pair): minituner's adapter folder,
save_model's pair (what `pretrain --out` writes) and PEFT's format (what `finetune --base GPT2`
writes). For each, a save killed (or interrupted by Ctrl-C) at any instant leaves the old
complete model or the new complete one: a child process is made to die at each of a save's
renames, and another is SIGKILLed at random moments while it saves in a loop. Saves into one
folder from two processes take turns; loads need no lock, so they never fail while another
process saves and never wait for a stopped one; names are used as given; an edited or damaged
file is refused with its name.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import string
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_gpt2 import PAIRS as PAIRS_FILE
from tiny_gpt2 import write_tiny_gpt2

import minituner as mt
from minituner import checkpoint, load_adapter
from minituner.checkpoint import (
    ADAPTER_CONFIG,
    ADAPTER_TENSORS,
    check_writable,
    load_base,
    load_folder,
    load_model,
    save_folder,
    save_model,
)
from minituner.files import read_json
from minituner.gpt2 import load_gpt2
from minituner.model import GPT, GPTConfig
from minituner.peft_format import read_peft_folder, save_peft_format


def tiny(seed: int = 0) -> GPT:
    return GPT(GPTConfig(vocab_size=mt.CharTokenizer().vocab_size, block_size=32, n_layer=1, n_head=1, n_embd=8), seed)


BASE = tiny()
OLD = mt.get_peft_model(BASE, mt.LoraConfig(r=2, lora_alpha=4))
NEW = mt.get_peft_model(BASE, mt.LoraConfig(r=4, lora_alpha=8, use_rslora=True))  # other shapes, other config


@functools.cache
def gpt2() -> tuple[Path, mt.PeftModel, mt.PeftModel]:
    """A tiny GPT-2 folder and two LoRA adapters of other shapes on it, for PEFT's format."""
    folder = write_tiny_gpt2(Path(tempfile.mkdtemp(prefix="minituner-gpt2-")))
    base = load_gpt2(folder)
    old = mt.get_peft_model(base, mt.LoraConfig(r=2, lora_alpha=4))
    new = mt.get_peft_model(base, mt.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj"]))
    return folder, old, new


RENAMES = {"adapter folder": 2, "base pair": 2, "peft format": 2, "one file": 1}  # a save's renames
WRITERS = list(RENAMES)


def writer(kind: str, path: Path):
    """(save the old model at path, save the new one, what path loads as now) for each writer."""
    if kind == "adapter folder":
        return (lambda: OLD.save_pretrained(path)), (lambda: NEW.save_pretrained(path)), \
            (lambda: load_folder(path)[0]["sha256"])
    if kind == "base pair":  # save_model: what `minituner pretrain --out DIR` writes as DIR/base
        old, new = tiny(0), tiny(1)
        return (lambda: save_model(old, path)), (lambda: save_model(new, path)), \
            (lambda: checkpoint.fingerprint(load_model(path)[0]))
    if kind == "one file":  # atomic_write: results.json, tables, figures, notebooks, vocab.json, merges.txt
        def one(text):
            return lambda: checkpoint.atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps({"v": text})))
        return one("old" * 1000), one("new"), (lambda: read_json(path)["v"])
    folder, old, new = gpt2()
    return (lambda: save_peft_format(old, path, folder)), (lambda: save_peft_format(new, path, folder)), \
        (lambda: checkpoint.tensors_sha256(read_peft_folder(path)[1]))


def quietly(load):
    """load() without the warning the one between-renames state gives (it loads the newer save)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load()


def saved_sha(path) -> str:
    """The sha256 of the complete save that path loads as (load_folder checks every hash)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the one between-renames state warns that it loads the newer save
        return load_folder(path)[0]["sha256"]


@pytest.fixture(scope="module")
def sha(tmp_path_factory) -> dict:
    """The sha256 that a save of OLD and of NEW records (the same for every save of one model)."""
    folder = tmp_path_factory.mktemp("reference")
    OLD.save_pretrained(folder / "old")
    NEW.save_pretrained(folder / "new")
    return {"old": saved_sha(folder / "old"), "new": saved_sha(folder / "new")}


def start_child(fn) -> int:
    """Start fn in a forked child (no new interpreter); its pid. It exits 0 when fn returned, 1 when it raised."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        finally:
            os._exit(code)
    return pid


def exit_status(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def in_child(fn) -> int:
    """Run fn in a forked child and wait: its exit status."""
    return exit_status(start_child(fn))


def dying_at_rename(k: int, save) -> int:
    """Run save() in a child that dies (no clean-up, as under SIGKILL) at its k-th rename."""
    def run():
        real, seen = os.replace, [0]

        def replace(src, dst):
            if seen[0] == k:
                os._exit(3)
            seen[0] += 1
            real(src, dst)

        os.replace = replace  # the child's own os module: the parent is untouched
        save()

    return in_child(run)


# ---------------------------------------------------------------- kills
@pytest.mark.parametrize("kind", WRITERS)
def test_a_save_dying_at_each_rename_leaves_the_old_or_the_new_model(kind, tmp_path):
    path = tmp_path / "run"
    old, new, loaded = writer(kind, path)
    old()
    old_model = loaded()
    new()
    new_model = loaded()
    assert old_model != new_model
    outcomes = []
    for k in range(RENAMES[kind] + 1):  # die before the first rename, between the two, after all (finishes)
        old()
        status = dying_at_rename(k, new)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            now = loaded()
        outcomes.append((status, now == new_model, len(caught)))
    between = [(3, True, 1)] if RENAMES[kind] == 2 else []  # the new model, with a warning
    assert outcomes == [(3, False, 0), *between, (0, True, 0)]  # old, new, new
    old()  # the next save removes what the dead ones left
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".minituner-")]


@pytest.mark.parametrize("kind", WRITERS)
def test_ctrl_c_at_each_rename_leaves_the_old_or_the_new_model_and_no_litter(kind, tmp_path, monkeypatch):
    path = tmp_path / "run"
    old, new, loaded = writer(kind, path)
    new()
    new_model = loaded()
    real = os.replace
    for k in range(RENAMES[kind]):  # before the first rename: old; between the two: new
        old()
        old_model = loaded()
        seen = [0]

        def replace(src, dst, k=k, seen=seen):
            if seen[0] == k:
                raise KeyboardInterrupt
            seen[0] += 1
            real(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(KeyboardInterrupt):
            new()
        monkeypatch.setattr(os, "replace", real)
        assert quietly(loaded) == (new_model if k else old_model)
        assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".minituner-")]  # its temporary file went


KILLS = {"adapter folder": 40, "base pair": 20, "peft format": 30, "one file": 20}  # each fork costs ~20-40 ms of CPU


@pytest.mark.parametrize("kind", WRITERS)
def test_sigkill_at_random_moments_leaves_a_loadable_old_or_new_model(kind, tmp_path):
    """A child saves NEW then OLD in a loop and is SIGKILLed at a random moment of its first two saves
    (how long they take is measured first, so the moments cover every step of a save on any machine)."""
    path, rng = tmp_path / "run", random.Random(0)
    old, new, loaded = writer(kind, path)
    new()
    new_model = loaded()
    old()
    old_model = loaded()
    start = time.perf_counter()
    new()
    old()
    pair = time.perf_counter() - start
    seen = Counter()
    for _ in range(KILLS[kind]):
        pid = os.fork()
        if pid == 0:
            try:
                while True:
                    new()
                    old()
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0, pair))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        now = quietly(loaded)
        assert now in (old_model, new_model)
        seen[now == new_model] += 1
    assert sum(seen.values()) == KILLS[kind]
    old()  # what the killed saves left is cleared, and nothing else is there
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".minituner-")]


# ---------------------------------------------------------------- concurrent saves
def test_two_processes_saving_to_one_path_take_turns(sha, tmp_path):
    path = tmp_path / "run"
    pids = [start_child(lambda model=model: [model.save_pretrained(path) for _ in range(40)]) for model in (OLD, NEW)]
    codes = [exit_status(p) for p in pids]
    assert codes == [0, 0]  # all 80 saves went through
    assert saved_sha(path) in (sha["old"], sha["new"])
    assert sorted(p.name for p in path.iterdir()) == [ADAPTER_CONFIG, ADAPTER_TENSORS]


LOADS = 150


@pytest.mark.parametrize("kind", WRITERS)
def test_loads_while_another_process_saves_never_fail(kind, tmp_path):
    """One process saves OLD and NEW in turn, without end; this one loads LOADS times meanwhile:
    every load is the old or the new model, none fails (loads take no lock)."""
    path = tmp_path / "run"
    old, new, loaded = writer(kind, path)
    new()
    new_model = loaded()
    old()
    old_model = loaded()
    pid = start_child(lambda: [f() for _ in range(10**6) for f in (new, old)])
    try:
        got = Counter(quietly(loaded) for _ in range(LOADS))
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert set(got) <= {old_model, new_model} and sum(got.values()) == LOADS


def test_a_stopped_saver_never_blocks_a_load_and_a_save_gives_up_naming_it(tmp_path, monkeypatch):
    """A saver stopped (Ctrl-Z) while it holds the folder's lock: `minituner generate --adapter` still
    answers at once, and another save gives up after LOCK_WAIT seconds naming the stopped process."""
    from minituner.cli import main

    folder, old, new = gpt2()
    path = tmp_path / "run"
    save_peft_format(old, path, folder)

    def stop_holding_the_lock():
        with checkpoint.locked(path):
            os.kill(os.getpid(), signal.SIGSTOP)

    pid = start_child(stop_holding_the_lock)
    os.waitpid(pid, os.WUNTRACED)  # it is stopped now, with the lock held
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("waited for the stopped saver"))
    signal.alarm(60)
    try:
        assert load_adapter(load_gpt2(folder), path).config.r == 2
        assert main(["generate", "--base", str(folder), "--adapter", str(path), "--max-new-tokens", "2", "the"]) == 0
        monkeypatch.setattr(checkpoint, "LOCK_WAIT", 0.3)
        with pytest.raises(TimeoutError, match=rf"process {pid} has been saving into this folder"):
            save_peft_format(new, path, folder)
        assert main(["finetune", "--method", "lora", "--data", str(PAIRS_FILE), "--base", str(folder),
                     "--out", str(path), "--steps", "1"]) == 2  # one line, exit 2
    finally:
        signal.alarm(0)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert quietly(lambda: read_peft_folder(path))[0]["r"] == 2


def test_saves_to_run_and_run_v2_at_once_leave_both_intact(sha, tmp_path):
    def loop(save):
        return start_child(lambda: [save() for _ in range(25)])

    pids = [loop(lambda: OLD.save_pretrained(tmp_path / "run")), loop(lambda: NEW.save_pretrained(tmp_path / "run.v2")),
            loop(lambda: save_model(tiny(0), tmp_path / "base")), loop(lambda: save_model(tiny(1), tmp_path / "base.v2"))]
    assert [exit_status(p) for p in pids] == [0, 0, 0, 0]
    assert saved_sha(tmp_path / "run") == sha["old"]
    assert saved_sha(tmp_path / "run.v2") == sha["new"]
    assert checkpoint.fingerprint(load_model(tmp_path / "base")[0]) == checkpoint.fingerprint(tiny(0))
    assert checkpoint.fingerprint(load_model(tmp_path / "base.v2")[0]) == checkpoint.fingerprint(tiny(1))


# ---------------------------------------------------------------- names
def test_a_users_hidden_folder_beside_the_save_survives(tmp_path):
    mine = tmp_path / ".mine.backup.tmp"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    (tmp_path / ".run.x.tmp").write_text("also mine")
    assert dying_at_rename(0, lambda: OLD.save_pretrained(tmp_path / "mine")) == 3  # leaves a temp behind
    for _ in range(2):
        OLD.save_pretrained(tmp_path / "mine")
        save_model(tiny(), tmp_path / "run")
    assert (mine / "notes.txt").read_text() == "mine" and (tmp_path / ".run.x.tmp").read_text() == "also mine"


def test_dots_are_part_of_a_base_name(tmp_path):
    save_model(tiny(0), tmp_path / "base")
    save_model(tiny(1), tmp_path / "base.v2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.json", "base.safetensors", "base.v2.json",
                                                          "base.v2.safetensors"]
    assert checkpoint.fingerprint(load_model(tmp_path / "base")[0]) == checkpoint.fingerprint(tiny(0))
    assert checkpoint.fingerprint(load_model(tmp_path / "base.v2.safetensors")[0]) == checkpoint.fingerprint(tiny(1))


def test_a_symlink_is_written_through_and_stays_a_link(sha, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    OLD.save_pretrained(tmp_path / "link")
    NEW.save_pretrained(tmp_path / "link")
    assert (tmp_path / "link").is_symlink()
    assert saved_sha(tmp_path / "real") == saved_sha(tmp_path / "link") == sha["new"]


def test_minituners_own_names_cannot_be_save_names(tmp_path):
    with pytest.raises(ValueError, match="temporary"):
        OLD.save_pretrained(tmp_path / ".minituner-tmp-1234")
    with pytest.raises(ValueError, match="temporary"):
        save_model(tiny(), tmp_path / ".minituner-x")


NAMES = st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1, max_size=30) \
    .filter(lambda n: n not in (".", "..") and not n.startswith(".minituner-") and not n.endswith((".json", ".safetensors")))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES)
def test_any_name_round_trips_and_touches_nothing_else(sha, tmp_path, name):
    folder = tmp_path / "".join(random.Random(name).choices(string.ascii_lowercase, k=12))
    (folder / "other").mkdir(parents=True)
    NEW.save_pretrained(folder / "other")
    save_model(tiny(1), folder / name)  # name.safetensors + name.json, then the folder name/ beside them
    OLD.save_pretrained(folder / name)
    with pytest.raises(ValueError, match="is a folder"):  # a folder is never taken for a save_model name
        save_model(tiny(1), folder / name)
    assert saved_sha(folder / name) == sha["old"] and saved_sha(folder / "other") == sha["new"]
    assert checkpoint.fingerprint(load_model(folder / name)[0]) == checkpoint.fingerprint(tiny(1))
    assert sorted(p.name for p in folder.iterdir()) == sorted([name, "other", f"{name}.json", f"{name}.safetensors"])


# ---------------------------------------------------------------- what a load refuses
@pytest.mark.parametrize("edit", [("lora_alpha", 64), ("use_rslora", True), ("method", "qlora")])
def test_an_edited_adapter_config_is_refused_naming_the_file(edit, tmp_path):
    OLD.save_pretrained(tmp_path / "a")
    f = tmp_path / "a" / ADAPTER_CONFIG
    saved = json.loads(f.read_text())
    key, value = edit
    (saved if key == "method" else saved["config"])[key] = value
    f.write_text(json.dumps(saved, indent=2))
    with pytest.raises(ValueError, match=rf"{ADAPTER_CONFIG}: .*edited"):
        mt.PeftModel.from_pretrained(BASE, tmp_path / "a")


@pytest.mark.parametrize("bad", [{"config": None}, {"method": ["lora"]}, {"base_fingerprint": 7}])
def test_a_saved_record_of_the_wrong_types_is_refused_naming_the_file(bad, tmp_path):
    info = {"method": "lora", "config": OLD.config.to_dict(), "base_fingerprint": OLD.base_fingerprint, **bad}
    save_folder(tmp_path / "a", info, OLD.adapter_state_dict())  # hashes that match: only the types are wrong
    with pytest.raises(ValueError, match=rf"{ADAPTER_CONFIG}: '{next(iter(bad))}' must be a"):
        mt.PeftModel.from_pretrained(BASE, tmp_path / "a")


def test_a_json_of_the_right_hash_from_another_save_is_refused(tmp_path):
    OLD.save_pretrained(tmp_path / "a")
    NEW.save_pretrained(tmp_path / "b")
    (tmp_path / "a" / ADAPTER_CONFIG).write_bytes((tmp_path / "b" / ADAPTER_CONFIG).read_bytes())
    with pytest.raises(ValueError, match="different saves"):
        load_folder(tmp_path / "a")


def flipped(f, at: float, mask: int) -> None:
    b = bytearray(f.read_bytes())
    b[int(at * len(b))] ^= mask
    f.write_bytes(bytes(b))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from([ADAPTER_CONFIG, ADAPTER_TENSORS, "base.json", "base.safetensors"]),
       at=st.floats(0, 1, exclude_max=True), mask=st.integers(1, 255))
def test_any_corrupted_byte_is_refused_or_changes_nothing(sha, tmp_path, which, at, mask):
    folder = tmp_path / "".join(random.Random(f"{which}{at}{mask}").choices(string.ascii_lowercase, k=12))
    OLD.save_pretrained(folder / "a")
    save_model(tiny(), folder / "base")
    flipped(folder / ("a" if which.startswith("adapter") else ".") / which, at, mask)
    try:
        if which.startswith("adapter"):
            info, tensors = load_folder(folder / "a")
            same = info["sha256"] == sha["old"] and all(
                torch.equal(tensors[k], v) for k, v in OLD.adapter_state_dict().items())
        else:
            model, _ = load_model(folder / "base")
            same = checkpoint.fingerprint(model) == checkpoint.fingerprint(tiny()) and model.config == tiny().config
    except ValueError as e:
        assert which in str(e)  # refused, naming the file
    else:
        assert same  # a byte of JSON white space: the same model


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from([ADAPTER_CONFIG, ADAPTER_TENSORS]), at=st.floats(0, 1, exclude_max=True),
       mask=st.integers(1, 255))
def test_any_corrupted_byte_of_peft_format_is_refused_or_changes_nothing(tmp_path, which, at, mask):
    folder, old, _ = gpt2()
    path = tmp_path / "".join(random.Random(f"{which}{at}{mask}").choices(string.ascii_lowercase, k=12))
    save_peft_format(old, path, folder)
    flipped(path / which, at, mask)
    try:
        model = load_adapter(load_gpt2(folder), path)
    except ValueError as e:
        assert which in str(e)  # refused, naming the file
    else:  # a byte that changes nothing PEFT or minituner reads (white space, the "format" tag)
        assert model.config == old.config
        assert all(torch.equal(model.adapter_state_dict()[k], v) for k, v in old.adapter_state_dict().items())


def test_a_truncated_base_is_refused_naming_the_file(tmp_path):
    save_model(tiny(), tmp_path / "base")
    f = tmp_path / "base.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"base\.safetensors: "):
        load_base(tmp_path)


def test_load_base_takes_what_pretrain_out_writes(tmp_path):
    save_model(tiny(), tmp_path / "pre" / "base")  # what `minituner pretrain --out pre` writes
    for path in (tmp_path / "pre", tmp_path / "pre" / "base", tmp_path / "pre" / "base.safetensors"):
        assert checkpoint.fingerprint(load_base(path)) == checkpoint.fingerprint(tiny())
    with pytest.raises(FileNotFoundError, match=r"minituner pretrain --out .*nowhere"):
        load_base(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="without base.safetensors"):
        load_base(tmp_path / "empty")


# ---------------------------------------------------------------- output folders checked up front
def test_check_writable_refuses_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("x")
    for folder, message in [("", "empty"), ("  ", "empty"), (tmp_path / "file", "existing file"),
                            (tmp_path / "file" / "out", "file, not a folder")]:
        with pytest.raises(ValueError, match=message):
            check_writable(folder)
    with pytest.raises(ValueError, match="notes.txt"):
        check_writable(tmp_path / "full", only=(ADAPTER_CONFIG, ADAPTER_TENSORS))
    assert check_writable(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking writes nothing
    with pytest.raises(ValueError, match="file, not a folder"):
        OLD.save_pretrained(tmp_path / "file" / "out")
    with pytest.raises(ValueError, match="existing file"):
        save_model(tiny(), tmp_path / "file" / "base")
