"""Every bad input is a clear error: the right exception type, and a message that names the argument.

One table of cases, API and command line (issue 12): each case is a call that must fail,
the exception it must raise and patterns its message must contain. Command-line cases
run ``minituner.cli.main`` in-process: they must exit with status 2 and one line on stderr,
never a traceback. ``tests/sweep_bad_inputs.py`` runs the same table on any checkout and
counts the outcomes (clear / obscure / silent).
"""

from __future__ import annotations

import functools
import importlib
import io
import json
import math
import os
import re
import shutil
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import minituner as mt
from minituner.model import GPT, GPTConfig

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "docs" / "examples" / "pairs.jsonl"
NO_CUDA = not torch.cuda.is_available()


class CliError(Exception):
    """main() ended with exit status 2; the message is what it wrote on stderr."""


def cli(*argv):
    """A case that runs `minituner ARGV` in-process and raises CliError when it exits with status 2."""

    def run():
        from minituner.cli import main

        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main([str(a) for a in argv])
            except SystemExit as e:
                code = e.code
        if code == 2:
            raise CliError(err.getvalue())
        if code not in (0, None):
            raise RuntimeError(f"exit status {code}: {err.getvalue()}")

    return run


@functools.cache
def tmp() -> Path:
    """One scratch folder for the whole run, with the files the cases need."""
    d = Path(tempfile.mkdtemp(prefix="minituner-bad-"))
    (d / "a_file").write_text("not a folder\n")
    (d / "broken.jsonl").write_text('{"prompt": "who says meow?", "answer": " the cat"}\n{"prompt": \n')
    (d / "unknown_char.jsonl").write_text('{"prompt": "who says miaou?", "answer": " the cat"}\n'
                                          '{"prompt": "who says ☺?", "answer": " the cat"}\n')
    return d


def tiny() -> GPT:
    return GPT(GPTConfig(vocab_size=mt.CharTokenizer().vocab_size, block_size=96, n_layer=2, n_head=2, n_embd=16))


@functools.cache
def task():
    return mt.make_task("classify")


def ids(*rows) -> torch.Tensor:
    return torch.tensor(rows)


def train(**kw):
    return lambda: mt.train(mt.full(tiny()), kw.pop("data", None) or task(), **dict(dict(steps=1, progress=False), **kw))


def device(name):
    return lambda: importlib.import_module("minituner.device").check_device(name)


def lora_model():
    return mt.get_peft_model(tiny(), mt.LoraConfig(r=2, lora_alpha=4))


def saved_lora(model=None) -> Path:
    d = Path(tempfile.mkdtemp(dir=tmp())) / "adapter"
    (model or lora_model()).save_pretrained(d)
    return d


def flip_a_byte(d: Path) -> Path:
    f = d / "adapter_model.safetensors"
    b = bytearray(f.read_bytes())
    b[-3] ^= 0xFF  # inside the last tensor's data
    f.write_bytes(bytes(b))
    return d


def train_merged():
    model = lora_model()
    model.merge_adapter()
    mt.train(model, task(), steps=1, progress=False)


def torn_pair():
    """adapter_config.json of one save next to the tensors of another (what a crash between them left)."""
    other = mt.get_peft_model(tiny(), mt.LoraConfig(r=2, lora_alpha=8))
    with torch.no_grad():
        for t in other.trained_tensors().values():
            t.add_(1.0)  # other tensors than the first save's
    a, b = saved_lora(), saved_lora(other)
    (b / "adapter_config.json").write_text((a / "adapter_config.json").read_text())
    mt.PeftModel.from_pretrained(tiny(), b)


def garbled_config():
    d = saved_lora()
    (d / "adapter_config.json").write_text("{not json")
    mt.PeftModel.from_pretrained(tiny(), d)


def garbled_checkpoint():
    path = tmp() / "garbled"
    mt.save_model(tiny(), path)
    path.with_suffix(".json").write_text("{not json")
    mt.load_model(path)


# ---------------------------------------------------------------- files, data, generation (issue 24)
def edited_adapter_config(key, value):
    """A saved LoRA adapter whose adapter_config.json was edited by hand (config[key] = value)."""
    d = saved_lora()
    f = d / "adapter_config.json"
    info = json.loads(f.read_text())
    (info if key == "method" else info["config"])[key] = value
    f.write_text(json.dumps(info))
    mt.PeftModel.from_pretrained(tiny(), d)


def adapter_record(**bad):
    """A folder whose files agree (hashes match) but whose record has a field of the wrong type."""
    model = lora_model()
    d = Path(tempfile.mkdtemp(dir=tmp())) / "adapter"
    info = {"method": "lora", "config": model.config.to_dict(), "base_fingerprint": model.base_fingerprint, **bad}
    importlib.import_module("minituner.checkpoint").save_folder(d, info, model.adapter_state_dict())
    mt.PeftModel.from_pretrained(tiny(), d)


def truncated_base():
    d = Path(tempfile.mkdtemp(dir=tmp()))
    mt.save_model(tiny(), d / "base")
    f = d / "base.safetensors"
    f.write_bytes(f.read_bytes()[:-64])
    mt.load_base(d)


def latin1_jsonl():
    f = tmp() / "latin1.jsonl"
    f.write_bytes(b'{"prompt": "who says meow?", "answer": " the cat"}\n{"prompt": "caf\xe9", "answer": " x"}\n')
    mt.Dataset.from_jsonl(f)


def row_longer_than_the_context():
    f = tmp() / "long.jsonl"
    f.write_text("".join(json.dumps({"prompt": f"who says {w}?", "answer": " the cat"}) + "\n" for w in "abcdefgh")
                 + json.dumps({"prompt": "who says " + "meow " * 20 + "?", "answer": " the cat"}) + "\n")
    mt.Dataset.from_jsonl(f, val=[("who says z?", " the z")], test=[("who says y?", " the y")]).check_context(
        tiny().config.block_size, num_virtual_tokens=8)


def pretrain_with(**kw):
    return lambda: importlib.import_module("minituner.pretrain").pretrain(progress=False, **kw)


PAIR = [("who says meow?", " the cat")] * 10


# ---------------------------------------------------------------- every file through one door (issue 35)
@functools.cache
def gpt2_folder() -> Path:
    from tiny_gpt2 import write_tiny_gpt2

    return write_tiny_gpt2(tmp() / "gpt2")


def gpt2_with(edit) -> Path:
    """A copy of the tiny GPT-2 folder, edit(folder) applied."""
    d = Path(tempfile.mkdtemp(dir=tmp())) / "gpt2"
    shutil.copytree(gpt2_folder(), d)
    edit(d)
    return d


def write(name: str, data: bytes | str):
    def edit(d: Path):
        (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return edit


def without(key: str):
    def edit(d: Path):
        cfg = json.loads((d / "config.json").read_text())
        del cfg[key]
        (d / "config.json").write_text(json.dumps(cfg))
    return edit


def weights(name: str, change):
    """Edit: model.safetensors with tensor `name` replaced by change(tensor)."""
    def edit(d: Path):
        from safetensors.torch import load_file, save_file

        state = load_file(d / "model.safetensors")
        state[name] = change(state[name])
        save_file(state, d / "model.safetensors", metadata={"format": "pt"})
    return edit


def load_gpt2_base(edit):
    return lambda: importlib.import_module("minituner.gpt2").load_any_base(gpt2_with(edit))


def peft_folder(tensors: dict, config: str | None = None) -> Path:
    """A LoRA adapter folder as PEFT itself writes one (no minituner record), on the tiny GPT-2's first c_attn."""
    from safetensors.torch import save_file

    d = Path(tempfile.mkdtemp(dir=tmp())) / "adapter"
    d.mkdir()
    key = "base_model.model.transformer.h.0.attn.c_attn.lora_"
    save_file({key + k + ".weight": v for k, v in tensors.items()}, d / "adapter_model.safetensors")
    (d / "adapter_config.json").write_text(config or json.dumps(
        {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["c_attn"], "fan_in_fan_out": True}))
    return d


def load_peft(d: Path):
    return lambda: importlib.import_module("minituner").load_adapter(
        importlib.import_module("minituner.gpt2").load_gpt2(gpt2_folder()), d)


def fifo(where: Path) -> Path:
    where.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(where)
    return where


def adapter_with_fifo_config() -> Path:
    d = saved_lora()
    (d / "adapter_config.json").unlink()
    fifo(d / "adapter_config.json")
    return d


def folder_holding(name: str, text: str = "mine\n") -> Path:
    d = Path(tempfile.mkdtemp(dir=tmp())) / "out"
    d.mkdir()
    (d / name).write_text(text)
    return d


def save_over_a_fifo():
    d = adapter_with_fifo_config()
    lora_model().save_pretrained(d)


def save_model_into(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    mt.save_model(tiny(), folder)


def train_under_no_grad():
    with torch.no_grad():
        mt.train(lora_model(), task(), steps=1, progress=False)


def evaluate_empty_split():
    t = task().test
    mt.evaluate(tiny(), type(t)("empty", t.x[:0], t.y[:0], t.mask[:0]))


LONG = "a" * 300 + ".jsonl"


@dataclass
class Case:
    id: str
    run: object  # a callable that must raise
    error: type[BaseException] | tuple
    names: tuple[str, ...]  # regular expressions the message must match
    needs_no_cuda: bool = False


def C(id, run, error, *names, needs_no_cuda=False):
    return Case(id, run, error, names, needs_no_cuda)


V = mt.CharTokenizer().vocab_size
CASES = [
    # ------------------------------------------------ GPT.forward / generate (checked at the top)
    C("forward-id-minus-1", lambda: tiny()(ids([3, -1])), ValueError, r"\bidx\b", "-1"),
    C("forward-id-V", lambda: tiny()(ids([3, V])), ValueError, r"\bidx\b", str(V)),
    C("forward-float-ids", lambda: tiny()(torch.zeros(1, 3)), TypeError, r"\bidx\b", "float"),
    C("forward-bool-ids", lambda: tiny()(torch.ones(1, 3, dtype=torch.bool)), TypeError, r"\bidx\b"),
    C("forward-list", lambda: tiny()([[3, 4]]), TypeError, r"\bidx\b"),
    C("forward-1d", lambda: tiny()(torch.tensor([3, 4])), ValueError, r"\bidx\b", r"2-D"),
    C("forward-3d", lambda: tiny()(torch.ones(1, 2, 3, dtype=torch.long)), ValueError, r"\bidx\b", r"2-D"),
    C("forward-T0", lambda: tiny()(torch.zeros(1, 0, dtype=torch.long)), ValueError, r"\bidx\b", r"T >= 1"),
    C("forward-B0", lambda: tiny()(torch.zeros(0, 3, dtype=torch.long)), ValueError, r"\bidx\b", r"B >= 1"),
    C("lora-forward-id-minus-1", lambda: mt.lora(tiny(), r=2)(ids([3, -1])), ValueError, r"\bidx\b"),
    C("prompt-forward-id-V", lambda: mt.prompt_tuning(tiny(), num_virtual_tokens=2)(ids([V + 5])), ValueError, r"\bidx\b"),
    C("generate-negative-max-new-tokens", lambda: tiny().generate(ids([3]), -1), ValueError, "max_new_tokens"),
    C("generate-float-max-new-tokens", lambda: tiny().generate(ids([3]), 2.5), TypeError, "max_new_tokens"),
    C("generate-beyond-context", lambda: tiny().generate(ids([3, 4]), 200), ValueError, "max_new_tokens", "block_size"),
    C("generate-id-minus-1", lambda: tiny().generate(ids([-1]), 2), ValueError, r"\bidx\b"),
    C("generate-float-ids", lambda: tiny().generate(torch.zeros(1, 2), 2), TypeError, r"\bidx\b"),
    C("generate-temperature-nan", lambda: tiny().generate(ids([3]), 2, temperature=math.nan), ValueError, "temperature"),
    C("generate-top-k-0", lambda: tiny().generate(ids([3]), 2, temperature=1.0, top_k=0), ValueError, "top_k"),
    C("answer-unknown-character", lambda: mt.answer(tiny(), mt.CharTokenizer(), "who says ☺?"), ValueError, "☺"),
    # ------------------------------------------------ devices
    C("device-unknown", device("tpu"), ValueError, "tpu", "cpu, cuda"),
    C("device-malformed", device("cuda:x"), ValueError, "cuda:x", "cpu, cuda"),
    C("device-cuda-unavailable", device("cuda"), ValueError, "CUDA was requested", "--device cpu", needs_no_cuda=True),
    C("train-device-unknown", train(device="tpu"), ValueError, "tpu"),
    C("train-device-cuda-unavailable", train(device="cuda"), ValueError, "CUDA", needs_no_cuda=True),
    C("sweep-device-unknown", lambda: importlib.import_module("minituner.experiments").sweep(
        steps=1, device="tpu", out=tmp() / "sweep", methods=["lora"], progress=False), ValueError, "tpu"),
    C("compare-out-is-a-file", lambda: importlib.import_module("minituner.experiments").compare(steps=1, out=tmp() / "a_file"),
      ValueError, r"\bout\b", "a_file"),
    C("notebooks-only-matches-nothing", lambda: importlib.import_module("minituner.notebooks").build(only="zz"),
      ValueError, "zz", "00_y_equals_wx"),
    # ------------------------------------------------ train() arguments (data protocol)
    C("train-steps-0", train(steps=0), ValueError, "steps"),
    C("train-batch-size-0", train(batch_size=0), ValueError, "batch_size"),
    C("train-lr-nan", train(lr=math.nan), ValueError, r"\blr\b"),
    C("train-lr-inf", train(lr=math.inf), ValueError, r"\blr\b"),
    C("train-lr-negative", train(lr=-1e-3), ValueError, r"\blr\b"),
    C("train-grad-clip-negative", train(grad_clip=-1.0), ValueError, "grad_clip"),
    C("train-weight-decay-nan", train(weight_decay=math.nan), ValueError, "weight_decay"),
    C("train-patience-negative", train(patience=-1), ValueError, "patience"),
    C("train-eval-every-negative", train(eval_every=-1), ValueError, "eval_every"),
    C("train-on-a-list-of-pairs", lambda: mt.train(mt.full(tiny()), [("who says meow?", " the cat")], steps=1),
      TypeError, "Dataset", "list"),
    # ------------------------------------------------ your own pairs (data protocol)
    C("pairs-unknown-character", lambda: mt.Dataset.from_pairs([("who says ☺?", " the cat")] * 10), ValueError, "☺"),
    C("pairs-empty", lambda: mt.Dataset.from_pairs([]), ValueError, "pairs"),
    C("pairs-not-a-list", lambda: mt.Dataset.from_pairs("who says meow? the cat"), TypeError, "pairs"),
    C("pairs-not-two-strings", lambda: mt.Dataset.from_pairs([("who says meow?",)] * 10), (TypeError, ValueError),
      "pair"),
    C("pairs-answer-not-a-string", lambda: mt.Dataset.from_pairs([("who says meow?", 3)] * 10), TypeError, "answer"),
    C("pairs-val-above-1", lambda: mt.Dataset.from_pairs([("who says meow?", " the cat")] * 10, val=1.5), ValueError,
      r"\bval\b"),
    C("pairs-test-negative", lambda: mt.Dataset.from_pairs([("who says meow?", " the cat")] * 10, test=-0.1), ValueError,
      r"\btest\b"),
    C("pairs-empty-split", lambda: mt.Dataset.from_pairs([("who says meow?", " the cat")] * 2), ValueError,
      r"empty|at least"),
    C("jsonl-does-not-parse", lambda: mt.Dataset.from_jsonl(tmp() / "broken.jsonl"), ValueError, "broken.jsonl",
      r"line 2"),
    C("jsonl-unknown-character", lambda: mt.Dataset.from_jsonl(tmp() / "unknown_char.jsonl"), ValueError, "☺",
      r"line 2"),
    C("jsonl-missing-file", lambda: mt.Dataset.from_jsonl(tmp() / "nowhere.jsonl"), FileNotFoundError, "nowhere.jsonl"),
    # ------------------------------------------------ pretraining config (data protocol)
    C("pretrain-context-too-short", lambda: importlib.import_module("minituner.pretrain").pretrain(steps=1, n_train=8, progress=False, config=GPTConfig(
        block_size=16, n_layer=1, n_head=1, n_embd=8)), ValueError, "block_size"),
    C("pretrain-vocabulary-too-small", lambda: importlib.import_module("minituner.pretrain").pretrain(steps=1, n_train=8, progress=False, config=GPTConfig(
        vocab_size=10, n_layer=1, n_head=1, n_embd=8)), ValueError, "vocab_size"),
    # ------------------------------------------------ method configs and models (method API)
    C("lora-alpha-0", lambda: mt.get_peft_model(tiny(), mt.LoraConfig(lora_alpha=0)), ValueError, "lora_alpha"),
    C("lora-alpha-nan", lambda: mt.get_peft_model(tiny(), mt.LoraConfig(lora_alpha=math.nan)), ValueError, "lora_alpha"),
    C("lora-r-0", lambda: mt.get_peft_model(tiny(), mt.LoraConfig(r=0)), ValueError, r"\br\b"),
    C("lora-dropout-1", lambda: mt.get_peft_model(tiny(), mt.LoraConfig(lora_dropout=1.0)), ValueError, "lora_dropout"),
    C("lora-unknown-target", lambda: mt.get_peft_model(tiny(), mt.LoraConfig(target_modules=["qq_proj"])), ValueError,
      "qq_proj", "q_proj"),
    C("lora-config-unknown-name", lambda: mt.LoraConfig.from_dict({"rank": 4}), ValueError, "rank", "lora_alpha"),
    C("prompt-0-virtual-tokens", lambda: mt.get_peft_model(tiny(), mt.PromptTuningConfig(num_virtual_tokens=0)),
      ValueError, "num_virtual_tokens"),
    C("prompt-more-virtual-tokens-than-context", lambda: mt.get_peft_model(
        tiny(), mt.PromptTuningConfig(num_virtual_tokens=200)), ValueError, "num_virtual_tokens", "block_size"),
    C("prompt-unknown-init", lambda: mt.get_peft_model(tiny(), mt.PromptTuningConfig(num_virtual_tokens=2, init="zz")),
      ValueError, "init"),
    C("prompt-text-init-without-text", lambda: mt.get_peft_model(
        tiny(), mt.PromptTuningConfig(num_virtual_tokens=2, init="text")), ValueError, "init_text"),
    C("freeze-more-layers-than-the-model", lambda: mt.get_peft_model(tiny(), mt.FreezeConfig(trainable_layers=9)),
      ValueError, "trainable_layers"),
    C("peft-config-of-wrong-type", lambda: mt.get_peft_model(tiny(), "lora"), TypeError, "config"),
    C("stack-lora-on-prompt", lambda: mt.lora(mt.prompt_tuning(tiny(), num_virtual_tokens=2), r=2), ValueError, "GPT"),
    C("stack-prefix-on-lora", lambda: mt.prefix_tuning(mt.lora(tiny(), r=2), num_virtual_tokens=2), ValueError, "GPT"),
    C("stack-full-on-lora", lambda: mt.full(mt.lora(tiny(), r=2)), ValueError, "GPT"),
    C("stack-get-peft-model-on-lora", lambda: mt.get_peft_model(lora_model(), mt.LoraConfig()), ValueError, "GPT"),
    C("train-merged-lora", train_merged, ValueError, "unmerge"),
    C("load-flipped-byte", lambda: mt.PeftModel.from_pretrained(tiny(), flip_a_byte(saved_lora())), ValueError,
      r"hash|sha256"),
    C("load-torn-pair", torn_pair, ValueError, r"hash|sha256"),
    C("load-other-base", lambda: mt.PeftModel.from_pretrained(GPT(tiny().config, seed=1), saved_lora()), ValueError,
      "fingerprint"),
    C("load-config-does-not-parse", garbled_config, ValueError, "adapter_config.json"),
    C("load-missing-folder", lambda: mt.PeftModel.from_pretrained(tiny(), tmp() / "no_adapter"),
      (FileNotFoundError, ValueError), "no_adapter"),
    C("load-model-json-does-not-parse", garbled_checkpoint, ValueError, r"garbled\.json"),
    # ------------------------------------------------ files, data, generation (issue 24)
    C("generate-temperature-inf", lambda: tiny().generate(ids([3]), 2, temperature=math.inf), ValueError, "temperature"),
    C("generate-temperature-text", lambda: tiny().generate(ids([3]), 2, temperature="hot"), TypeError, "temperature"),
    C("generate-top-k-at-temperature-0", lambda: tiny().generate(ids([3]), 2, top_k=5), ValueError, "top_k", "temperature"),
    C("generate-no-tokens", lambda: tiny().generate(torch.zeros(1, 0, dtype=torch.long), 2), ValueError, r"\bidx\b", "empty"),
    C("answer-empty-prompt", lambda: mt.answer(tiny(), mt.CharTokenizer(), ""), ValueError, "prompt is empty"),
    C("config-block-size-1e12", lambda: GPTConfig(block_size=10**12), ValueError, "block_size"),
    C("config-block-size-float", lambda: GPTConfig(block_size=96.0), TypeError, "block_size"),
    C("config-n-layer-bool", lambda: GPTConfig(n_layer=True), TypeError, "n_layer"),
    C("config-too-many-parameters", lambda: GPTConfig(n_embd=2**15, n_head=1, n_layer=1024), ValueError, "parameters"),
    C("pretrain-corpus-too-large", pretrain_with(steps=1, config=GPTConfig(block_size=100_000)), ValueError, "block_size",
      "corpus"),
    C("pretrain-batch-larger-than-corpus", pretrain_with(steps=1, n_train=8, batch_size=9), ValueError, "batch_size"),
    C("pretrain-steps-1e12", pretrain_with(steps=10**12), ValueError, "steps"),
    C("pretrain-seed-none", pretrain_with(steps=1, seed=None), TypeError, "seed"),
    C("pretrain-device-unknown", pretrain_with(steps=1, device="tpu"), ValueError, "tpu"),
    C("pairs-seed-none", lambda: mt.Dataset.from_pairs(PAIR, seed=None), TypeError, "seed"),
    C("pairs-one-prompt-two-answers", lambda: mt.Dataset.from_pairs(PAIR + [("who says meow?", " the dog")]), ValueError,
      r"pairs\[0\]", r"pairs\[10\]", "two answers"),
    C("jsonl-not-utf8", latin1_jsonl, ValueError, r"latin1\.jsonl", "line 2", "UTF-8"),
    C("data-row-longer-than-the-context", row_longer_than_the_context, ValueError, r"long\.jsonl, line 9", "block_size"),
    C("load-edited-lora-alpha", lambda: edited_adapter_config("lora_alpha", 64), ValueError, "adapter_config.json",
      "edited"),
    C("load-edited-use-rslora", lambda: edited_adapter_config("use_rslora", True), ValueError, "adapter_config.json"),
    C("load-edited-method", lambda: edited_adapter_config("method", "qlora"), ValueError, "adapter_config.json"),
    C("load-config-null", lambda: adapter_record(config=None), ValueError, "adapter_config.json", "config"),
    C("load-method-a-list", lambda: adapter_record(method=["lora"]), ValueError, "adapter_config.json", "method"),
    C("load-truncated-base", truncated_base, ValueError, r"base\.safetensors"),
    C("load-base-folder-without-one", lambda: mt.load_base(tmp()), FileNotFoundError, "base.safetensors"),
    C("save-under-a-file", lambda: lora_model().save_pretrained(tmp() / "a_file" / "out"), ValueError, "a_file"),
    C("save-model-under-a-file", lambda: mt.save_model(tiny(), tmp() / "a_file" / "base"), ValueError, "a_file"),
    C("save-a-minituner-temporary-name", lambda: lora_model().save_pretrained(tmp() / ".minituner-tmp-0"), ValueError,
      "temporary"),
    C("check-writable-empty", lambda: importlib.import_module("minituner.checkpoint").check_writable(""), ValueError,
      "empty"),
    # ------------------------------------------------ every file through one door (issue 35)
    C("gpt2-config-does-not-parse", load_gpt2_base(write("config.json", "{not json")), ValueError,
      r"config\.json: not valid JSON at line 1"),
    C("gpt2-config-without-n-positions", load_gpt2_base(without("n_positions")), ValueError, r"config\.json",
      "n_positions"),
    C("gpt2-vocab-does-not-parse", load_gpt2_base(write("vocab.json", '{"a": 0,')), ValueError,
      r"vocab\.json: not valid JSON"),
    C("gpt2-merges-not-utf8", load_gpt2_base(write("merges.txt", b"#version: 0.2\n\xff \xfe\n")), ValueError,
      r"merges\.txt, line 2", "UTF-8"),
    C("gpt2-nan-weights", load_gpt2_base(weights("transformer.wte.weight", lambda t: t * math.nan)), ValueError,
      "wte", "NaN"),
    C("gpt2-wrong-shaped-tensor", load_gpt2_base(weights("transformer.wpe.weight", lambda t: t[:-1])), ValueError,
      "wpe", "shape"),
    C("gpt2-weights-not-safetensors", load_gpt2_base(write("model.safetensors", b"\x00" * 7)), ValueError,
      r"model\.safetensors", "not a safetensors file"),
    C("peft-adapter-nan", load_peft(peft_folder({"A": torch.full((2, 32), math.nan), "B": torch.zeros(96, 2)})),
      ValueError, r"adapter_model\.safetensors", "NaN"),
    C("peft-adapter-wrong-shape", load_peft(peft_folder({"A": torch.zeros(2, 32), "B": torch.zeros(95, 2)})),
      ValueError, "lora_B", r"\(96, r\)"),
    C("peft-adapter-missing-tensor", load_peft(peft_folder({"A": torch.zeros(2, 32)})), ValueError,
      r"lora_B\.weight is missing"),
    C("peft-adapter-config-does-not-parse", load_peft(peft_folder({"A": torch.zeros(2, 32), "B": torch.zeros(96, 2)},
                                                                  config="{not json")),
      ValueError, r"adapter_config\.json: not valid JSON at line 1"),
    C("load-adapter-config-is-a-fifo", lambda: mt.PeftModel.from_pretrained(tiny(), adapter_with_fifo_config()),
      ValueError, r"adapter_config\.json is a named pipe"),
    C("save-over-a-fifo", save_over_a_fifo, ValueError, r"adapter_config\.json is a named pipe"),
    C("jsonl-is-a-fifo", lambda: mt.Dataset.from_jsonl(fifo(tmp() / "fifo_data" / "pairs.jsonl")), ValueError,
      "named pipe"),
    C("jsonl-name-too-long", lambda: mt.Dataset.from_jsonl(tmp() / LONG), OSError, "306 bytes", "255"),
    C("save-model-into-an-existing-folder", lambda: save_model_into(tmp() / "runs"), ValueError, "is a folder",
      r"runs/base"),
    C("save-model-of-a-lora-model", lambda: mt.save_model(lora_model(), tmp() / "lora_as_base"), TypeError,
      "save_pretrained", "merge_and_unload"),
    C("save-model-of-a-gpt-holding-an-adapter", lambda: mt.save_model(lora_model().base, tmp() / "base_with_lora"),
      TypeError, "adapter"),
    C("save-name-too-long", lambda: lora_model().save_pretrained(tmp() / ("b" * 300)), ValueError, "300 bytes", "243"),
    C("save-over-an-adapter-peft-wrote", lambda: lora_model().save_pretrained(peft_folder(
        {"A": torch.zeros(2, 32), "B": torch.zeros(96, 2)})), ValueError, r"adapter_model\.safetensors was not written by minituner"),
    C("pairs-one-prompt-in-val-and-test", lambda: mt.Dataset.from_pairs(
        [(f"who says {w}?", " the cat") for w in "abcdef"], val=[("who says z?", " the z")],
        test=[("who says z?", " the z")]), ValueError, "both val and test"),
    C("evaluate-empty-split", evaluate_empty_split, ValueError, "empty"),
    C("train-under-no-grad", train_under_no_grad, ValueError, r"torch\.no_grad\(\)"),
    C("train-seed-text", train(seed="0"), TypeError, r"\bseed\b"),
    C("answer-virtual-tokens-fill-the-context", lambda: mt.answer(
        mt.prompt_tuning(tiny(), num_virtual_tokens=90), mt.CharTokenizer(), "who says meow"), ValueError,
      "90 virtual tokens", "block_size=96"),
    # ------------------------------------------------ the command line: exit 2, one line, no traceback
    C("cli-no-command", cli(), CliError, "COMMAND"),
    C("cli-unknown-command", cli("tune"), CliError, "tune"),
    C("cli-finetune-no-method", cli("finetune", "--data", PAIRS, "--out", tmp() / "o"), CliError, "--method"),
    C("cli-finetune-unknown-method", cli("finetune", "--method", "qlorra"), CliError, "--method", "lora"),
    *[C(f"cli-finetune{opt}={getattr(val, 'name', val)}",  # a path by its name: ids never hold a path
       cli("finetune", "--method", "lora", "--data", PAIRS, "--out", tmp() / "o", opt, val),
        CliError, re.escape(opt)) for opt, val in [
        ("--r", "0"), ("--r", "-1"), ("--r", "abc"), ("--r", "2.5"),
        ("--lora-alpha", "0"), ("--lora-alpha", "nan"), ("--lora-alpha", "inf"), ("--lora-alpha", "-4"),
        ("--lora-dropout", "1"), ("--target-modules", "qq_proj"), ("--target-modules", ","),
        ("--lr", "nan"), ("--lr", "inf"), ("--lr", "0"), ("--lr", "-0.1"),
        ("--steps", "0"), ("--steps", "-5"), ("--batch-size", "0"), ("--seed", "-1"),
        ("--patience", "0"), ("--eval-every", "0"), ("--val", "1.5"), ("--val", "0"), ("--test", "-0.1"),
        ("--num-virtual-tokens", "0"), ("--trainable-layers", "0"), ("--init", "zeros"),
        ("--data", tmp() / "nowhere.jsonl"), ("--out", tmp() / "a_file"), ("--base", tmp() / "no_base"),
    ]],
    C("cli-finetune-device-unknown", cli("finetune", "--method", "lora", "--data", PAIRS, "--out", tmp() / "o",
                                         "--device", "tpu"), CliError, "tpu", "cpu, cuda"),
    C("cli-finetune-device-cuda-unavailable", cli("finetune", "--method", "lora", "--data", PAIRS, "--out", tmp() / "o",
                                                  "--device", "cuda"), CliError, "CUDA was requested", needs_no_cuda=True),
    C("cli-finetune-data-does-not-parse", cli("finetune", "--method", "lora", "--data", tmp() / "broken.jsonl",
                                              "--out", tmp() / "o"), CliError, "broken.jsonl"),
    C("cli-finetune-data-unknown-character", cli("finetune", "--method", "lora", "--data", tmp() / "unknown_char.jsonl",
                                                 "--out", tmp() / "o"), CliError, "☺"),
    C("cli-generate-unknown-character", cli("generate", "who says ☺?"), CliError, "☺"),
    C("cli-generate-max-new-tokens-0", cli("generate", "--max-new-tokens", "0", "who"), CliError, "--max-new-tokens"),
    C("cli-generate-no-adapter-folder", cli("generate", "--adapter", tmp() / "no_adapter", "who"), CliError, "--adapter"),
    C("cli-generate-no-base-folder", cli("generate", "--base", tmp() / "no_base", "who"), CliError, "--base"),
    C("cli-generate-device-unknown", cli("generate", "--device", "tpu", "who"), CliError, "tpu"),
    C("cli-compare-out-is-a-file", cli("compare", "--steps", "1", "--out", tmp() / "a_file"), CliError, "--out", "a_file"),
    C("cli-compare-unknown-task", cli("compare", "--task", "zz"), CliError, "--task", "classify"),
    C("cli-compare-steps-0", cli("compare", "--steps", "0"), CliError, "--steps"),
    C("cli-compare-device-unknown", cli("compare", "--steps", "1", "--device", "tpu", "--out", tmp() / "cmp"), CliError,
      "tpu"),
    C("cli-compare-device-cuda-unavailable", cli("compare", "--steps", "1", "--device", "cuda", "--out", tmp() / "cmp"),
      CliError, "CUDA was requested", needs_no_cuda=True),
    C("cli-compare-seeds-0", cli("compare", "--seeds", "0"), CliError, "--seeds"),
    C("cli-compare-selected-missing", cli("compare", "--selected", tmp() / "nowhere.json"), CliError, "--selected"),
    C("cli-sweep-unknown-method", cli("sweep", "--methods", "qlorra"), CliError, "--methods", "lora"),
    C("cli-sweep-steps-0", cli("sweep", "--steps", "0"), CliError, "--steps"),
    C("cli-sweep-out-is-a-file", cli("sweep", "--out", tmp() / "a_file"), CliError, "--out"),
    C("cli-pretrain-into-the-package", cli("pretrain", "--steps", "1", "--out", ROOT / "minituner" / "assets"), CliError,
      "--overwrite-shipped-base"),
    C("cli-pretrain-n-head-does-not-divide", cli("pretrain", "--steps", "1", "--n-head", "3", "--out", tmp() / "pre"),
      CliError, "n_head"),
    C("cli-pretrain-block-size-0", cli("pretrain", "--block-size", "0"), CliError, "--block-size"),
    C("cli-pretrain-n-layer-0", cli("pretrain", "--n-layer", "0"), CliError, "--n-layer"),
    C("cli-pretrain-n-embd-negative", cli("pretrain", "--n-embd", "-8"), CliError, "--n-embd"),
    C("cli-pretrain-steps-0", cli("pretrain", "--steps", "0"), CliError, "--steps"),
    C("cli-pretrain-lr-nan", cli("pretrain", "--lr", "nan"), CliError, "--lr"),
    C("cli-pretrain-device-cuda-unavailable", cli("pretrain", "--steps", "1", "--device", "cuda", "--out", tmp() / "pre"),
      CliError, "CUDA was requested", needs_no_cuda=True),
    C("cli-notebooks-only-matches-nothing", cli("notebooks", "--only", "zz"), CliError, "zz", "00_y_equals_wx"),
    C("cli-generate-gpt2-nan-base", lambda: cli("generate", "--base", gpt2_with(
        weights("transformer.h.0.attn.c_attn.weight", lambda t: t / 0)), "the")(), CliError, "NaN"),
    C("cli-generate-peft-nan-adapter", lambda: cli("generate", "--base", gpt2_folder(), "--adapter", peft_folder(
        {"A": torch.full((2, 32), math.inf), "B": torch.ones(96, 2)}), "the")(), CliError, "NaN"),
    C("cli-generate-adapter-config-is-a-fifo", lambda: cli("generate", "--adapter", adapter_with_fifo_config(), "who")(),
      CliError, "named pipe"),
    C("cli-generate-adapter-is-a-fifo", lambda: cli("generate", "--adapter", fifo(tmp() / "fifo_adapter" / "a"), "who")(),
      CliError, "--adapter", "named pipe"),
    C("cli-finetune-data-is-a-folder", cli("finetune", "--method", "lora", "--data", tmp(), "--out", tmp() / "o"),
      CliError, "--data", "is a folder"),
    C("cli-finetune-data-name-too-long", cli("finetune", "--method", "lora", "--data", tmp() / LONG, "--out",
                                             tmp() / "o"), CliError, "--data", "306 bytes"),
    C("cli-finetune-out-name-too-long", cli("finetune", "--method", "lora", "--data", PAIRS, "--out", tmp() / LONG),
      CliError, "--out", "306 bytes"),
    C("cli-finetune-out-holds-other-files", lambda: cli("finetune", "--method", "lora", "--data", PAIRS, "--out",
                                                        folder_holding("notes.txt"))(), CliError, "notes.txt"),
    C("cli-finetune-out-holds-a-foreign-adapter-config", lambda: cli(
        "finetune", "--method", "lora", "--data", PAIRS, "--out", folder_holding("adapter_config.json", "{}"))(),
      CliError, r"adapter_config\.json was not written by minituner"),
    C("cli-pretrain-out-holds-a-foreign-base-json", lambda: cli(
        "pretrain", "--steps", "1", "--out", folder_holding("base.json", '{"mine": 1}'))(), CliError,
      r"base\.json was not written by minituner"),
]


def marks(case: Case):
    m = []
    if case.needs_no_cuda:
        m.append(pytest.mark.skipif(not NO_CUDA, reason="a GPU is present: CUDA is available"))
    return m


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=marks(c)) for c in CASES])
def test_bad_input_is_a_clear_error(case):
    with pytest.raises(case.error) as info:
        case.run()
    message = str(info.value)
    for pattern in case.names:
        assert re.search(pattern, message), f"{pattern!r} not in the message: {message!r}"
    if case.error is CliError:
        assert "Traceback" not in message
        assert len(message.strip().splitlines()) == 1, f"not one line: {message!r}"


def test_the_table_is_large_and_covers_api_and_cli():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
    assert sum(c.error is CliError for c in CASES) >= 20 and sum(c.error is not CliError for c in CASES) >= 20


# ---------------------------------------------------------------- saving: nothing overwritten, nothing half-written
def test_dotted_save_names_do_not_overwrite_each_other(tmp_path):
    a, b = lora_model(), mt.get_peft_model(tiny(), mt.LoraConfig(r=2, lora_alpha=4, target_modules=["k_proj"]))
    a.save_pretrained(tmp_path / "adapter.v1")
    b.save_pretrained(tmp_path / "adapter.v2")
    for model, name in ((a, "adapter.v1"), (b, "adapter.v2")):
        again = mt.PeftModel.from_pretrained(tiny(), tmp_path / name)
        assert again.adapter_state_dict().keys() == model.adapter_state_dict().keys()


def test_an_existing_folder_as_save_path_is_written_into_not_beside(tmp_path):
    (tmp_path / "out").mkdir()
    lora_model().save_pretrained(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]


def test_a_save_leaves_no_temporary_files(tmp_path):
    model = lora_model()
    model.save_pretrained(tmp_path / "x")
    model.save_pretrained(tmp_path / "x")  # saving again replaces the pair
    assert [p.name for p in tmp_path.rglob("*") if "tmp" in p.name] == []
    assert json.loads((tmp_path / "x" / "adapter_config.json").read_text())["method"] == "lora"
