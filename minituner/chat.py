"""Conversations: chat templates as data, a conversation rendered to tokens and back, and the loss mask.

A conversation is a list of turns ``{"role": "system" | "user" | "assistant", "content": str}``
(OpenAI's layout): an optional system turn first, then user and assistant in turn, ending with
the assistant's (the turn a fine-tune learns and a test scores). A *template* (the article's §5
table gives one per model family: llama2, chatml for Qwen, chatglm3, baichuan) writes it as one
text, each turn in its slot:

    system     "system\\n{content}\\n"                 (chatml's slots, in miniature)
    user       "user\\n{content}\\nassistant\\n"        ends with the assistant's header, so a
    assistant  "{content}\\n"                          prompt for generation is the user slot's end

The real templates' markers are special tokens (``<|im_start|>``, ``[INST]``, ``<reserved_102>``);
the shipped base reads lower-case letters, space and ``\\n ,.?:'`` only, so the miniatures write
their markers with those characters. Every assistant slot ends with ``tokenizer.END`` (a newline),
where the base already stops, so a turn's content is one line.

The loss mask (LLaMA-Factory's switches, names as theirs; nanochat's ``render_conversation``
returns ``(ids, mask)`` the same way): mask[i] = 1 where token i is a target the loss counts.
- default: the assistant slots (content and end marker) are trained, every other token is not;
- ``train_on_prompt=True``: the system and user slots are trained too;
- ``mask_history=True``: of the assistant slots only the last is trained (as LLaMA-Factory, the
  history's prompts still follow ``train_on_prompt``).
A row then trains on x = ids[:-1], y = ids[1:], mask[1:] (the first token is nobody's target).

References: 1) LLaMA-Factory, src/llamafactory/data/template.py and processor/supervised.py
(train_on_prompt, mask_history). 2) nanochat, tokenizer.py (render_conversation, visualize).
3) Shi et al. 2024, "Instruction Tuning With Loss Over Instructions".
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from .tokenizer import END

ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}  # LLaMA-Factory's "sharegpt" tags


@dataclass(frozen=True)
class Template:
    """One chat template as data: each slot's text around ``{content}``."""

    name: str
    family: str  # the §5 table's models that use it
    real: str  # the real template's user and assistant slots, for the reader
    system: str
    user: str  # ends with the assistant's header: the text a generation prompt ends with
    assistant: str = "{content}" + END  # the trained slot: the content, then the end-of-answer marker

    def slot(self, role: str) -> tuple[str, str]:
        """(text before, text after) the content in this role's slot."""
        before, after = getattr(self, role).split("{content}")
        return before, after


TEMPLATES = {t.name: t for t in (
    Template("chatml", "Qwen", "<|im_start|>user\\n{u}<|im_end|>\\n<|im_start|>assistant\\n{a}<|im_end|>\\n",
             system="system\n{content}\n", user="user\n{content}\nassistant\n"),
    Template("llama2", "LLaMA-2", "[INST] {u} [/INST] {a} </s>",
             system="sys: {content}\n", user="inst: {content} :inst "),
    Template("chatglm3", "ChatGLM3", "<|user|>\\n {u}<|assistant|>\\n {a}",
             system=":system: {content}\n", user=":user: {content}\n:assistant: "),
    Template("baichuan", "Baichuan", "<reserved_102>{u}<reserved_103>{a}",
             system="{content}\n", user="::{content}::"),
)}
DEFAULT = "chatml"  # the template of a file of conversations when none is named


def get_template(name) -> Template:
    """The registered template of that name; a ValueError naming the known ones."""
    if isinstance(name, Template):
        return name
    if name not in TEMPLATES:
        raise ValueError(f"unknown template {name!r}; the templates are {', '.join(TEMPLATES)}")
    return TEMPLATES[name]


# ---------------------------------------------------------------- checking a conversation
def check_messages(turns, where: str = "", key: str = "messages", layout: tuple = ("role", "content", None),
                   clean=None, system_field: bool = False) -> list[dict]:
    """A conversation checked, as [{"role", "content"}]: a ValueError naming the turn and field for
    turns that are empty or not a list, an unknown role, a system turn not first, turns that do not
    alternate user/assistant, a last turn not the assistant's, content missing, not a str, empty or
    holding a newline. layout: (role key, content key, {tag: role}) of the file's layout.
    where: the file and line (named first); key: the list's field.
    clean(text, field): each content as it is kept (the dataset's lower-casing and alphabet check).
    system_field: turns[0] came from a "system" field of the line (sharegpt's), named as that field."""
    role_key, content_key, tags = layout
    name = f"{where}: {key}" if where else key
    tags = tags or {r: r for r in ROLES}
    if not isinstance(turns, list) or not turns:
        raise ValueError(f"{name} must be a non-empty list of turns, got {turns!r:.40}")
    out = []
    for i, turn in enumerate(turns):
        at = f"{name}[{i - system_field}]"
        short = f"{key}[{i - system_field}].{content_key}"  # the content's field, as clean names it
        if i < system_field:
            at, short = f"{where}: system", "system"
        field = f"{at}.{content_key}" if i >= system_field else at
        if not isinstance(turn, dict):
            raise ValueError(f"{at} must be an object with {role_key!r} and {content_key!r}, got {type(turn).__name__}")
        tag, content = turn.get(role_key), turn.get(content_key)
        if tag not in tags:
            raise ValueError(f"{at}.{role_key}: unknown role {tag!r}; the roles are {', '.join(tags)}")
        role = tags[tag]
        if content is None:
            raise ValueError(f"{field} is missing")
        if not isinstance(content, str):
            raise ValueError(f"{field} must be a string, got {type(content).__name__}")
        if not content.strip():
            raise ValueError(f"{field} is empty")
        if END in content:
            raise ValueError(f"{field} holds a newline, the end-of-turn marker; write each turn on one line")
        first = 1 if out and out[0]["role"] == "system" else 0
        want = ("user", "assistant")[(i - first) % 2]
        if role == "system" and i:
            raise ValueError(f"{at}.{role_key}: a system turn must come first")
        if role != "system" and role != want:
            raise ValueError(f"{at}.{role_key}: expected {_tag(want, tags)!r} here (after the optional system "
                             f"turn, {_tag('user', tags)!r} and {_tag('assistant', tags)!r} take turns), got {tag!r}")
        out.append({"role": role, "content": clean(content, short) if clean else content})
    if out[-1]["role"] != "assistant":
        raise ValueError(f"{name}[{len(out) - 1 - system_field}]: the last turn is {turns[-1][role_key]!r}; a "
                         f"conversation ends with the {_tag('assistant', tags)} turn (the one trained and scored)")
    return out


def _tag(role: str, tags: dict) -> str:
    return next(t for t, r in tags.items() if r == role)


def read_conversation(obj: dict, where: str, clean=None) -> list[dict] | None:
    """The conversation of one JSON line, in OpenAI's layout ({"messages": [{"role", "content"}]}) or
    LLaMA-Factory's "sharegpt" ({"conversations": [{"from", "value"}]}, an optional "system" field),
    checked (check_messages); None when the line holds neither key."""
    if "messages" in obj:
        return check_messages(obj["messages"], where, "messages", clean=clean)
    if "conversations" not in obj:
        return None
    turns, system_field = obj["conversations"], obj.get("system") is not None
    if system_field:  # sharegpt's system prompt may sit in a field of its own
        if not isinstance(turns, list) or not turns:
            raise ValueError(f"{where}: conversations must be a non-empty list of turns, got {turns!r:.40}")
        turns = [{"from": "system", "value": obj["system"]}, *turns]
    return check_messages(turns, where, "conversations", ("from", "value", SHAREGPT_ROLES), clean, system_field)


def pair_to_messages(prompt: str, answer: str) -> list[dict]:
    """A (prompt, answer) pair as a one-turn conversation. A pair's answer starts with the space
    that follows its prompt; in a conversation the template writes what comes between."""
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer.lstrip(" ")}]


# ---------------------------------------------------------------- rendering and parsing
def segments(messages: list[dict], template) -> list[tuple[str, str]]:
    """[(text, role)]: each turn written into its slot, in order."""
    t = get_template(template)
    return [(getattr(t, m["role"]).replace("{content}", m["content"]), m["role"]) for m in messages]


def render(messages: list[dict], template) -> str:
    """The conversation as one text. Messages that end with a user turn give a generation prompt
    (the text ends with the assistant's header). A content that holds the template's markers, so
    that the text would read back as another conversation, is a ValueError naming the turn."""
    text = "".join(s for s, _ in segments(messages, template))
    if not _reads_back(messages, template):
        bad = next(i for i in range(len(messages)) if not _reads_back(messages[:i + 1], template))
        raise ValueError(f"messages[{bad}].content {messages[bad]['content']!r} holds the markers of template "
                         f"{get_template(template).name!r} and would read back as another conversation")
    return text


def _reads_back(messages: list[dict], template) -> bool:
    text = "".join(s for s, _ in segments(messages, template))
    return parse(text, template) == [{"role": m["role"], "content": m["content"]} for m in messages]


def parse(text: str, template) -> list[dict] | None:
    """The conversation a rendered text holds (render's inverse), None when the text is not one
    this template writes. A user turn at the end (a generation prompt) is kept."""
    t = get_template(template)
    pattern = {role: re.compile(re.escape(before) + "([^\n]*?)" + re.escape(after) if role != "assistant" else
                                re.escape(before) + "([^\n]*)" + re.escape(after))
               for role in ROLES for before, after in [t.slot(role)]}
    out, pos = [], 0
    if not pattern["user"].match(text) and (m := pattern["system"].match(text)):  # a user slot first: no system
        out.append({"role": "system", "content": m.group(1)})
        pos = m.end()
    while pos < len(text):
        role = "user" if not out or out[-1]["role"] != "user" else "assistant"
        m = pattern[role].match(text, pos)
        if m is None or not m.group(1):
            return None
        out.append({"role": role, "content": m.group(1)})
        pos = m.end()
    return out


def render_ids(messages: list[dict], template, tokenizer, train_on_prompt: bool = False,
               mask_history: bool = False) -> tuple[list[int], list[int]]:
    """(ids, mask) of a conversation (nanochat's render_conversation): mask[i] = 1 where token i is a
    target the loss counts (see the module docstring for the two switches)."""
    render(messages, template)  # the markers check
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    ids, mask = [], []
    for i, (text, role) in enumerate(segments(messages, template)):
        piece = tokenizer.encode(text)
        trained = train_on_prompt if role != "assistant" else (not mask_history or i == last)
        ids += piece
        mask += [int(trained)] * len(piece)
    return ids, mask


def prompt_and_answer(messages: list[dict], template) -> tuple[str, str]:
    """(the generation prompt of the last assistant turn, that turn's content): how a test scores it."""
    return render(messages[:-1], template), messages[-1]["content"]


# ---------------------------------------------------------------- the mask, shown
class MaskView(str):
    """The rendered text with its trained tokens marked: [brackets] in a terminal (no bracket is in the
    base's alphabet), green (trained) and red (not) in a notebook, as nanochat's visualize."""

    def __new__(cls, pieces: list[tuple[str, bool]]):
        text = "".join(f"[{p}]" if on else p for p, on in pieces).replace(END + "]", "⏎]" + END)
        view = super().__new__(cls, text)
        view.pieces = pieces
        return view

    def _repr_html_(self) -> str:
        spans = "".join(f'<span style="background:{"#c8f7c5" if on else "#f7c5c5"}">'
                        f"{html.escape(p.replace(END, '⏎' + END))}</span>" for p, on in self.pieces)
        return f'<pre style="line-height:1.6">{spans}</pre>'


def show_mask(ids: list[int], mask: list[int], tokenizer) -> MaskView:
    """A conversation's tokens with those the loss counts marked (see MaskView)."""
    pieces: list[tuple[str, bool]] = []
    for i, m in zip(ids, mask, strict=True):
        ch = tokenizer.decode([i])
        if pieces and pieces[-1][1] == bool(m):
            pieces[-1] = (pieces[-1][0] + ch, bool(m))
        else:
            pieces.append((ch, bool(m)))
    return MaskView(pieces)
