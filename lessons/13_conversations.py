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

# %% [markdown] lang="zh"
# # 13 · 从问答对到对话：对话模板与损失掩码
#
# 原文把 ChatGPT 的效果归功于微调（§3）；§4 的第 2 步要求数据符合“模型所期望的输入格式”（调整输入）；§5 的表格给每个模型系列都列了一个**模板**（llama2、baichuan、chatglm3、Qwen 用的 chatml……）。到目前为止，minituner 训练的都是（提示，答案）对，损失只算在答案上（第 02 课打印过这个掩码）。对话模型是在*对话*上训练的：有角色（system、user、assistant），有多个轮次，还有一个把它们写成一段文本的模板。这一课把这些做成一个缩微版，然后在几秒钟内重现人们解释微调“没生效”时常说的那些原因：
#
# 1. 问答对变成对话；2. 同一段对话，两种模板；3. 逐个 token 看损失掩码；4. 身份微调（问“who are you?”，答一个基座模型从没见过的名字），分别用 LoRA 和 P-Tuning v2；5. 失败案例并排比较：推理时换了模板、学习率降为十分之一、步数太少、身份数据被一百倍的其他数据稀释；6. 基座模型忘掉了什么；7. 提示部分也算损失（`train_on_prompt`，Shi et al. 2024）。
#
# 运行：`python lessons/13_conversations.py`（加 `--smoke` 为测试用的快速预设）。

# %%
import random

import torch

import minituner
from minituner import chat
from minituner.data import corpus_sentences, make_world
from minituner.dataset import encode_conversations
from minituner.experiments import selected_settings
from minituner.i18n import _
from minituner.lesson import Prose, conclusions, options, pct
from minituner.report import label, markdown_table, pyplot, save_figure, show

args = options("Lesson 13: conversations, chat templates and the loss mask", smoke=dict(steps=4, ptv2_steps=4),
               out="runs/13_conversations", steps=60, ptv2_steps=60, ptv2_lr=0.3, batch_size=16, seed=0,
               dilution=100)
torch.manual_seed(args.seed)
LORA = selected_settings()["classify"]["lora"]  # r, lora_alpha and lr as `minituner sweep` chose them on classify
PTV2_K = selected_settings()["classify"]["ptuning-v2"]["num_virtual_tokens"]
TRAINED, OTHER = "chatml", "llama2"  # the template trained with, and the one a careless inference uses
tok, base = minituner.CharTokenizer(), minituner.load_base()
print(_("LoRA r={r}, alpha={alpha}, lr {lr:g}, {lora_n} steps; P-Tuning v2 k={k}, lr {ptv2_lr:g}, {ptv2_n} steps; "
        "batch {batch}, seed {seed}").format(r=LORA["r"], alpha=LORA["lora_alpha"], lr=LORA["lr"], lora_n=args.steps,
                                             k=PTV2_K, ptv2_lr=args.ptv2_lr, ptv2_n=args.ptv2_steps,
                                             batch=args.batch_size, seed=args.seed))

# %% [markdown]
# ## 1. Pairs become conversations
#
# A pair of the `qa` task is a prompt that already carries a template in disguise (`q: … a:`);
# as a conversation it is a user turn and an assistant turn, and the template moves out of the
# data into `minituner.chat`. The identity data: eight ways to ask "who are you?", each alone,
# after a system turn, or after an earlier turn about an animal (multi-turn), all answered with a
# name the base never read. Splits are dealt by conversation (`Dataset.from_conversations` does
# the same); validation and test hold conversations the training split never shows.

# %% [markdown] lang="zh"
# ## 1. 问答对变成对话
#
# `qa` 任务的一个问答对，其提示里其实已经藏着一个模板（`q: … a:`）；写成对话，它就是一个用户轮次加一个助手轮次，模板则从数据里挪出来，交给 `minituner.chat`。身份数据：问“who are you?”的八种说法，每种或者单独出现，或者跟在一个系统轮次之后，或者跟在之前一轮关于某种动物的问答之后（多轮对话），回答都是一个基座模型从没读到过的名字。数据集按对话划分（`Dataset.from_conversations` 也是这样做的）；验证集和测试集里的对话，训练集从未出现过。

# %%
qa = minituner.make_task("qa")
prompt, answer = qa.train.examples[0]
print(_("pair:         {prompt} -> {answer}").format(prompt=repr(prompt), answer=repr(answer)))
print(_("conversation: {turns}").format(turns=chat.pair_to_messages(prompt.removeprefix("q: ").removesuffix(chr(10) + "a:"),
                                                                   answer)))

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
print(_("{n} identity conversations (those that fit {room} positions): train {train}, val {val}, test {test}; "
        "{multi} multi-turn, {system} with a system turn; sentences of the base's corpus that hold 'zorb': {zorb}").format(
    n=len(identity), room=room, train=len(train), val=len(val), test=len(test),
    multi=sum(len(c) > 3 for c in identity), system=sum(c[0]["role"] == "system" for c in identity),
    zorb=sum("zorb" in s for s in corpus_sentences(make_world()))))

# %% [markdown]
# ## 2. One conversation, two templates
#
# A template is data: each role's slot, the text around `{content}`. The user slot ends with the
# assistant's header, so a prompt for generation is the conversation so far, and the assistant
# slot ends with the end-of-answer marker (a newline, where the base already stops). The real
# markers are special tokens (`<|im_start|>`, `[INST]`, `<reserved_102>`); the base reads lower
# case, space and a little punctuation, so the miniatures write theirs with those. Every template
# reads back what it wrote (`chat.parse`); a content holding a template's markers is refused.

# %% [markdown] lang="zh"
# ## 2. 同一段对话，两种模板
#
# 模板就是数据：每个角色一个槽位，即围绕 `{content}` 的那段文字。用户槽位以助手的开头标记结尾，所以生成时的提示就是到目前为止的对话；助手槽位以回答结束标记结尾（一个换行符，基座模型本来就在换行处停下）。真实模板的标记是特殊 token（`<|im_start|>`、`[INST]`、`<reserved_102>`）；我们的基座模型只认识小写字母、空格和少量标点，所以这些缩微模板用这些字符来写标记。每个模板都能把自己写出的文本读回来（`chat.parse`）；内容里如果含有模板的标记，会被拒绝。

# %%
conv = [turn("system", "be brief."), turn("user", "who says moo?"), turn("assistant", "the cow."),
        turn("user", "who are you?"), turn("assistant", NAME)]
for name in (TRAINED, OTHER):
    print(_("--- {name} ({n} characters)").format(name=name, n=len(chat.render(conv, name))) + "\n"
          + chat.render(conv, name), end="")
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

# %% [markdown] lang="zh"
# ## 3. 逐个 token 看损失掩码
#
# `chat.render_ids` 同时返回 `(ids, mask)`，和 nanochat 的 `render_conversation` 一样：掩码是数据，要展示出来，而不是隐含在代码里。被标出的 token（在 notebook 里显示为绿色，在终端里用方括号 `[…]` 括起来）就是损失计入的 token。默认计入每一个助手轮次，包括它的结束标记；LLaMA-Factory 的 `mask_history` 只保留最后一轮；`train_on_prompt` 把系统轮次和用户轮次也计入。训练样本取 `x = ids[:-1]`、`y = ids[1:]`、`mask[1:]`：助手回答的第一个 token，是开头标记最后一个字符所在位置的预测目标。两端都没有丢掉任何 token。

# %%
for switches in ({}, {"mask_history": True}, {"train_on_prompt": True}):
    ids, mask = chat.render_ids(conv, TRAINED, tok, **switches)
    show(Prose(_("**{switches}**: {n} of the {total} targets y = ids[1:] counted by the loss").format(
        switches=switches or _("default"), n=sum(mask[1:]), total=len(ids) - 1)))
    show(chat.show_mask(ids, mask, tok))
ids, mask = chat.render_ids(conv, TRAINED, tok)
text = tok.decode(ids)
first, last_user = text.rindex(NAME), text.rindex("?")
print(_("first assistant token {first}: trained {first_trained}; last user token {last}: trained {last_trained}; "
        "end marker: trained {end_trained}").format(first=repr(text[first]), first_trained=bool(mask[first]),
                                                    last=repr(text[last_user]), last_trained=bool(mask[last_user]),
                                                    end_trained=bool(mask[-1])))

# %% [markdown]
# ## 4. An identity fine-tune: LoRA and P-Tuning v2
#
# Both train on the identity conversations rendered with `chatml`. LoRA takes the setting the
# sweep chose on `classify`; P-Tuning v2 (prefixes on every layer, lesson 05) needs a larger
# learning rate here than there. The score is the exact match of the last answer on held-out
# conversations; the last column is the greedy answer to "who are you?" asked alone, with no system
# turn and no history (one conversation of the set, in whichever split the shuffle dealt it).

# %% [markdown] lang="zh"
# ## 4. 身份微调：LoRA 与 P-Tuning v2
#
# 两者都在用 `chatml` 渲染的身份对话上训练。LoRA 采用超参数扫描在 `classify` 上选出的设置；P-Tuning v2（每一层都加前缀，见第 05 课）在这里需要比在那里更大的学习率。得分是留出的对话中最后一个回答的完全匹配准确率；最后一列是单独问“who are you?”（没有系统轮次，也没有历史）时的贪心解码回答（这段对话本身也在数据里，打乱后分到哪个划分就在哪个划分）。

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

# %% [markdown] lang="zh"
# ## 5. 微调为什么“没生效”：失败案例并排比较
#
# 每一行相对上面的 LoRA 实验只改动一处，对应人们在各个开源项目的 issue 里常报告的情况：用 `chatml` 训练、却用 `llama2` 提问；学习率降为十分之一；步数只有十分之一；同样的身份数据混进一百倍数量的 `qa` 对话里（好比几十条身份数据淹没在几十万条数据中）。每种情况只跑一个随机种子：一行只说明某一次发生了什么，而不是一个概率。

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
         "diluted": score(_("LoRA, identity rows 1 : {n}").format(n=args.dilution), fresh_lora(), args.steps, LORA["lr"],
                          diluted)}
show(markdown_table([rows[k] for k in ("lora", "template", "lr", "steps", "diluted")], COLUMNS))
for key, what in (("template", _("another template at inference")), ("lr", _("lr ten times too small")),
                  ("steps", _("too few steps")), ("diluted", _("identity rows 1 : {n}").format(n=args.dilution))):
    print("- " + _("{what}: identity test accuracy {acc:.3f}, against {lora:.3f} for the LoRA run (one seed, {n} test "
                   "conversations)").format(what=what, acc=rows[key]["test acc"], lora=rows["lora"]["test acc"],
                                            n=len(test)))

# %% [markdown]
# ## 6. What the base forgot
#
# The fact probe asks the base's own facts as raw text ("the cat says" → "meow."), no template;
# the base answers every one of them. Each run above is scored on it after training, with its
# adapter active.

# %% [markdown] lang="zh"
# ## 6. 基座模型忘掉了什么
#
# 事实探针用原始文本（不套模板）询问基座模型自己的知识（“the cat says” → “meow.”），基座模型每一题都答得出来。上面每个实验训练之后，都在适配器启用的状态下用它打分。

# %%
plt = pyplot()
fig, ax = plt.subplots(figsize=(9, 3.6))
order = ["base", "lora", "ptv2", "template", "lr", "steps", "diluted"]
xs = torch.arange(len(order))
ax.bar(xs - 0.2, [rows[k]["test acc"] for k in order], width=0.4, label=label("identity, test accuracy"))
ax.bar(xs + 0.2, [rows[k]["facts"] for k in order], width=0.4, label=label("fact probe accuracy"))
ax.set_xticks(xs.tolist(), [_(rows[k]["run"]).replace(", ", "\n").replace("，", "\n") for k in order], fontsize=7)
ax.set_ylim(0, 1.05)
ax.set_title(label("identity learned against facts kept (one seed each)"))
ax.legend(fontsize=8)
save_figure(fig, args.out / "identity_vs_facts.png");
for key in order[1:]:
    print("- " + _("{run}: fact probe {base:.3f} -> {after:.3f}").format(run=_(rows[key]["run"]), base=rows["base"]["facts"],
                                                                       after=rows[key]["facts"]))

# %% [markdown]
# ## 7. Loss on the prompt too (`train_on_prompt`), against the mask
#
# Shi et al. (2024) report that a loss over the instructions as well can help, most when the
# answers are short next to the prompts and the examples few, which is this data's case. Here
# the same LoRA run with the mask switched off for the prompt, all else equal.

# %% [markdown] lang="zh"
# ## 7. 提示部分也算损失（`train_on_prompt`），与掩码对比
#
# Shi et al.（2024）报告：把指令部分也计入损失可能有帮助，尤其当回答比提示短得多、样本又少的时候，而这正是本课数据的情况。这里是同一个 LoRA 实验，只是对提示部分关掉了掩码，其余一切不变。

# %%
rows["prompt"] = score("LoRA, train_on_prompt", fresh_lora(), args.steps, LORA["lr"], data(train_on_prompt=True))
show(markdown_table([rows["lora"], rows["prompt"]], COLUMNS))
print(_("train_on_prompt: identity test accuracy {test:.3f} (validation {val:.3f}), the mask {mask_test:.3f} (validation "
        "{mask_val:.3f}); facts {facts:.3f} against {mask_facts:.3f} (one seed)").format(
    test=rows["prompt"]["test acc"], val=rows["prompt"]["val acc"], mask_test=rows["lora"]["test acc"],
    mask_val=rows["lora"]["val acc"], facts=rows["prompt"]["facts"], mask_facts=rows["lora"]["facts"]))

# %% [markdown]
# ## Conclusions
#
# Each sentence is printed from the measured rows above (one seed each: the rows show what
# happened once, and no sentence ranks two runs by it).

# %% [markdown] lang="zh"
# ## 结论
#
# 下面每一句都由上面测得的各行结果生成（每个实验只有一个随机种子：这些行只说明某一次发生了什么，所以没有哪句话据此给两个实验排高下）。

# %%
lo, pt, r = rows["lora"], rows["ptv2"], rows
forgot = min(lo["facts"], pt["facts"]) < r["base"]["facts"]
facts = dict(base=pct(r["base"]["facts"]), lora=pct(lo["facts"]), ptv2=pct(pt["facts"]))
show(conclusions(
    _("The identity fine-tune: LoRA answered {lora} of the held-out identity conversations, P-Tuning v2 {ptv2}, the "
      "untrained base {base}.").format(lora=pct(lo["test acc"]), ptv2=pct(pt["test acc"]), base=pct(r["base"]["test acc"])),
    _("Asked with {other} after training with {trained}, the same LoRA model answered {template}; with lr ten times "
      "smaller {lr}; with a tenth of the steps {tenth}; with its rows diluted 1 : {dilution} {diluted}.").format(
        other=OTHER, trained=TRAINED, template=pct(r["template"]["test acc"]), lr=pct(r["lr"]["test acc"]),
        tenth=pct(r["steps"]["test acc"]), dilution=args.dilution, diluted=pct(r["diluted"]["test acc"])),
    (_("The fact probe: {base} for the base, {lora} after LoRA, {ptv2} after P-Tuning v2: trained on identity rows "
       "alone, the adapters cost facts the base knew.") if forgot else
     _("The fact probe: {base} for the base, {lora} after LoRA, {ptv2} after P-Tuning v2.")).format(**facts),
    _("With the loss on the prompt too, LoRA answered {prompt} against {mask} with the mask.").format(
        prompt=pct(r["prompt"]["test acc"]), mask=pct(lo["test acc"]))))

# %% [markdown]
# ## Exercises
#
# The coding exercise's skeleton is `exercises/13_chat_mask.py`; write the function bodies, then run `minituner check 13_chat_mask` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `loss_mask`.** From a conversation's rendered pieces (token ids, role), return (ids, mask) with LLaMA-Factory's two switches, `train_on_prompt` and `mask_history`.
# 2. **Predict, then measure.** Fine-tune on conversations with `--train-on-prompt`: does the model start writing the user's turns?
# 3. **Homework.** Render the same conversation with every template and show the mask with `show_mask`; which tokens differ between templates?

# %% [markdown] lang="zh"
# ## 练习
#
# 编程题的骨架在 `exercises/13_chat_mask.py`：写好函数体后运行 `minituner check 13_chat_mask --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`loss_mask`。** 根据对话渲染后的各个片段（token ids 与角色），返回 `(ids, mask)`，支持 LLaMA-Factory 的两个开关 `train_on_prompt` 和 `mask_history`。
# 2. **先预测再测量。** 加上 `--train-on-prompt` 在对话上微调：模型会不会开始替用户说话？
# 3. **作业。** 用每个模板渲染同一段对话，并用 `show_mask` 显示掩码；不同模板之间哪些 token 不同？
