"""Data parallel: two CPU processes with half the batch each end where one process with the whole batch ends
(train() in a process group, and `minituner finetune --nproc 2`), validation and early stopping included."""

import copy
import dataclasses
import json
import os
import re
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file

import minituner
from minituner.cli import main
from minituner.dataset import Split
from minituner.distributed import allreduce_bytes, rank_generators
from minituner.launch import backend_for, build, spawn

PAIRS = Path(__file__).resolve().parents[1] / "docs" / "examples" / "pairs.jsonl"

STEPS, BATCH, LR = 3, 8, 1e-3
EARLY = dict(steps=8, lr=3e-2, batch_size=BATCH, seed=0, eval_every=1, patience=2)  # lora: stops early (checked)

METHODS = ("full", "lora", "prompt")  # a method that trains everything, an adapter, a soft prompt


def trainable(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def small_val(data):
    """classify with 16 validation rows: evaluations stay cheap."""
    return dataclasses.replace(data, val=Split("val", data.val.x[:16], data.val.y[:16], data.val.mask[:16]))


def train_each_method(out):
    """Runs in every rank: each method trained a few steps by train() inside the process group, its
    trainable tensors saved; then LoRA with validation every step and early stopping."""
    base, data = minituner.load_base(), minituner.make_task("classify")
    runs = [(method, dict(steps=STEPS, lr=LR, batch_size=BATCH, seed=0)) for method in METHODS]
    for method, kw in [*runs, ("early", EARLY)]:
        model = build("lora" if method == "early" else method, base)
        hist = minituner.train(model, small_val(data) if method == "early" else data, progress=False, **kw)
        meta = {"bytes": str(hist.allreduce_bytes), "losses": json.dumps(hist.losses), "val": json.dumps(hist.val),
                "best": json.dumps([hist.best_step, hist.stopped_early])}
        save_file(trainable(model), f"{out}/{method}-{dist.get_rank()}.safetensors", metadata=meta)


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    spawn(train_each_method, nproc=2, args=(str(out),))
    return out


def saved(path) -> dict:
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        return {k: json.loads(v) for k, v in f.metadata().items()}


@pytest.mark.xdist_group("ddp_runs")  # one worker runs the fixture, once
@pytest.mark.parametrize("method", [*METHODS, "early"])
def test_two_processes_with_half_the_batch_equal_one_with_the_whole(ddp_runs, base, classify, method):
    ref = build("lora" if method == "early" else method, base)
    if method == "early":
        hist = minituner.train(ref, small_val(classify), progress=False, **EARLY)
        assert hist.stopped_early and hist.best_step < len(hist.losses)  # so the best weights were put back
        meta = saved(ddp_runs / "early-1.safetensors")  # rank 1 never evaluated: it took rank 0's decisions
        assert meta["best"] == [hist.best_step, True]
        assert sum(meta["val"], []) == pytest.approx([x for v in hist.val for x in v], rel=1e-4)  # (step, loss, acc)
    else:
        hist = minituner.train(ref, classify, steps=STEPS, lr=LR, batch_size=BATCH, seed=0, progress=False)
    expected = trainable(ref)
    for rank in (0, 1):
        path = ddp_runs / f"{method}-{rank}.safetensors"
        got = load_file(path)
        assert got.keys() == expected.keys()
        # Adam divides by sqrt(v): an entry whose true gradient is ~0 (a key bias shifts a whole row of
        # scores, softmax(s + q·b) = softmax(s)) moves by ±lr on float rounding alone, which the two
        # ways of summing the batch round differently. So: every tensor within float tolerance except
        # such entries, and those must be rare.
        close = [torch.isclose(got[n], t, rtol=1e-4, atol=1e-6) for n, t in expected.items()]
        share = sum(c.sum().item() for c in close) / sum(c.numel() for c in close)
        assert share > 0.995, f"{method}: only {share:.5f} of the trained entries agree"  # full: 0.9989 measured
    meta = saved(ddp_runs / f"{method}-0.safetensors")
    assert meta["losses"] == pytest.approx(hist.losses, rel=1e-5)
    assert meta["bytes"] == allreduce_bytes(ref)  # only trainable tensors travel


def test_allreduce_bytes_are_the_trainable_tensors(base):
    full, lora, prompt = (allreduce_bytes(build(m, base)) for m in ("full", "lora", "prompt"))
    assert full == 4 * minituner.count_parameters(base)[1]
    assert prompt == 4 * 4 * base.config.n_embd  # k × d floats
    assert prompt < lora < full / 10


def test_finetune_nproc_2_saves_the_adapter_one_process_saves(base, tmp_path, capfd):
    """The command line: 2 processes with 2 rows each save (rank 0 alone) the adapter that 1 process with
    the batch of 4 saves, both validating every 2 steps and stopping early, the best weights put back."""
    run = ["finetune", "--method", "lora", "--data", str(PAIRS), "--steps", "20", "--batch-size", "4", "--lr", "0.03",
           "--eval-every", "2", "--patience", "2"]
    assert main([*run, "--out", str(tmp_path / "one")]) == 0
    stopped = re.search(r"early-stopped at step \d+, best validation accuracy \(ties: lower loss\) at step \d+\); "
                        r"test \(\d+ pairs\): loss [\d.]+", capfd.readouterr().out)
    assert stopped, "the one-process run must stop early for this test to check early stopping"
    assert main([*run, "--out", str(tmp_path / "two"), "--nproc", "2"]) == 0
    printed = capfd.readouterr().out
    assert printed.count("trainable params") == printed.count("saved ") == 1  # one rank prints
    assert "2 processes with 2 rows each, 32,768 bytes all-reduced per step; " + stopped.group() in printed
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    one, two = (minituner.PeftModel.from_pretrained(base, tmp_path / d).adapter_state_dict() for d in ("one", "two"))
    assert one.keys() == two.keys()
    for name, t in one.items():  # 4 AdamW steps at lr 0.03: rounding moves a rare entry by up to ~1e-4
        torch.testing.assert_close(two[name], t, rtol=1e-4, atol=2e-4, msg=name)
    assert all(t.abs().sum() > 0 for n, t in two.items() if "lora_B" in n)  # trained: lora_B starts at zero


@pytest.fixture
def eight_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.mark.parametrize("nproc, batch, device, says", [
    (0, 4, "cpu", "nproc must be >= 1"),
    (9, 18, "cpu", "8 CPU cores"),
    (3, 4, "cpu", "batch_size 4 must split evenly over 3 processes"),
    (3, 6, "cuda", "the 2 GPU"),
    (2, 4, "cuda:1", "give device 'cuda'"),
    (2, 4, "mps", "use device cpu (gloo) or cuda (nccl)"),
])
def test_backend_for_refuses_what_cannot_run(eight_cores, nproc, batch, device, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        backend_for(nproc, batch, device)


def test_backend_for_is_gloo_on_cpus_and_nccl_on_gpus(eight_cores):
    assert backend_for(8, 16, "cpu") == "gloo" and backend_for(2, 4, "cuda") == "nccl"


@pytest.mark.parametrize("extra, says", [
    (["--batch-size", "5"], "must split evenly over 2 processes"),
    (["--r", "100"], "LoRA rank r=100 is larger"),
])
def test_finetune_nproc_refuses_what_the_processes_cannot_do(eight_cores, tmp_path, capsys, extra, says):
    code = main(["finetune", "--method", "lora", "--data", str(PAIRS), "--out", str(tmp_path / "o"), "--nproc", "2",
                 *extra])
    assert code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_each_rank_draws_its_own_lora_dropout_masks(base):
    """rank_generators: rank 0 keeps the one-process masks, rank 1 draws others, each from a seeded generator."""
    model = minituner.lora(base, r=2, lora_dropout=0.5).train()
    x = minituner.make_task("classify").train.x[:2]
    outs = []
    for rank in (0, 0, 1, 1):
        m = copy.deepcopy(model)  # the generators' states are copied too
        rank_generators(m, rank)
        with torch.no_grad():
            m.base.h[0].attn.q_proj.lora_B["default"].fill_(1.0)  # so the masks reach the logits
            outs.append(m(x))
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[2], outs[3])  # seeded: the same masks again
    assert not torch.equal(outs[0], outs[2])  # another rank, other masks
