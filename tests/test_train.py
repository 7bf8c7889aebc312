"""Training, evaluation and checkpoints (AdamW itself: test_optim.py)."""

import dataclasses
import json

import pytest
import torch

import minituner
from minituner.checkpoint import load_model, record_sha256, save_model
from minituner.dataset import Dataset, encode_examples
from minituner.train import History, best_score, evaluate, train


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


@pytest.mark.parametrize("method", ["base", "prompt"])
def test_evaluate_in_cut_chunks_gives_the_bits_of_one_padded_pass(base, classify, method):
    """evaluate() runs length-sorted chunks cut after the last answer token; the loss and every
    row's verdict must be the same bits as one pass over the padded rows per batch_size block."""
    model = base if method == "base" else minituner.prompt_tuning(base, num_virtual_tokens=4, seed=1)
    rows = slice(0, 64)  # two blocks of the loss sum: 40 + 24 rows
    split, block = dataclasses.replace(classify.test, x=classify.test.x[rows], y=classify.test.y[rows],
                                       mask=classify.test.mask[rows], examples=classify.test.examples[rows]), 40
    total, count, correct = 0.0, 0.0, []
    with torch.no_grad():
        for i in range(0, len(split), block):
            x, y, m = split.x[i:i + block], split.y[i:i + block], split.mask[i:i + block]
            logits = model(x)
            total += minituner.functional.cross_entropy(logits, y, m).item() * m.sum().item()
            count += m.sum().item()
            correct += ((logits.argmax(-1) == y) | (m == 0)).all(dim=1).tolist()
    for chunk in (1, 7, 32, len(split)):
        ev = evaluate(model, split, batch_size=block, chunk=chunk)
        assert ev["loss"] == total / count
        assert ev["correct"] == correct


def test_checkpoint_round_trip_and_edited_config(tiny, tmp_path):
    path = save_model(tiny, tmp_path / "m", {"note": "x"})
    loaded, meta = load_model(path)
    x = torch.randint(0, tiny.config.vocab_size, (2, 9))
    assert torch.equal(loaded(x), tiny(x))
    assert meta["fingerprint"] == minituner.fingerprint(tiny) and meta["note"] == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]  # no temporary file left
    cfg = json.loads((tmp_path / "m.json").read_text())
    cfg["config"]["n_embd"] = 32
    (tmp_path / "m.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"m\.json: .* edited"):  # the sha256 covers the config
        load_model(path)
    cfg["sha256"] = record_sha256(cfg)  # a consistent record of another shape: the tensors do not fit
    (tmp_path / "m.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="different saves"):
        load_model(path)


def test_pretrain_command_writes_a_loadable_base_with_its_recipe(tmp_path, capsys):
    from minituner.cli import main

    assert main(["pretrain", "--steps", "3", "--n-layer", "1", "--n-embd", "16", "--n-head", "2",  # small: fast
                 "--out", str(tmp_path / "b"), "--quiet"]) == 0
    model, meta = load_model(tmp_path / "b" / "base")  # the folder holds base.safetensors + base.json
    assert meta["recipe"]["steps"] == 3 and meta["held_out_loss"] > 0
    assert meta["fingerprint"] == minituner.fingerprint(model)
    assert "held-out loss" in capsys.readouterr().out


def conflicting(tok) -> Dataset:
    """Train and val give opposite answers to one prompt: the better the model fits train, the worse val.
    The test split is None, so a train() that touched it would fail."""
    train_split = encode_examples("train", [("say it:", " yes")], tok)
    val_split = encode_examples("val", [("say it:", " no")], tok)
    return Dataset("conflict", train_split, val_split, None, tok)


def test_train_scores_val_only_and_patience_restores_the_best_weights(tiny):
    data = conflicting(minituner.CharTokenizer())
    hist = train(tiny, data, steps=60, lr=1e-2, batch_size=4, eval_every=5, patience=2, progress=False)
    assert hist.stopped_early and len(hist.losses) < 60
    best = max(hist.val, key=best_score)  # val accuracy stays 0 here: the lower loss decides
    assert hist.best_step == best[0] and hist.val[-1][1] > best[1]
    assert evaluate(tiny, data.val)["loss"] == pytest.approx(best[1], abs=1e-6)  # the best weights are back
    assert "stopped early" in repr(hist) and f"at step {best[0]}" in repr(hist) and len(repr(hist)) < 200


def test_best_score_puts_accuracy_before_loss():
    evals = [(5, 0.20, 0.10), (10, 0.30, 0.50), (15, 0.25, 0.50), (20, 0.10, 0.40)]
    assert max(evals, key=best_score)[0] == 15  # highest accuracy; of the two at 0.5 the lower loss


def test_history_plot_draws_the_train_and_validation_curves(tiny, classify):
    hist = train(tiny, classify, steps=6, lr=1e-3, batch_size=4, eval_every=3, progress=False)
    assert [e[0] for e in hist.val] == [3, 6]
    ax = hist.plot()
    assert [line.get_label() for line in ax.get_lines()][:2] == ["train loss", "validation loss"]
    assert repr(History()) == "History(0 steps)"


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(data=[("a", "b")]), TypeError, "Dataset.from_pairs"),
    (dict(steps=2.5), TypeError, "steps must be an int"),
    (dict(steps=0), ValueError, "steps must be >= 1"),
    (dict(batch_size="8"), TypeError, "batch_size must be an int"),
    (dict(lr=float("nan")), ValueError, "lr must be a finite number > 0"),
    (dict(lr=float("inf")), ValueError, "lr must be"),
    (dict(lr=0), ValueError, "lr must be"),
    (dict(lr=-1e-3), ValueError, "lr must be"),
    (dict(grad_clip=-1.0), ValueError, "grad_clip must be a finite number >= 0"),
    (dict(grad_clip=float("nan")), ValueError, "grad_clip"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (dict(eval_every=-1), ValueError, "eval_every"),
    (dict(patience=3), ValueError, "patience needs eval_every"),
    (dict(patience=0, eval_every=2), ValueError, "patience must be >= 1"),
])
def test_train_bad_arguments_are_clear_errors_before_any_step(tiny, classify, kwargs, error, match):
    before = minituner.fingerprint(tiny)
    with pytest.raises(error, match=match):
        train(tiny, kwargs.pop("data", classify), **{"steps": 3, "progress": False, **kwargs})
    assert minituner.fingerprint(tiny) == before


def test_evaluate_wants_a_split(tiny, classify):
    with pytest.raises(TypeError, match="data.val or data.test"):
        evaluate(tiny, classify)


def test_answer_stops_at_the_end_marker_and_says_when_the_context_ends(base, tiny):
    tok = minituner.CharTokenizer()
    world = minituner.make_world(0)
    assert minituner.answer(base, tok, "the cat eats") == f" {world.facts['cat']['food']}."
    cut = minituner.answer(tiny, tok, "x" * 90)  # a random model never says the marker
    assert cut.endswith("[…context limit]") and len(cut) == 6 + len(" […context limit]")
