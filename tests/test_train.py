"""Training, evaluation and checkpoints (AdamW itself: test_optim.py)."""

import json

import pytest
import torch

import minituner
from minituner.checkpoint import load_model, save_model
from minituner.train import evaluate, train


def test_same_seed_gives_bit_identical_losses(tiny, classify):
    runs = [train(__import__("copy").deepcopy(tiny), classify, steps=5, lr=1e-3, batch_size=8, seed=7, progress=False)
            for _ in range(2)]
    assert runs[0].losses == runs[1].losses
    other = train(__import__("copy").deepcopy(tiny), classify, steps=5, lr=1e-3, batch_size=8, seed=8, progress=False)
    assert other.losses != runs[0].losses


def test_non_finite_loss_names_the_step(tiny, classify):
    with torch.no_grad():
        tiny.wte.weight[0, 0] = float("nan")
    with pytest.raises(RuntimeError, match="at step 0"):
        train(tiny, classify, steps=3, progress=False)


def test_teacher_forced_accuracy_equals_greedy_generation(base, classify):
    ev = evaluate(base, classify.test)
    tok = classify.tokenizer
    for n in range(0, len(classify.test), 9):
        prompt, ans = classify.test.examples[n]
        assert (minituner.answer(base, tok, prompt) == ans) == ev["correct"][n]


def test_checkpoint_round_trip_and_shape_mismatch(tiny, tmp_path):
    path = save_model(tiny, tmp_path / "m", {"note": "x"})
    loaded, meta = load_model(path)
    x = torch.randint(0, tiny.config.vocab_size, (2, 9))
    assert torch.equal(loaded(x), tiny(x))
    assert meta["fingerprint"] == minituner.fingerprint(tiny) and meta["note"] == "x"
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind
    cfg = json.loads((tmp_path / "m.json").read_text())
    cfg["config"]["n_embd"] = 32
    (tmp_path / "m.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="has shape"):
        load_model(path)


def test_pretrain_command_writes_a_loadable_base_with_its_recipe(tmp_path, capsys):
    from minituner.cli import main

    assert main(["pretrain", "--steps", "3", "--out", str(tmp_path / "b"), "--quiet"]) == 0
    model, meta = load_model(tmp_path / "b")
    assert meta["recipe"]["steps"] == 3 and meta["held_out_loss"] > 0
    assert meta["fingerprint"] == minituner.fingerprint(model)
    assert "held-out loss" in capsys.readouterr().out
