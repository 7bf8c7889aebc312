"""Conversations (issue 39): the loss mask's boundary pinned by hand, every template reads back what it
wrote, every bad conversation refused naming its line and field (exit 2 from the command line), every
registered method trains on conversations, and finetune -> generate keeps the template."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import minituner as mt
from minituner import chat
from minituner.cli import build_parser, main
from minituner.dataset import encode_conversations
from minituner.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]
CONVERSATIONS = ROOT / "docs" / "examples" / "conversations.jsonl"
TOK = mt.CharTokenizer()
SYSTEM, HI, OK = ({"role": "system", "content": "be brief."}, {"role": "user", "content": "hi?"},
                  {"role": "assistant", "content": "ok"})


def turns(*pairs) -> list[dict]:
    return [{"role": r, "content": c} for r, c in pairs]


def test_the_mask_boundary_by_hand():
    ids, mask = chat.render_ids([HI, OK], "chatml", TOK)
    text = "user\nhi?\nassistant\nok\n"
    assert ids == TOK.encode(text)
    assert mask == [0] * len("user\nhi?\nassistant\n") + [1, 1, 1]  # 'o', 'k', the end marker
    first_answer, last_user, end = text.index("ok"), text.index("?"), len(text) - 1
    assert mask[first_answer] == 1 and mask[last_user] == 0 and mask[end] == 1 and text[end] == mt.tokenizer.END
    assert mask[first_answer - 1] == 0  # the assistant's header is the prompt's
    # as a training row: y[t] = ids[t + 1], so the target 'o' sits at t = first_answer - 1 (no +1 lost at either end)
    split = encode_conversations("train", [[HI, OK]], TOK, "chatml", ["conversations[0]"])
    x, y, m = split.x[0], split.y[0], split.mask[0]
    assert TOK.decode(y[m > 0]) == "ok\n" and m.sum() == 3
    assert TOK.decode(x[first_answer - 1:first_answer]) == "\n" and TOK.decode(y[first_answer - 1:first_answer]) == "o"


def test_train_on_prompt_and_mask_history_follow_llama_factory():
    conv = [SYSTEM, HI, OK, {"role": "user", "content": "and?"}, {"role": "assistant", "content": "done"}]
    ids, plain = chat.render_ids(conv, "llama2", TOK)
    text = TOK.decode(ids)
    trained = lambda mask: "".join(ch for ch, m in zip(text, mask, strict=True) if m)  # noqa: E731
    assert trained(plain) == "ok\ndone\n"
    assert trained(chat.render_ids(conv, "llama2", TOK, mask_history=True)[1]) == "done\n"
    assert trained(chat.render_ids(conv, "llama2", TOK, train_on_prompt=True)[1]) == text
    _, both = chat.render_ids(conv, "llama2", TOK, train_on_prompt=True, mask_history=True)
    assert trained(both) == text.replace("ok\n", "")  # the history's answer masked, its prompts trained


def test_val_and_test_score_the_last_answer_and_splits_are_by_conversation():
    convs = [[HI, {"role": "assistant", "content": "ok"}, {"role": "user", "content": f"who is {c}?"},
              {"role": "assistant", "content": c}] for c in "abcdefghij"]
    data = mt.Dataset.from_conversations(convs * 2, template="baichuan", val=0.2, test=0.2)  # each given twice
    for split in (data.val, data.test):
        assert all(TOK.decode(y[m > 0]) == a + "\n" for y, m, (_, a) in zip(split.y, split.mask, split.examples,
                                                                            strict=True))
    prompts = [{p for p, _ in s.examples} for s in (data.train, data.val, data.test)]
    assert not (prompts[0] & prompts[1]) and not (prompts[0] & prompts[2]) and not (prompts[1] & prompts[2])
    assert len(data.train) + len(data.val) + len(data.test) == 20 and data.template == "baichuan"


CASES = [  # a conversation, or a whole turn list, each a round trip for every template
    [HI, OK], [SYSTEM, HI, OK], [SYSTEM, HI, OK, HI, {"role": "assistant", "content": "it's the cat, i think."}],
    [{"role": "user", "content": "q: a: user: assistant inst"}, {"role": "assistant", "content": "  spaced  "}],
]


@pytest.mark.parametrize("name", list(chat.TEMPLATES))
def test_every_template_reads_back_what_it_wrote(name):
    for conv in CASES:
        text = chat.render(conv, name)
        assert chat.parse(text, name) == conv
        prompt, answer = chat.prompt_and_answer(conv, name)
        assert prompt + answer + mt.tokenizer.END == text and chat.parse(prompt, name) == conv[:-1]
        assert all(ch in TOK.stoi for ch in text)  # the markers are in the base's alphabet
    assert chat.parse("not a conversation", name) is None


@pytest.mark.parametrize("name, content", [("llama2", "a :inst b"), ("baichuan", "a::b"), ("chatml", "a\nb")])
def test_content_holding_a_template_marker_is_refused(name, content):
    with pytest.raises(ValueError, match=r"messages\[0\].content .*template"):
        chat.render([{"role": "user", "content": content}, OK], name)


def test_show_mask_marks_the_trained_tokens():
    view = chat.show_mask(*chat.render_ids([HI, OK], "chatml", TOK), TOK)
    assert str(view) == "user\nhi?\nassistant\n[ok⏎]\n"
    assert '<span style="background:#c8f7c5">ok⏎' in view._repr_html_()




def good(n: int, layout: str = "messages") -> dict:
    """A good line of that layout; n makes its prompt its own."""
    if layout == "conversations":
        return {"conversations": [{"from": "human", "value": f"hi {'x' * n}?"}, {"from": "gpt", "value": "ok"}]}
    return {"messages": [{"role": "user", "content": f"hi {'x' * n}?"}, OK]}


BAD = [  # (the second line of a file, what the error names)
    ({"messages": []}, r"line 2: messages must be a non-empty list"),
    ({"messages": "hi"}, r"line 2: messages must be a non-empty list"),
    ({"messages": [{"role": "tool", "content": "x"}, OK]}, r"line 2: messages\[0\]\.role: unknown role 'tool'"),
    ({"messages": [HI, SYSTEM, OK]}, r"line 2: messages\[1\]\.role: a system turn must come first"),
    ({"messages": [HI, OK, HI]}, r"line 2: messages\[2\]: the last turn is 'user'"),
    ({"messages": [HI, HI, OK]}, r"line 2: messages\[1\]\.role: expected 'assistant' here"),
    ({"messages": [{"role": "user", "content": ""}, OK]}, r"line 2: messages\[0\]\.content is empty"),
    ({"messages": [{"role": "user"}, OK]}, r"line 2: messages\[0\]\.content is missing"),
    ({"messages": [{"role": "user", "content": 7}, OK]}, r"line 2: messages\[0\]\.content must be a string"),
    ({"messages": [{"role": "user", "content": "Hi"}, OK]},
     r"line 2: character 'H' at position 0 of messages\[0\]\.content"),
    ({"messages": [HI, {"role": "assistant", "content": "a\nb"}]}, r"line 2: messages\[1\]\.content holds a newline"),
    ({"conversations": [{"from": "bot", "value": "x"}]}, r"line 2: conversations\[0\]\.from: unknown role 'bot'"),
    ({"conversations": [{"from": "human", "value": "hi?"}, {"from": "gpt", "value": "ok"}]},
     r"line 2: a 'conversations' line in a file of 'messages' lines"),
    ({"conversations": [{"from": "human", "value": "hi?"}, {"from": "gpt", "value": "a"}, {"from": "gpt", "value": "b"}]},
     r"line 2: conversations\[2\]\.from: expected 'human' here"),
    ({"messages": [{"role": "user", "content": "hi " * 40}, OK]}, r"line 2: the row fills 1\d\d positions"),
]


@pytest.mark.parametrize("line, pattern", BAD, ids=[p.split(": ", 1)[1][:40] for _, p in BAD])
def test_a_bad_conversation_is_refused_naming_line_and_field(line, pattern, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    layout = "conversations" if "from" in pattern else "messages"  # the good lines in the bad line's layout
    lines = [good(0, layout), line, *(good(n, layout) for n in range(1, 10))]
    path.write_text("".join(json.dumps(obj) + "\n" for obj in lines))
    if "row fills" not in pattern:  # the context is the model's: Dataset knows it at train(), finetune before
        with pytest.raises(ValueError, match=pattern):
            mt.Dataset.from_jsonl(path)
    assert main(["finetune", "--method", "lora", "--data", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and re.search(pattern, err), err
    assert not (tmp_path / "out").exists()


def test_sharegpt_with_its_system_field_reads_as_messages_and_errors_name_the_file_s_fields():
    turns = [{"from": "human", "value": "hi?"}, {"from": "gpt", "value": "ok"}]
    assert chat.read_conversation({"system": "be brief.", "conversations": turns}, "x") == [SYSTEM, HI, OK]
    with pytest.raises(ValueError, match=r"^x: conversations\[1\]\.value is empty"):
        chat.read_conversation({"system": "be brief.", "conversations": [turns[0], {"from": "gpt", "value": ""}]}, "x")
    with pytest.raises(ValueError, match=r"^x: system must be a string, got int"):
        chat.read_conversation({"system": 3, "conversations": turns}, "x")
    with pytest.raises(ValueError, match=r"^x: conversations\[0\]\.from: a system turn must come first"):
        chat.read_conversation({"system": "a.", "conversations": [{"from": "system", "value": "b."}, *turns]}, "x")


def test_pairs_with_a_template_become_one_turn_conversations(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"who is {c}?", "answer": f" {c}"}) + "\n" for c in "abcdefghij"))
    data = mt.Dataset.from_jsonl(path, template="llama2")
    assert data.template == "llama2" and data.train.examples[0][0].startswith("inst: who is ")
    assert mt.Dataset.from_jsonl(path).template is None  # without one, the pairs as they are


@pytest.mark.parametrize("key", list(METHODS))
def test_every_method_trains_on_conversations(tiny, key):
    convs = [[SYSTEM, {"role": "user", "content": f"who is {c}?"}, {"role": "assistant", "content": f"it is {c}."}]
             for c in "abcdefghijkl"]
    data = mt.Dataset.from_conversations(convs, template="chatglm3")
    model = mt.get_peft_model(tiny, METHODS[key].make_config())
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    hist = mt.train(model, data, steps=2, lr=1e-2, batch_size=4, progress=False)
    assert len(hist.losses) == 2 and all(torch.isfinite(torch.tensor(hist.losses)))
    assert any(not torch.equal(p, before[n]) for n, p in model.named_parameters() if n in before)
    assert 0 <= mt.evaluate(model, data.test)["accuracy"] <= 1


def test_template_is_an_argparse_choice_on_finetune_and_generate():
    commands = build_parser()._subparsers._group_actions[0].choices
    for command in ("finetune", "generate"):
        action = next(a for a in commands[command]._actions if a.dest == "template")
        assert list(action.choices) == list(chat.TEMPLATES)


def test_finetune_on_conversations_then_generate_uses_the_saved_template(tmp_path, capsys):
    out = tmp_path / "chat"
    assert main(["finetune", "--method", "lora", "--data", str(CONVERSATIONS), "--template", "llama2",
                 "--out", str(out), "--steps", "2"]) == 0
    assert json.loads((out / "adapter_config.json").read_text())["chat_template"] == "llama2"
    assert "minituner generate --adapter" in capsys.readouterr().out
    assert main(["generate", "--adapter", str(out), "--max-new-tokens", "3", "what does the cat say?"]) == 0
    assert capsys.readouterr().out.startswith("inst: what does the cat say? :inst ")
    assert main(["generate", "--adapter", str(out), "--template", "chatml", "--system", "be brief.",
                 "--max-new-tokens", "3", "hi?"]) == 0
    assert capsys.readouterr().out.startswith("system\nbe brief.\nuser\nhi?\nassistant\n")
    with pytest.raises(SystemExit) as e:
        main(["generate", "--adapter", str(out), "--template", "nope", "hi?"])
    assert e.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err


def test_lowercase_reaches_every_turn_and_a_pairs_file_with_a_template_saves_it(tmp_path, capsys):
    path = tmp_path / "shout.jsonl"
    path.write_text("".join(json.dumps({"messages": [{"role": "system", "content": "Be Brief."},
                                                     {"role": "user", "content": f"Who Is {c.upper()}?"},
                                                     {"role": "assistant", "content": c.upper()}]}) + "\n"
                            for c in "abcdefghij"))
    data = mt.Dataset.from_jsonl(path, lowercase=True)
    assert data.train.examples[0][0].startswith("system\nbe brief.\nuser\nwho is ") and data.template == chat.DEFAULT
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"who is {c}?", "answer": f" {c}"}) + "\n" for c in "abcdefghij"))
    assert main(["finetune", "--method", "bitfit", "--data", str(pairs), "--template", "baichuan",
                 "--out", str(tmp_path / "b"), "--steps", "1"]) == 0
    assert main(["generate", "--adapter", str(tmp_path / "b"), "--max-new-tokens", "2", "hi?"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("::hi?::")
    assert main(["generate", "--system", "be brief.", "hi?"]) == 2  # the base alone has no template
    assert "--system needs a chat template" in capsys.readouterr().err
