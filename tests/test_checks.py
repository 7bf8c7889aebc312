"""One vocabulary of argument checks (minituner/checks.py), errors that carry the argument they concern,
a config checked again where it is used, and a command line resolved once into a frozen Run, whose every
option acts or is refused."""

import dataclasses
import json

import pytest

import minituner
from minituner.checks import boolean, int_in, real_in
from minituner.cli import build_parser, main, resolve
from minituner.methods.options import ConfigError

PAIRS = "docs/examples/pairs.jsonl"


def test_a_refusal_names_its_argument_in_the_message_and_in_field():
    with pytest.raises(ValueError, match="batch_size must be >= 1") as e:
        int_in("batch_size", 0, 1)
    assert e.value.field == "batch_size"
    with pytest.raises(TypeError, match="lr must be a number") as e:
        real_in("lr", True, positive=True)
    assert e.value.field == "lr"
    for fake in ("no", 0, 1, None):
        with pytest.raises(TypeError, match="lowercase must be True or False") as e:
            boolean("lowercase", fake)
    assert boolean("lowercase", False) is False


def test_a_config_changed_after_it_was_made_is_checked_again_where_it_is_used(tiny, classify, tmp_path):
    config = minituner.LoraConfig(r=2)
    config.lora_dropout = 2.0
    with pytest.raises(ConfigError, match="lora_dropout"):
        minituner.get_peft_model(tiny, config)
    model = minituner.lora(tiny, r=2)
    model.config.lora_dropout = 2.0
    with pytest.raises(ConfigError, match="lora_dropout"):
        minituner.train(model, classify, steps=1, progress=False)
    with pytest.raises(ConfigError, match="lora_dropout"):
        model.save_pretrained(tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_a_switch_is_a_real_boolean(tiny, classify):
    with pytest.raises(TypeError, match="progress must be True or False"):
        minituner.train(minituner.lora(tiny, r=2), classify, steps=1, progress="no")
    with pytest.raises(TypeError, match="lowercase must be True or False"):
        minituner.Dataset.from_pairs([("the cat says", "meow")] * 10, lowercase="no")


def test_finetune_is_resolved_once_into_a_frozen_run(tmp_path):
    args = build_parser().parse_args(["finetune", "--method", "lora", "--data", PAIRS, "--out", str(tmp_path / "o"),
                                      "--r", "2"])
    run = resolve(args)
    assert run.config.r == 2 and run.lr > 0 and run.eval_every and run.patience and run.backend is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.lr = 1.0


@pytest.mark.parametrize("argv, option", [
    (["memory", "--method", "full", "--r", "64"], "--r"),
    (["memory", "--method", "lora", "--num-virtual-tokens", "4"], "--num-virtual-tokens"),
    (["sweep", "--methods", "lora,lora", "--out", "{out}"], "--methods"),
    (["compare", "--selected", "{selected}", "--out", "{out}"], "--selected"),
])
def test_every_option_acts_or_is_refused(argv, option, tmp_path, capsys):
    selected = tmp_path / "selected.json"
    selected.write_text(json.dumps({"classify": {"lora": {"lr": 1e-3}, "lorra": {"lr": 1e-3}}}))
    argv = [a.format(out=tmp_path / "out", selected=selected) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"argument {option}:" in err, err
    assert not (tmp_path / "out").exists()
