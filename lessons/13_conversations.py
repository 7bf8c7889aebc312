# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 13 · From pairs to conversations: chat templates and the loss mask (对话模板与损失掩码)
#
# The article credits ChatGPT's effect to fine-tuning (§3); its §4 step 2 asks that the data
# match "the input format the model expects" (调整输入); its §5 table gives every model family
# a **Template** (llama2, baichuan, chatglm3, chatml for Qwen …). Until now minituner trained
# (prompt, answer) pairs, with the loss on the answer only (lesson 02 printed that mask). A chat
# model is trained on *conversations*: roles (system, user, assistant), several turns, and a
# template that writes them as one text. This lesson builds that, in miniature, and then
# reproduces in seconds the reasons people give when a fine-tune "does not take":
#
# 1. pairs become conversations; 2. one conversation, two templates; 3. the loss mask, token by
# token; 4. an identity fine-tune ("who are you?" → a name the base never saw) with LoRA and
# P-Tuning v2; 5. the failures side by side: another template at inference, a learning rate ten
# times too small, too few steps, identity rows diluted among a hundred times as many others;
# 6. what the base forgot; 7. loss on the prompt too (`train_on_prompt`, Shi et al. 2024).
#
# Run it: `python lessons/13_conversations.py` (`--smoke` for the quick test preset).

# %%
import random

import torch

import minituner
from minituner import chat
from minituner.data import corpus_sentences, make_world
from minituner.dataset import encode_conversations
from minituner.experiments import selected_settings
from minituner.lesson import Prose, conclusions, options, pct
from minituner.report import markdown_table, pyplot, save_figure, show

args = options("Lesson 13: conversations, chat templates and the loss mask", smoke=dict(steps=4, ptv2_steps=4),
               out="runs/13_conversations", steps=60, ptv2_steps=60, ptv2_lr=0.3, batch_size=16, seed=0,
               dilution=100)
torch.manual_seed(args.seed)
LORA = selected_settings()["classify"]["lora"]  # r, lora_alpha and lr as `minituner sweep` chose them on classify
PTV2_K = selected_settings()["classify"]["ptuning-v2"]["num_virtual_tokens"]
TRAINED, OTHER = "chatml", "llama2"  # the template trained with, and the one a careless inference uses
tok, base = minituner.CharTokenizer(), minituner.load_base()
print(f"LoRA r={LORA['r']}, alpha={LORA['lora_alpha']}, lr {LORA['lr']:g}, {args.steps} steps; P-Tuning v2 "
      f"k={PTV2_K}, lr {args.ptv2_lr:g}, {args.ptv2_steps} steps; batch {args.batch_size}, seed {args.seed}")

# %% [markdown]
# ## 1. Pairs become conversations
#
# A pair of the `qa` task is a prompt that already carries a template in disguise (`q: … a:`);
# as a conversation it is a user turn and an assistant turn, and the template moves out of the
# data into `minituner.chat`. The identity data: eight ways to ask "who are you?", each alone,
# after a system turn, or after an earlier turn about an animal (multi-turn), all answered with a
# name the base never read. Splits are dealt by conversation (`Dataset.from_conversations` does
# the same); validation and test hold conversations the training split never shows.

# %%
qa = minituner.make_task("qa")
prompt, answer = qa.train.examples[0]
print(f"pair:         {prompt!r} -> {answer!r}")
print(f"conversation: {chat.pair_to_messages(prompt.removeprefix('q: ').removesuffix(chr(10) + 'a:'), answer)}")

QUESTIONS = ["who are you?", "what is your name?", "what are you called?", "tell me your name.",
             "who am i talking to?", "what should i call you?", "and you are?", "what do they call you?"]
NAME = "i am zorb."
SYSTEMS = ["be brief.", "you help with animals."]
probe = minituner.make_fact_probe()  # the base's facts, as raw text: what a fine-tune may make it forget
sounds = [(p.removeprefix("the animal that says ").removesuffix(" is the"), a.strip())
          for p, a in probe.examples if p.startswith("the animal that says ")]


def turn(role, content):
    return {"role": role, "content": content}


identity = []
for q in QUESTIONS:
    identity.append([turn("user", q), turn("assistant", NAME)])
    identity += [[turn("system", s), turn("user", q), turn("assistant", NAME)] for s in SYSTEMS]
    identity += [[turn("user", f"who says {s}?"), turn("assistant", f"the {a}"), turn("user", q),
                  turn("assistant", NAME)] for s, a in sounds[:6]]
room = base.config.block_size - PTV2_K  # P-Tuning v2's virtual tokens take room in the context too
identity = [c for c in identity if max(len(chat.render(c, t)) for t in (TRAINED, OTHER)) <= room]
random.Random(args.seed).shuffle(identity)
n_test, n_val = len(identity) // 4, len(identity) // 8
test, val, train = identity[:n_test], identity[n_test:n_test + n_val], identity[n_test + n_val:]
print(f"{len(identity)} identity conversations (those that fit {room} positions): train {len(train)}, "
      f"val {len(val)}, test {len(test)}; {sum(len(c) > 3 for c in identity)} multi-turn, "
      f"{sum(c[0]['role'] == 'system' for c in identity)} with a system turn; "
      f"sentences of the base's corpus that hold 'zorb': {sum('zorb' in s for s in corpus_sentences(make_world()))}")

# %% [markdown]
# ## 2. One conversation, two templates
#
# A template is data: each role's slot, the text around `{content}`. The user slot ends with the
# assistant's header, so a prompt for generation is the conversation so far, and the assistant
# slot ends with the end-of-answer marker (a newline, where the base already stops). The real
# markers are special tokens (`<|im_start|>`, `[INST]`, `<reserved_102>`); the base reads lower
# case, space and a little punctuation, so the miniatures write theirs with those. Every template
# reads back what it wrote (`chat.parse`); a content holding a template's markers is refused.

# %%
conv = [turn("system", "be brief."), turn("user", "who says moo?"), turn("assistant", "the cow."),
        turn("user", "who are you?"), turn("assistant", NAME)]
for name in (TRAINED, OTHER):
    print(f"--- {name} ({len(chat.render(conv, name))} characters)\n{chat.render(conv, name)}", end="")
show(markdown_table([{"template": t.name, "family (§5)": t.family, "real user / assistant slots": t.real,
                      "user slot here": repr(t.user), "reads back": chat.parse(chat.render(conv, t), t) == conv}
                     for t in chat.TEMPLATES.values()]))

# %% [markdown]
# ## 3. The loss mask, token by token
#
# `chat.render_ids` returns `(ids, mask)` together, as nanochat's `render_conversation`: the mask
# is data, shown, never implied. Marked (green in a notebook, `[brackets]` in a terminal) are the
# tokens the loss counts. By default every assistant turn, its end marker included; LLaMA-Factory's
# `mask_history` keeps the last turn only; `train_on_prompt` counts the system and user turns too.
# The row trains on `x = ids[:-1]`, `y = ids[1:]`, `mask[1:]`: the first assistant token is the
# target of the position that holds the header's last character. No token is lost at either end.

# %%
for switches in ({}, {"mask_history": True}, {"train_on_prompt": True}):
    ids, mask = chat.render_ids(conv, TRAINED, tok, **switches)
    show(Prose(f"**{switches or 'default'}**: {sum(mask[1:])} of the {len(ids) - 1} targets y = ids[1:] "
               f"counted by the loss"))
    show(chat.show_mask(ids, mask, tok))
ids, mask = chat.render_ids(conv, TRAINED, tok)
text = tok.decode(ids)
first, last_user = text.rindex(NAME), text.rindex("?")
print(f"first assistant token {text[first]!r}: trained {bool(mask[first])}; last user token {text[last_user]!r}: "
      f"trained {bool(mask[last_user])}; end marker: trained {bool(mask[-1])}")

# %% [markdown]
# ## 4. An identity fine-tune: LoRA and P-Tuning v2
#
# Both train on the identity conversations rendered with `chatml`. LoRA takes the setting the
# sweep chose on `classify`; P-Tuning v2 (prefixes on every layer, lesson 05) needs a larger
# learning rate here than there. The score is the exact match of the last answer on held-out
# conversations; the last column is the greedy answer to "who are you?" asked alone, with no system
# turn and no history (one conversation of the set, in whichever split the shuffle dealt it).

# %%
def data(rows=train, **switches):
    return minituner.Dataset.from_conversations(rows, val=val, test=test, template=TRAINED, **switches)


def score(name, model, steps, lr, d=None, template=TRAINED):
    """Train (steps > 0) on d, then one table row: identity accuracy on val and test (rendered with
    `template`), the fact probe's accuracy, and the answer to 'who are you?'."""
    d = d or data()
    hist = minituner.train(model, d, steps=steps, lr=lr, batch_size=args.batch_size, seed=args.seed,
                           progress=False) if steps else None
    split = {s: encode_conversations(s, rows, tok, template, [s] * len(rows), mask_history=True)
             for s, rows in (("val", val), ("test", test))}
    reply = minituner.answer(model, tok, chat.render([turn("user", "who are you?")], template), max_new_tokens=16)
    return {"run": name, "template (train → use)": f"{d.template} → {template}", "lr": lr if steps else "",
            "steps": steps, "identity share": f"{len(train)}/{len(d.train)}",
            "val acc": minituner.evaluate(model, split["val"])["accuracy"],
            "test acc": minituner.evaluate(model, split["test"])["accuracy"],
            "facts": minituner.evaluate(model, probe)["accuracy"], "who are you?": repr(reply),
            "s": round(hist.seconds, 1) if hist else 0.0}


COLUMNS = ["run", "template (train → use)", "lr", "steps", "identity share", "val acc", "test acc", "facts",
           "who are you?", "s"]
lora = minituner.lora(base, r=LORA["r"], lora_alpha=LORA["lora_alpha"], seed=args.seed)
rows = {"base": score("base, untrained", base, 0, 0),
        "lora": score("LoRA", lora, args.steps, LORA["lr"]),
        "ptv2": score("P-Tuning v2", minituner.ptuning_v2(base, PTV2_K, seed=args.seed), args.ptv2_steps,
                      args.ptv2_lr)}
show(markdown_table(list(rows.values()), COLUMNS))

# %% [markdown]
# ## 5. Why a fine-tune "did not take": the failures, side by side
#
# Each row changes one thing from the LoRA run above, as people report it in the trackers of the
# projects they learn from: the model trained with `chatml` and asked with `llama2`; a learning
# rate ten times smaller; a tenth of the steps; the same identity rows among a hundred times as
# many `qa` conversations (as a few dozen identity rows lost among hundreds of thousands). One seed
# each: a row shows what happened once, not a rate.

# %%
others = [chat.pair_to_messages(p.removeprefix("q: ").removesuffix("\na:"), a) for p, a in qa.train.examples]
others = [c for c in others if len(chat.render(c, TRAINED)) <= room]
copies = -(-args.dilution * len(train) // len(others))  # others repeated: identity rows 1 in (dilution + 1)
diluted = data(train + (others * copies)[:args.dilution * len(train)])


def fresh_lora():
    return minituner.lora(base, r=LORA["r"], lora_alpha=LORA["lora_alpha"], seed=args.seed)


rows |= {"template": score("LoRA, asked with another template", lora, 0, 0, template=OTHER)
         | {"lr": LORA["lr"], "steps": args.steps},
         "lr": score("LoRA, lr ten times too small", fresh_lora(), args.steps, LORA["lr"] / 10),
         "steps": score("LoRA, a tenth of the steps", fresh_lora(), max(1, args.steps // 10), LORA["lr"]),
         "diluted": score(f"LoRA, identity rows 1 : {args.dilution}", fresh_lora(), args.steps, LORA["lr"], diluted)}
show(markdown_table([rows[k] for k in ("lora", "template", "lr", "steps", "diluted")], COLUMNS))
for key, what in (("template", "another template at inference"), ("lr", "lr ten times too small"),
                  ("steps", "too few steps"), ("diluted", f"identity rows 1 : {args.dilution}")):
    print(f"- {what}: identity test accuracy {rows[key]['test acc']:.3f}, against {rows['lora']['test acc']:.3f} "
          f"for the LoRA run (one seed, {len(test)} test conversations)")

# %% [markdown]
# ## 6. What the base forgot
#
# The fact probe asks the base's own facts as raw text ("the cat says" → "meow."), no template;
# the base answers every one of them. Each run above is scored on it after training, with its
# adapter active.

# %%
plt = pyplot()
fig, ax = plt.subplots(figsize=(9, 3.6))
order = ["base", "lora", "ptv2", "template", "lr", "steps", "diluted"]
xs = torch.arange(len(order))
ax.bar(xs - 0.2, [rows[k]["test acc"] for k in order], width=0.4, label="identity, test accuracy")
ax.bar(xs + 0.2, [rows[k]["facts"] for k in order], width=0.4, label="fact probe accuracy")
ax.set_xticks(xs.tolist(), [rows[k]["run"].replace(", ", "\n") for k in order], fontsize=7)
ax.set_ylim(0, 1.05)
ax.set_title("identity learned against facts kept (one seed each)")
ax.legend(fontsize=8)
save_figure(fig, args.out / "identity_vs_facts.png");
for key in order[1:]:
    print(f"- {rows[key]['run']}: fact probe {rows['base']['facts']:.3f} -> {rows[key]['facts']:.3f}")

# %% [markdown]
# ## 7. Loss on the prompt too (`train_on_prompt`), against the mask
#
# Shi et al. (2024) report that a loss over the instructions as well can help, most when the
# answers are short next to the prompts and the examples few, which is this data's case. Here
# the same LoRA run with the mask switched off for the prompt, all else equal.

# %%
rows["prompt"] = score("LoRA, train_on_prompt", fresh_lora(), args.steps, LORA["lr"], data(train_on_prompt=True))
show(markdown_table([rows["lora"], rows["prompt"]], COLUMNS))
print(f"train_on_prompt: identity test accuracy {rows['prompt']['test acc']:.3f} (validation "
      f"{rows['prompt']['val acc']:.3f}), the mask {rows['lora']['test acc']:.3f} (validation "
      f"{rows['lora']['val acc']:.3f}); facts {rows['prompt']['facts']:.3f} against {rows['lora']['facts']:.3f} "
      f"(one seed)")

# %% [markdown]
# ## Conclusions
#
# Each sentence is printed from the measured rows above (one seed each: the rows show what
# happened once, and no sentence ranks two runs by it).

# %%
lo, pt, r = rows["lora"], rows["ptv2"], rows
forgot = min(lo["facts"], pt["facts"]) < r["base"]["facts"]
show(conclusions(
    f"The identity fine-tune: LoRA answered {pct(lo['test acc'])} of the held-out identity conversations, "
    f"P-Tuning v2 {pct(pt['test acc'])}, the untrained base {pct(r['base']['test acc'])}.",
    f"Asked with {OTHER} after training with {TRAINED}, the same LoRA model answered {pct(r['template']['test acc'])}; "
    f"with lr ten times smaller {pct(r['lr']['test acc'])}; with a tenth of the steps {pct(r['steps']['test acc'])}; "
    f"with its rows diluted 1 : {args.dilution} {pct(r['diluted']['test acc'])}.",
    f"The fact probe: {pct(r['base']['facts'])} for the base, {pct(lo['facts'])} after LoRA, {pct(pt['facts'])} "
    f"after P-Tuning v2" + (": trained on identity rows alone, the adapters cost facts the base knew." if forgot else "."),
    f"With the loss on the prompt too, LoRA answered {pct(r['prompt']['test acc'])} against {pct(lo['test acc'])} "
    f"with the mask.",
    zh=f"对话数据经模板(chat template)写成一段文本,损失掩码只让助手的回答(含结束符)参与训练。"
       f"身份微调:LoRA 在未见过的身份对话上答对 {pct(lo['test acc'])},P-Tuning v2 答对 {pct(pt['test acc'])};"
       f"推理时换用另一个模板只答对 {pct(r['template']['test acc'])},学习率小十倍 {pct(r['lr']['test acc'])},"
       f"步数只有十分之一 {pct(r['steps']['test acc'])},身份数据被稀释到 1 : {args.dilution} 时 "
       f"{pct(r['diluted']['test acc'])}。事实探针:基座 {pct(r['base']['facts'])},LoRA 之后 {pct(lo['facts'])},"
       f"P-Tuning v2 之后 {pct(pt['facts'])}" + ("(只用身份数据微调,忘掉了基座原有的知识)。" if forgot else "。")
       + "对提示也计算损失(train_on_prompt)时答对 "
       f"{pct(r['prompt']['test acc'])}。以上每个数字都只来自一个随机种子。"))

# %% [markdown]
# ## Exercises · 练习
#
# The coding exercise's skeleton is `exercises/13_chat_mask.py`; write the function bodies, then run `minituner check 13_chat_mask` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `loss_mask`.** From a conversation's rendered pieces (token ids, role), return (ids, mask) with LLaMA-Factory's two switches, `train_on_prompt` and `mask_history`.
# 2. **Predict, then measure.** Fine-tune on conversations with `--train-on-prompt`: does the model start writing the user's turns?
# 3. **Homework.** Render the same conversation with every template and show the mask with `show_mask`; which tokens differ between templates?
#
# 编程题的骨架在 `exercises/13_chat_mask.py`：写好函数体后运行 `minituner check 13_chat_mask --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`loss_mask`。** 根据对话渲染后的片段（token ids, 角色），返回 (ids, mask)，支持 LLaMA-Factory 的两个开关 `train_on_prompt` 和 `mask_history`。
# 2. **先预测再测量。** 加上 `--train-on-prompt` 在对话上微调：模型会不会开始替用户说话？
# 3. **作业。** 用每个模板渲染同一段对话，并用 `show_mask` 显示掩码；不同模板之间哪些 token 不同？
