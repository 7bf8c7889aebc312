"""One list of methods: a method registered in one place reaches every entry point — the command line
(its options generated from the config's fields), the comparison, the memory model and
get_peft_model — and no second list of method names exists in the package."""

import ast
import dataclasses
import json
import re
from pathlib import Path
from typing import ClassVar

import pytest
import torch
import torch.nn as nn

import minituner
from minituner import experiments
from minituner.cli import build_parser, main
from minituner.memory import estimate_memory, gpt_shape
from minituner.methods import METHODS, MODELS, Method, PeftModel, get_peft_model, ordered, register
from minituner.methods.fields import MethodConfig, peft_config
from minituner.methods.options import option

PACKAGE = Path(minituner.__file__).parent


@peft_config
class TemperatureConfig(MethodConfig):
    """A toy method: one trainable number that divides the logits."""

    method: ClassVar[str] = "toy_temperature"
    start: float = option(1.0, "the temperature's first value", gt=0, le=100, short="t0")


class TemperatureModel(PeftModel):
    def __init__(self, base, config, adapter_name="default"):
        super().__init__(base, config, adapter_name)
        self.temperature = nn.Parameter(torch.tensor(config.start))

    def forward(self, idx, kv_cache=None):
        return self.base(idx, kv_cache=kv_cache) / self.temperature  # (B, T, V)


@pytest.fixture
def toy():
    """The toy method registered for one test, then removed again."""
    method = register(Method("toy", "toy temperature", TemperatureConfig, TemperatureModel, order=99,
                             grid={"start": [1.0, 2.0], "lr": [1e-2]}, memory="prompt"))
    yield method
    del METHODS["toy"], MODELS[TemperatureConfig]


def test_a_method_registered_once_is_everywhere(toy, tiny, tmp_path, capsys):
    # get_peft_model and a saved model's round trip
    model = get_peft_model(tiny, TemperatureConfig(start=2.0))
    assert isinstance(model, TemperatureModel) and [n for n, p in model.named_parameters() if p.requires_grad] == \
        ["temperature"]
    model.save_pretrained(tmp_path / "saved")
    assert minituner.PeftModel.from_pretrained(tiny, tmp_path / "saved").temperature.item() == 2.0
    # the command line: --method, its generated option with help and range, the memory command
    sub = build_parser()._subparsers._group_actions[0].choices
    help_text = " ".join(sub["finetune"].format_help().split())
    assert "toy" in next(a for a in sub["finetune"]._actions if a.dest == "method").choices
    assert "--start START the temperature's first value (default: 1.0)" in help_text
    assert "toy" in next(a for a in sub["memory"]._actions if a.dest == "method").choices
    pairs = Path(__file__).parents[1] / "docs" / "examples" / "pairs.jsonl"
    out = tmp_path / "ft"
    args = ["finetune", "--method", "toy", "--data", str(pairs), "--out", str(out), "--steps", "1", "--lr", "0.01"]
    assert main([*args, "--start", "0"]) == 2 and "--start" in capsys.readouterr().err and not out.exists()
    assert main([*args, "--start", "3"]) == 0 and (out / "adapter_config.json").is_file()
    # the comparison: a row of its own, swept over its grid
    assert "toy" in [m.key for m in experiments.rows()]
    chosen = experiments.sweep("classify", out=tmp_path / "sweep", methods=["toy"], steps=2, progress=False, jobs=1)
    assert chosen["toy"] in toy.settings() and "t0=" in (tmp_path / "sweep" / "sweep_classify.md").read_text()
    # the memory model
    assert estimate_memory(gpt_shape(tiny.config), "toy", bits=32).trainable == 20 * tiny.config.n_embd


def test_no_second_list_of_method_names_in_the_package():
    """A tuple, list or set literal holding three or more registered keys (or config method names) is a copy
    of the registry; so is a dict keyed by them."""
    names = {m.key for m in METHODS.values()} | {c.method for c in MODELS}
    found = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        exports = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign)
                   and any(getattr(t, "id", "") in ("__all__", "SECTIONS") for t in n.targets)}
        for node in ast.walk(tree):  # (__all__ lists function names; verify's SECTIONS its modules, by article section)
            if id(node) in exports:
                continue
            items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None) \
                if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else None
            words = {i.value for i in items or [] if isinstance(i, ast.Constant) and isinstance(i.value, str)}
            if len(words & names) >= 3:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {sorted(words & names)}")
    assert not found, found


def test_every_grid_names_config_fields_and_the_shipped_selection_is_on_a_grid():
    selection = experiments.selected_settings()
    for m in experiments.rows():
        fields = {f.name for f in dataclasses.fields(m.config)}
        for setting in m.settings():
            assert set(setting) - {"lr"} <= fields, m.key
            m.make_config(**{k: v for k, v in setting.items() if k != "lr"})  # every setting builds a config
        for task, chosen in selection.items():
            assert chosen[m.key] in m.settings(), (task, m.key)
    assert json.loads((PACKAGE / "assets" / "selected.json").read_text()) == selection


def test_alpha_is_four_times_r_in_one_place():
    sources = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py"))
    assert len(re.findall(r"4 \* r\b", sources)) == 1
    assert {(s["r"], s["lora_alpha"]) for m in ordered() for s in m.settings() if "r" in s} == {(4, 16), (8, 32)}
