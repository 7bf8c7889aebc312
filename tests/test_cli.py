"""The `minituner` command: options documented and checked, pretraining kept out of the package,
finetune -> generate from a pairs file, and the device check (no GPU needed)."""

from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path

import pytest
import torch

from minituner import checkpoint
from minituner.cli import build_parser, main
from minituner.device import check_device
from minituner.methods import ordered

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "docs" / "examples" / "pairs.jsonl"
TINY = ["--n-layer", "1", "--n-embd", "8", "--n-head", "1", "--steps", "1", "--quiet"]


def subcommands(parser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("minituner 0.")


@pytest.mark.parametrize("command", ["finetune", "generate", "compare", "sweep", "pretrain", "notebooks"])
def test_every_option_has_help_and_shows_its_default(command):
    p = subcommands(build_parser())[command]
    text = "".join(p.format_help().split())  # without whitespace: however the terminal's width wraps it
    for action in p._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{command} {action.dest} has no help"
        if action.option_strings and not action.required:
            shown = p.formatter_class(prog=p.prog)._get_help_string(action)
            assert "default" in shown, f"{command} {action.option_strings[0]} does not show its default"
            assert "".join(shown.replace("%(default)s", str(action.default)).split()) in text


def test_task_and_method_have_choices():
    sub = subcommands(build_parser())
    method = next(a for a in sub["finetune"]._actions if a.dest == "method")
    task = next(a for a in sub["compare"]._actions if a.dest == "task")
    assert list(method.choices) == [m.key for m in ordered()]  # every registered method, in the registry's order
    assert list(task.choices) == ["classify", "relabel", "qa", "all"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pretrain_writes_to_runs_pretrain_and_never_into_the_package(tmp_path, monkeypatch, capsys):
    shipped = checkpoint.ASSETS / "base.safetensors"
    before = sha(shipped)
    monkeypatch.chdir(tmp_path)
    assert main(["pretrain", "--block-size", "64", *TINY]) == 0
    assert (tmp_path / "runs" / "pretrain" / "base.safetensors").exists()
    assert sha(shipped) == before
    assert "--base runs/pretrain" in capsys.readouterr().out
    # the new base is what generate and finetune take with --base (its config: 1 layer, width 8)
    assert main(["generate", "--base", "runs/pretrain", "--max-new-tokens", "3", "the cat"]) == 0
    assert capsys.readouterr().out.startswith("the cat")


def test_overwrite_shipped_base_is_the_one_way_into_the_package(tmp_path, monkeypatch, capsys):
    assets = tmp_path / "package" / "assets"  # stands for minituner/assets
    monkeypatch.setattr(checkpoint, "ASSETS", assets)
    assert main(["pretrain", "--block-size", "64", "--out", str(assets), *TINY]) == 2
    assert "--overwrite-shipped-base" in capsys.readouterr().err
    assert not assets.exists()
    assert main(["pretrain", "--block-size", "64", "--overwrite-shipped-base", *TINY]) == 0
    assert (assets / "base.safetensors").exists() and (assets / "base.json").exists()


def test_generate_with_the_shipped_base(capsys):
    assert main(["generate", "the cat eats"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("the cat eats ") and out.endswith(".")


@pytest.mark.parametrize("method", ["lora", "prompt"])  # an adapter on the weights, and virtual tokens
def test_finetune_saves_then_generate_answers(method, tmp_path, capsys):
    out = tmp_path / method
    extra = ["--num-virtual-tokens", "2"] if method == "prompt" else ["--r", "2"]  # each method's own options
    code = main(["finetune", "--method", method, "--data", str(PAIRS), "--out", str(out), "--steps", "2",
                 "--eval-every", "1", "--batch-size", "4", *extra])
    printed = capsys.readouterr().out
    assert code == 0
    assert "trainable params" in printed and "accuracy" in printed
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    assert main(["generate", "--adapter", str(out), "--max-new-tokens", "4", "who says meow?"]) == 0
    assert capsys.readouterr().out.startswith("who says meow?")


# ---------------------------------------------------------------- devices: checked up front, no GPU needed
def test_check_device_gives_a_torch_device():
    assert check_device("cpu") == torch.device("cpu")
    assert check_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_unavailable_names_this_pytorch():
    with pytest.raises(ValueError) as e:
        check_device("cuda:0")
    assert torch.__version__ in str(e.value) and "--device cpu" in str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_a_bad_device_stops_pretrain_before_any_training(tmp_path, monkeypatch, capsys):
    import minituner.pretrain

    def must_not_run(*a, **kw):
        raise AssertionError("pretraining started")

    monkeypatch.setattr(minituner.pretrain, "pretrain", must_not_run)
    assert main(["pretrain", "--device", "cuda", "--out", str(tmp_path), *TINY]) == 2
    assert "CUDA was requested" in capsys.readouterr().err


def every_parser(parser):
    """The parser and each of its subcommands' parsers."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from every_parser(sub)


def test_help_is_chinese_everywhere_when_the_run_speaks_chinese():
    """Every description, option help and section of every subcommand, through the catalogue (cli.po)."""
    from minituner.cli import Formatter, help_text
    from minituner.i18n import set_language

    han = re.compile(r"[\u4e00-\u9fff]")
    set_language("zh")
    parser = build_parser()
    english = []
    for p in every_parser(parser):
        formatter = Formatter(p.prog)
        texts = [help_text(p.description)] + [formatter._get_help_string(a) for a in p._actions if a.help]
        texts += [formatter._get_help_string(a) for a in p._actions
                  if isinstance(a, argparse._SubParsersAction) for a in a._choices_actions]
        english += [f"{p.prog}: {t!r}" for t in texts if t and not han.search(t)]
        assert "用法：" in p.format_help() and "选项" in p.format_help()
    assert not english, "help left in English:\n" + "\n".join(english)
    set_language("en")
    assert not han.search(build_parser().format_help())


@pytest.mark.parametrize("lang, words", [("zh_CN.UTF-8", "用法："), ("C.UTF-8", "usage: "), ("", "usage: ")])
def test_the_locale_chooses_the_language_of_help(lang, words):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("MINITUNER_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES")}
    env["LANG"] = lang
    out = subprocess.run([sys.executable, "-m", "minituner.cli", "compare", "--help"], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith(words)
