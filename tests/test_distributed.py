"""Data parallel: two CPU processes with half the batch each end where one process with the whole batch ends
(train_ddp, and `minituner finetune --nproc 2`)."""

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
from minituner.distributed import METHODS, allreduce_bytes, backend_for, build, spawn, train_ddp

PAIRS = Path(__file__).resolve().parents[1] / "docs" / "examples" / "pairs.jsonl"

STEPS, BATCH, LR = 3, 8, 1e-3


def trainable(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def train_each_method(out):
    """Runs in every rank: each method trained a few steps with DDP, its trainable tensors saved."""
    base, data = minituner.load_base(), minituner.make_task("classify")
    for method in METHODS:
        model = build(method, base)
        hist = train_ddp(model, data, steps=STEPS, lr=LR, batch_size=BATCH, seed=0)
        meta = {"bytes": str(hist.allreduce_bytes), "losses": json.dumps(hist.losses)}
        save_file(trainable(model), f"{out}/{method}-{dist.get_rank()}.safetensors", metadata=meta)


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    spawn(train_each_method, nproc=2, args=(str(out),))
    return out


@pytest.mark.parametrize("method", METHODS)
def test_two_processes_with_half_the_batch_equal_one_with_the_whole(ddp_runs, base, classify, method):
    ref = build(method, base)
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
    from safetensors import safe_open

    with safe_open(ddp_runs / f"{method}-0.safetensors", "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["losses"]) == pytest.approx(hist.losses, rel=1e-5)
    assert int(meta["bytes"]) == allreduce_bytes(ref)  # only trainable tensors travel


def test_allreduce_bytes_are_the_trainable_tensors(base):
    full, lora, prompt = (allreduce_bytes(build(m, base)) for m in ("full", "lora", "prompt_tuning"))
    assert full == 4 * minituner.count_parameters(base)[1]
    assert prompt == 4 * 4 * base.config.n_embd  # k × d floats
    assert prompt < lora < full / 10


def test_finetune_nproc_2_saves_the_adapter_one_process_saves(base, tmp_path, capfd):
    """The command line: 2 processes with 2 rows each save (rank 0 alone) the adapter that 1 process with
    the batch of 4 saves. The 1-process run validates at its last step only, so it keeps the last weights too."""
    run = ["finetune", "--method", "lora", "--data", str(PAIRS), "--steps", str(STEPS), "--batch-size", "4"]
    assert main([*run, "--out", str(tmp_path / "one")]) == 0
    capfd.readouterr()
    assert main([*run, "--out", str(tmp_path / "two"), "--nproc", "2"]) == 0
    printed = capfd.readouterr().out
    assert printed.count("trainable params") == printed.count("saved ") == 1  # one rank prints
    assert "2 processes with 2 rows each, 32,768 bytes all-reduced per step" in printed
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    one, two = (minituner.PeftModel.from_pretrained(base, tmp_path / d).adapter_state_dict() for d in ("one", "two"))
    assert one.keys() == two.keys()
    for name, t in one.items():
        torch.testing.assert_close(two[name], t, rtol=1e-4, atol=1e-6, msg=name)
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
    (["--patience", "2"], "cannot honour --patience"),
    (["--eval-every", "5", "--lora-dropout", "0.1"], "cannot honour --eval-every, --lora-dropout"),
    (["--batch-size", "5"], "must split evenly over 2 processes"),
])
def test_finetune_nproc_refuses_what_the_processes_cannot_do(eight_cores, tmp_path, capsys, extra, says):
    code = main(["finetune", "--method", "lora", "--data", str(PAIRS), "--out", str(tmp_path / "o"), "--nproc", "2",
                 *extra])
    assert code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
