"""`minituner sweep` and `minituner compare` with a tiny step count: selection on validation only,
the files they write, and mean ± std over seeds."""

import dataclasses
import json

import pytest

from minituner import experiments as cmp
from minituner.cli import main
from minituner.data import make_task
from minituner.experiments import protocol
from minituner.train import evaluate


@pytest.fixture
def settings(tmp_path):
    """A selected.json with one cheap setting per method."""
    hp = {"scratch": {"lr": 1e-3}, "full": {"lr": 1e-4}, "freeze": {"trainable_layers": 1, "lr": 1e-3},
          "prompt": {"num_virtual_tokens": 4, "lr": 3e-2}, "prefix": {"num_virtual_tokens": 4, "lr": 1e-2},
          "ptuning-v2": {"num_virtual_tokens": 4, "lr": 3e-2}, "lora": {"r": 2, "lr": 3e-3}, "bitfit": {"lr": 1e-3},
          "ia3": {"lr": 1e-2}, "dora": {"r": 2, "lr": 3e-3}, "qlora": {"r": 2, "lr": 3e-3}}
    path = tmp_path / "selected.json"
    path.write_text(json.dumps({"classify": hp}))
    return path


def first_rows(split, n: int = 16):
    return dataclasses.replace(split, x=split.x[:n], y=split.y[:n], mask=split.mask[:n], examples=split.examples[:n])


@pytest.fixture
def small_task(monkeypatch):
    """cmp's tasks with validation and test cut to their first rows (runs in this process read them, jobs=1)."""
    real = protocol.make_task

    def small(task):
        data = real(task)
        return dataclasses.replace(data, val=first_rows(data.val), test=first_rows(data.test))

    monkeypatch.setattr(protocol, "make_task", small)
    protocol._loaded.cache_clear()
    protocol.base_scores.cache_clear()
    yield
    protocol._loaded.cache_clear()
    protocol.base_scores.cache_clear()


def test_sweep_chooses_on_validation_and_never_reads_test(tmp_path, monkeypatch, small_task):
    small = protocol.make_task

    def no_test(task):  # a task whose test split is None: touching it would fail
        data = small(task)
        data.test = None
        return data

    monkeypatch.setattr(protocol, "make_task", no_test)
    chosen = cmp.sweep("classify", out=tmp_path, methods=["lora", "full"], steps=2, progress=False, jobs=1)
    assert set(chosen) == {"lora", "full"} and chosen["lora"] in cmp.row("lora").settings()
    table = (tmp_path / "sweep_classify.md").read_text()
    body = table.split("\n\n", 1)[1]  # the header explains the ✓; the rows carry two
    assert body.count("✓") == 2 and "test" not in body
    assert json.loads((tmp_path / "selected.json").read_text())["classify"] == chosen
    with pytest.raises(ValueError, match="unknown method"):
        cmp.sweep("classify", out=tmp_path, methods=["lorra"])


def test_relabel_scores_split_the_cat_and_dog_answers_from_the_rest(base):
    from minituner.methods.shortcuts import full

    relabel, classify = make_task("relabel"), make_task("classify")
    scores = cmp.relabel_scores(full(base), relabel)
    assert scores["swap, unseen"] + scores["old name, unseen"] <= 1  # one answer per row
    assert scores["swap, seen"] < 0.2 and scores["old name, unseen"] > scores["swap, unseen"]  # the base: old names
    cd = [a in {" cat.", " dog."} for _, a in classify.test.examples]
    correct = evaluate(full(base), classify.test)["correct"]
    others = [c for c, x in zip(correct, cd) if not x]
    assert scores["others, test"] == pytest.approx(sum(others) / len(others))  # unchanged labels score alike


def test_compare_reports_mean_and_std_over_seeds_and_writes_its_files(tmp_path, settings, capsys, small_task):
    out = tmp_path / "cmp"
    assert main(["compare", "--steps", "2", "--seeds", "2", "--selected", str(settings), "--out", str(out),
                 "--jobs", "1"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == 2 and [r["method"] for r in results["rows"]] == [m.label for m in cmp.rows()]
    for r in results["rows"]:
        for col in ("test acc", "test loss"):
            values = [run[col] for run in r["runs"]]
            assert len(values) == 2 and r[col] == pytest.approx(sum(values) / 2)
            assert r[col + " std"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
    assert any(r["test loss std"] > 0 for r in results["rows"])  # the seeds differ, so the std is not 0 by default
    pct = {r["method"]: r["trainable %"] for r in results["rows"]}
    assert pct["full (全量微调)"] == 100 and pct["LoRA"] < 3 and pct["QLoRA"] < 3  # a 4-bit weight counts in full
    assert "±" in (out / "table.md").read_text()
    assert all(("forgetting" in r) is (r["key"] != "scratch") for r in results["rows"])
    assert results["base"]["probe acc"] == 1.0  # the shipped base knows every fact it was taught
    assert "forgetting" in (out / "table.md").read_text()
    assert all((out / f).stat().st_size > 1000 for f in ("curves.png", "tradeoff.png", "forgetting.png"))
    printed = capsys.readouterr().out
    assert "test acc" in printed and "forgetting" in printed and "forgetting.png" in printed


def test_forgetting_is_the_base_probe_accuracy_minus_the_runs(small_task):
    """An adapter that barely moved forgets nothing (exactly 0); full fine-tuning at a rate far too high
    tears facts out (> 0); the from-scratch floor has no base to forget."""
    still = protocol.job("classify", "lora", {"r": 2, "lr": 1e-9}, 0, 2, "cpu", True)
    assert still["forgetting"] == 0.0
    torn = protocol.job("classify", "full", {"lr": 1e-2}, 0, 20, "cpu", True)
    assert 0 < torn["forgetting"] <= protocol.base_scores("classify")["probe acc"]
    assert "forgetting" not in protocol.job("classify", "scratch", {"lr": 1e-3}, 0, 2, "cpu", True)


def test_compare_refuses_a_file_as_out_before_training(tmp_path, settings):
    f = tmp_path / "a_file"
    f.write_text("x")
    with pytest.raises(ValueError, match="is an existing file"):
        cmp.compare(out=f, selected=settings)
    with pytest.raises(ValueError, match="seeds must be"):
        cmp.compare(seeds=0, selected=settings, out=tmp_path)


def test_shipped_selection_names_every_method_with_every_hyper_parameter_of_its_grid():
    shipped = cmp.selected_settings()
    assert set(shipped) == {"classify", "relabel", "qa"}
    for task, chosen in shipped.items():
        assert set(chosen) == {m.key for m in cmp.rows()}, task
        for key, hp in chosen.items():
            assert hp in cmp.row(key).settings(), (task, key)  # a setting of the method's own grid


def test_a_runs_validation_score_is_that_of_the_weights_it_returns(base, classify):
    """run() reads the best evaluation from the History instead of scoring validation again: train() restored
    exactly those weights, so a fresh evaluation gives the same bits."""
    data = dataclasses.replace(classify, val=first_rows(classify.val))
    model, hist, val = cmp.run(cmp.row("lora"), {"r": 2, "lora_alpha": 8, "lr": 3e-2}, base, data, seed=0, steps=55)
    again = evaluate(model, data.val)
    assert (val["loss"], val["accuracy"]) == (again["loss"], again["accuracy"]) and len(hist.val) >= 1
