"""Every config field and every command-line option, against its documented domain (option() metadata;
the command line's types): any value outside it is a one-line error naming the field or option before
any work (exit status 2, no traceback, nothing written); values inside it build a model that trains."""

import contextlib
import dataclasses
import io
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minituner import GPT, CharTokenizer, GPTConfig, get_peft_model, train
from minituner.cli import build_parser, main
from minituner.methods import ordered
from minituner.methods.options import ConfigError, annotation_of, kinds

PAIRS = Path(__file__).parents[1] / "docs" / "examples" / "pairs.jsonl"
FIELDS = [(m, f) for m in ordered() for f in m.fields()]
IDS = [f"{m.key}.{f.name}" for m, f in FIELDS]
FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FEW = settings(FAST, max_examples=6)  # where each value trains a model or runs a command (many are exhausted sooner)


def outside(m, f) -> st.SearchStrategy:
    """Values outside the field's domain: wrong types, non-finite numbers, numbers past its bounds."""
    allowed, meta = kinds(annotation_of(m.config, f.name)), f.metadata
    wrong = [st.text(max_size=3).filter(lambda s: s not in ("", *(meta.get("choices") or ()))).map(lambda s: s + "?"),
             st.lists(st.integers(), min_size=1, max_size=2)]
    if "None" not in allowed:
        wrong.append(st.none())
    if "bool" in allowed:
        return st.one_of(*wrong, st.sampled_from(["no", "yes", 0, 1, 0.0]))
    if {"int", "float"} & allowed:
        wrong += [st.booleans(), st.sampled_from([math.nan, math.inf, -math.inf])]
        if "int" in allowed:
            wrong.append(st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)))
        for key, side in (("ge", -1), ("gt", -1), ("le", 1), ("lt", 1)):
            bound = meta.get(key)
            if bound is not None:
                edge = bound if key in ("gt", "lt") else bound + side * (1 if "int" in allowed else 1e-6 * max(1, abs(bound)))
                far = st.integers(min_value=int(bound) + 1) if side > 0 else st.integers(max_value=int(bound) - 1)
                wrong += [st.just(int(edge) if "int" in allowed else edge), far]
        return st.one_of(*wrong)
    if meta.get("choices"):
        return st.one_of(*wrong, st.integers())
    if "tuple" in allowed:
        return st.one_of(st.integers(), st.just([""]), st.lists(st.integers(), min_size=1, max_size=2))
    return st.one_of(st.integers(), st.floats(), st.lists(st.text(), min_size=1, max_size=2))


@pytest.mark.parametrize(("method", "field"), FIELDS, ids=IDS)
def test_a_value_outside_a_fields_domain_is_an_error_naming_it(method, field):
    @FAST
    @given(value=outside(method, field))
    def check(value):
        with pytest.raises(ConfigError) as e:
            method.make_config(**{field.name: value})
        assert e.value.field == field.name and f".{field.name} " in str(e.value) and "\n" not in str(e.value)

    check()


def inside(m, f) -> st.SearchStrategy:
    """Values inside the field's domain that a 2-block, 16-wide GPT with a 24-token context can hold."""
    allowed, meta = kinds(annotation_of(m.config, f.name)), f.metadata
    if meta.get("choices"):
        return st.sampled_from(meta["choices"])
    if "bool" in allowed:
        return st.booleans()
    if "int" in allowed:
        return st.integers(min_value=max(meta.get("ge") or 0, 1), max_value=min(meta.get("le") or 8, 8))
    if "float" in allowed:
        low, high = meta.get("ge", meta.get("gt")) or 0.0, min(meta.get("le", meta.get("lt")) or 1.0, 64.0)
        return st.floats(min_value=low, max_value=high, exclude_min="gt" in meta and meta["gt"] is not None,
                         exclude_max=meta.get("lt") is not None, allow_nan=False)
    return st.just(m.default(f.name))  # names and text: the entry's own default


@pytest.mark.parametrize(("method", "field"), FIELDS, ids=IDS)
def test_a_value_inside_a_fields_domain_trains(method, field, classify):
    tiny = GPT(GPTConfig(vocab_size=CharTokenizer().vocab_size, block_size=96, n_layer=2, n_head=2, n_embd=16))

    @FEW
    @given(value=inside(method, field))
    def check(value):
        try:
            config = method.make_config(**{field.name: value})
        except ConfigError as e:  # a rule that ties two fields (init_text needs init='text'): named, one line
            assert e.field in {f.name for f in dataclasses.fields(method.config)} and "\n" not in str(e)
            return
        try:
            model = get_peft_model(tiny, config)
        except ValueError as e:  # a limit the base sets (r <= its width, k < its context): named, before any work
            assert field.name in str(e) or "rank r" in str(e), e
            return
        if not any(p.requires_grad for p in model.parameters()):  # PEFT's inference_mode: built frozen
            assert config.inference_mode
            return
        hist = train(model, classify, steps=1, lr=1e-3, batch_size=2, progress=False)
        assert math.isfinite(hist.losses[0])

    check()


BASE = {  # each command with what it needs to start (its output path in {out}, 12 pairs in {data})
    "finetune": ["--data", "{data}", "--out", "{out}", "--steps", "1"],
    "generate": ["the cat"], "compare": ["--out", "{out}"], "sweep": ["--out", "{out}"],
    "pretrain": ["--out", "{out}", "--quiet"], "memory": [],
}
PATHS = ("data", "out", "base", "adapter", "device", "help", "version", "prompt")  # checked elsewhere


def options() -> list[tuple[str, str, str | None, object]]:
    """(command, option, the finetune --method it needs, the action) for every option that takes a value."""
    commands = build_parser()._subparsers._group_actions[0].choices
    owner = {f"--{f.name.replace('_', '-')}": m.key for m, f in reversed(FIELDS)}
    return [(cmd, a.option_strings[0], owner.get(a.option_strings[0]), a) for cmd in BASE
            for a in commands[cmd]._actions
            if a.option_strings and a.nargs is None and a.dest not in PATHS and a.dest != "method"]


BAD_TEXT = st.one_of(st.sampled_from(["x", "nan", "inf", "-inf", "1e400", "-1e9", "1e12", "0x"]),
                     st.integers(max_value=-1).map(str), st.integers(min_value=10**13).map(str))


@pytest.mark.parametrize(("command", "flag", "method", "action"), options(),
                         ids=[f"{o[0]} {o[1]}" for o in options()])
def test_a_bad_command_line_value_is_one_line_naming_the_option(command, flag, method, action, tmp_path):
    out, data = tmp_path / "never", tmp_path / "pairs.jsonl"
    data.write_text("".join(PAIRS.read_text().splitlines(keepends=True)[:12]))  # read before a method's options
    base = [command, *(["--method", method or "lora"] if command == "finetune" else []),
            *({"{out}": str(out), "{data}": str(data)}.get(a, a) for a in BASE[command])]

    @FEW
    @given(text=st.sampled_from(["no", "maybe", "7"]) if action.choices else BAD_TEXT)
    def check(text):
        if action.choices and text in [str(c) for c in action.choices]:
            return
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main([*base, f"{flag}={text}"])
            except SystemExit as e:
                code = e.code
        message = err.getvalue()
        assert code == 2 and message.count("\n") == 1 and flag in message and "Traceback" not in message, message
        assert not out.exists()

    check()
