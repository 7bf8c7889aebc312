# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 04 · 提示微调 (prompt tuning, article §3.2)
#
# The article's prompt tuning keeps the base model as it is and, for each task, trains
# a few extra "tokens" put in front of the input:
#
# X = [x1, …, xm]  becomes  X' = [x'1, …, x'k; x1, …, xm],  and  Y = W X'.
#
# The x' are not characters of the vocabulary: they are k free vectors of the model's
# width d, a *soft prompt* (软提示) P (k × d), the only thing that trains (Lester et al. 2021).
# In minituner that is one line of `model.py`, the `prompt=` slot of `GPT.forward`:
# `x = torch.cat([virtual.expand(B, -1, -1), x], dim=1)` with `virtual` = P plus positions.
#
# This lesson checks that line by hand, sweeps k against full fine-tuning (lesson 02),
# measures what an untrained prompt costs the base, and tries what the literature does to
# help. Lester et al. found that prompt tuning lags behind full fine-tuning on small
# models and closes the gap only as models approach ten billion parameters; this base's
# size is printed below.
#
# Run it: `python lessons/04_prompt_tuning.py` (add `--smoke` for the quick test preset).

# %%
import copy

import torch

import minituner
from minituner.lesson import best, conclusions, options, reference_rows, run
from minituner.methods.prompt import prompt_parameter_count
from minituner.report import markdown_table, plot_curves, plot_tradeoff, show
from minituner.train import print_answers
from minituner.verdict import compare

args = options("Lesson 04: prompt tuning", smoke=dict(rows=48, steps=3, ks=(4,), answers=1, seeds=(0,)), out="runs/04_prompt_tuning",
               ks=(1, 4, 16), steps=48, batch_size=16, lr=3e-2, full_lr=5e-4, seed=0, seeds=(0, 1, 2), rows=None,
               answers=3)
torch.manual_seed(args.seed)
base, task = minituner.load_base(), minituner.make_task("classify", rows=args.rows)
fingerprint = minituner.fingerprint(base)
C = base.config.n_embd
print(f"k in {args.ks}; {args.steps} steps, batch {args.batch_size}; prompt lr {args.lr}, full fine-tuning lr "
      f"{args.full_lr}; the base has {minituner.count_parameters(base)[1]:,} parameters")

# %% [markdown]
# ## 1. X' = [P; X], checked by hand
#
# `minituner.prompt_tuning(base, num_virtual_tokens=k)` deep-copies the base, freezes
# every tensor of the copy, and adds one trainable tensor, `prompt`, of shape (k, d).
# We build X' ourselves (token embeddings plus positions, P in front), run the frozen
# blocks on it, and compare with the model's own forward.
#
# Two details the formula leaves open, and what minituner does:
# - **positions**: as PEFT does on GPT-2, [P; X] is one sequence of k + T positions. Virtual
#   token i gets the position embedding wpe[i] added (x'ᵢ = Pᵢ + wpe[i]), and the real
#   tokens move to positions k…k+T−1 (pretraining saw them at 0…T−1). The attention
#   length k + T may not exceed the context (`block_size`), or the model raises ValueError.
# - **the loss**: the model returns logits for the T real positions only, so the
#   answer-only mask of the task lines up with them; virtual positions never count.

# %%
@torch.no_grad()
def forward_by_hand(gpt, idx, P, shift):
    """The frozen GPT on X' = [P + wpe[0:k]; X + wpe[shift:shift+T]]: logits of the T real tokens."""
    B, T = idx.shape
    x = gpt.wte.weight[idx] + gpt.wpe.weight[shift : shift + T]  # (B, T, d): X at positions shift..shift+T-1
    virtual = P + gpt.wpe.weight[: len(P)]  # (k, d): x'_i = P_i + wpe[i]
    x = torch.cat([virtual.expand(B, -1, -1), x], dim=1)  # (B, k + T, d): X' = [P; X]
    for block in gpt.h:
        x = block(x)
    return (gpt.ln_f(x) @ gpt.wte.weight.T)[:, len(P):]  # (B, T, V): the k virtual rows predict nothing


k = 4
model = minituner.prompt_tuning(base, num_virtual_tokens=k, init="vocab", seed=0)
idx = task.test.x[:4]  # (B, T)
B, T = idx.shape
with torch.no_grad():
    logits = model(idx)
by_hand = forward_by_hand(model.base, idx, model.prompt, shift=k)
residual = (logits - by_hand).abs().max().item()
print(f"P {tuple(model.prompt.shape)}, X {tuple(idx.shape)} -> X' ({B}, {k} + {T}, {C}), logits {tuple(logits.shape)}")
print(f"max |model(X) − by hand| = {residual:.1e}")
assert residual < 1e-4, "the by-hand X' = [P + wpe[0:k]; X + wpe[k:k+T]] must be the model's forward"
trainable, total = minituner.count_parameters(model)
print(f"trainable = k·d = {k}·{C} = {prompt_parameter_count(k, C)}: {trainable == prompt_parameter_count(k, C)}; "
      f"the {total - trainable:,} base parameters are frozen")
try:
    model(torch.zeros(1, base.config.block_size - k + 1, dtype=torch.long))
except ValueError as e:
    print(f"k + T > block_size: ValueError: {e}")

# %% [markdown]
# ## 2. How many virtual tokens? A sweep of k, against full fine-tuning (全量微调)
#
# Each run starts from the same base, sees the same batches and trains for the same
# number of steps; P starts random, at the scale of the token embeddings. Full
# fine-tuning (every parameter, at its own small learning rate, as in lesson 02) is the
# reference. The validation split (what the best k is chosen on, in section 4) and the test
# split (reported beside it) ask about facts the task's training split never shows.

# %%
every = max(2, args.steps // 8)
rows, histories = reference_rows(base, task, args.steps, args.full_lr, args.batch_size, args.seed, every)
models = {}
for k in args.ks:
    models[k] = minituner.prompt_tuning(base, num_virtual_tokens=k, seed=args.seed)
    row, histories[f"prompt, k={k}"] = run(f"prompt, k={k}", models[k], task, args.steps, args.lr,
                                           batch_size=args.batch_size, seed=args.seed, eval_every=every)
    rows.append(row)
columns = ["run", "trainable", "trainable %", "lr", "steps", "train loss", "train acc", "val loss", "val acc",
           "test loss", "test acc"]
show(markdown_table(rows, columns))
plot_curves(histories, "classify: prompt tuning for several k vs full fine-tuning", args.out / "prompt_tuning_curves.png");

# %% [markdown]
# ## 3. What an untrained prompt costs the base
#
# A fresh prompt is not "nothing", for two reasons: every real token attends to the k
# vectors in front of it, and the real tokens move from positions 0…T−1 to k…k+T−1. The
# table scores, before any training, the base with its tokens only moved by k (section 1's
# forward with an empty P), then the untrained prompts: random vectors, and k real
# characters' embeddings drawn from the vocabulary (`init="vocab"`, the "sampled vocab"
# initialisation of Lester et al.), next to the trained rows above.

# %%
start = []
for k in args.ks:
    moved = forward_by_hand(base, task.test.x, torch.zeros(0, C), shift=k)  # (N, T, V): no virtual tokens
    right = (moved.argmax(-1) == task.test.y) | (task.test.mask == 0)  # evaluate()'s exact match, per position
    entry = {"k": k, "numbers k·d": k * C, "test acc, only positions moved by k": right.all(1).float().mean().item()}
    for init in ("random", "vocab"):
        entry[f"test acc at step 0, {init}"] = minituner.evaluate(
            minituner.prompt_tuning(base, num_virtual_tokens=k, init=init, seed=args.seed), task.test)["accuracy"]
    entry["test acc after training (random)"] = next(r["test acc"] for r in rows if r["run"] == f"prompt, k={k}")
    start.append(entry)
show(markdown_table(start))
print(f"the base without a prompt: {rows[0]['test acc']:.3f}")

# %% [markdown]
# ## 4. What helps prompt tuning
#
# Three things to try, each changed alone, at the k the validation split prefers in the
# sweep (its test accuracy is only reported):
# - **text init**: start P from the embeddings of real text instead of random vectors,
#   here the last k characters of a sentence the base read in pretraining. This is
#   `PromptTuningInit.TEXT` of PEFT (Hugging Face's library of parameter-efficient
#   fine-tuning methods, 参数高效微调, whose names minituner's API borrows); Lester et al. compared
#   random-uniform init, embeddings sampled from the most common tokens, and class-label embeddings. With the
#   positions of section 1, P + wpe[0:k] is then exactly what the base read for that text at
#   positions 0…k−1, and X follows it at k…, as a new line of the corpus would.
# - **a larger learning rate**: P has only k·d numbers and its gradient reaches it through
#   every frozen layer. Lester et al. trained at a far larger rate (printed below) with Adafactor, an optimiser that
#   keeps factored second moments (a row and a column mean instead of AdamW's full v) and
#   scales its steps differently, so their rate does not carry over to AdamW as is.
# - **more steps**: the same prompt, trained as long again.
#
# One row is a small step of accuracy (printed below), and the order of the batches moves
# several rows, so the two inits are run on several seeds (the columns of the table name them) and
# compared by the rule every lesson's verdicts use (`minituner.verdict`: paired by seed, at
# least three, one sign, the mean gap beyond Student's t times its standard error). Each
# variant is judged on the validation split; the test split is printed beside it.

# %%
PHRASE = "the animal that says woof is the dog.\n"  # a sentence the base read in pretraining
LESTER_LR = 0.3  # Lester et al. 2021 (§3, training): their rate, with Adafactor
chosen = best([r for r in rows if r["run"].startswith("prompt")])  # by validation accuracy
k = int(chosen["run"].split("=")[1])
text = (PHRASE * (k // len(PHRASE) + 1))[-k:]  # the last k characters: text the base knows, ending where X begins
print(f"k = {k}, chosen on validation (val acc {chosen['val acc']:.3f}; test acc {chosen['test acc']:.3f}); "
      f"{k * C:,} trainable numbers; init_text {text!r}")
print(f"one row = {1 / len(task.val):.4f} of validation accuracy, {1 / len(task.test):.4f} of test accuracy; "
      f"Lester et al.'s rate {LESTER_LR} (Adafactor) against {args.lr} here (AdamW)")
variants = [("random init", {}, args.lr), ("text init", dict(init="text", init_text=text), args.lr),
            (f"random init, lr ×3 = {3 * args.lr:g}", {}, 3 * args.lr)]
sweep = {r["run"]: r for r in rows}
helps = []
for name, kwargs, lr in variants:
    entry = {"variant": name, "k": k, "steps": args.steps}
    for seed in args.seeds:
        if name == "random init" and seed == args.seed:
            row = sweep[f"prompt, k={k}"]  # the sweep's run
        elif lr != args.lr and seed != args.seed:  # the larger rate on one seed only, to keep the lesson short
            continue
        else:
            row, _ = run(name, minituner.prompt_tuning(base, k, seed=seed, **kwargs), task, args.steps, lr,
                         batch_size=args.batch_size, seed=seed)
        entry |= {f"val acc, seed {seed}": row["val acc"], f"test acc, seed {seed}": row["test acc"]}
    helps.append(entry)
row, _ = run("more steps", copy.deepcopy(models[k]), task, args.steps, args.lr, batch_size=args.batch_size,
             seed=args.seed)
helps.append({"variant": "random init, then as many steps again", "k": k, "steps": 2 * args.steps,
              f"val acc, seed {args.seed}": row["val acc"], f"test acc, seed {args.seed}": row["test acc"]})
show(markdown_table(helps))
plot_tradeoff([(r["run"].replace("prompt, ", ""), r["trainable"], r["test acc"]) for r in rows[1:]],
              "Prompt tuning: trainable parameters vs test accuracy", args.out / "params_vs_accuracy.png",
              baseline=rows[0]["test acc"]);

# %% [markdown]
# ## 5. The trained prompt at work
#
# `generate()` works unchanged. It uses a KV cache (键值缓存): at each new token, the keys and
# values of every earlier position are kept from the previous step instead of being
# recomputed, so the prompt is inserted once and only the new token is run through the
# model. With and without the cache the tokens must be the same.

# %%
print(f"k = {k}:")
same = print_answers(models[k], task, n=args.answers)
print(f"the base is bit-identical after all of it: {minituner.fingerprint(base) == fingerprint}")

# %% [markdown]
# ## Conclusions (小结)
#
# Generated from the tables above, in English and then in Chinese.

# %%
full = rows[1]
prompts = [r for r in rows if r["run"].startswith("prompt")]
lo, hi = min(r["test acc"] for r in prompts), max(r["test acc"] for r in prompts)
at0 = [s["test acc at step 0, random"] for s in start]
falls = len(at0) > 1 and at0 == sorted(at0, reverse=True) and at0[-1] < rows[0]["test acc"]
rand, text_init, fast = helps[:3]
init = compare("text init", {s: text_init[f"val acc, seed {s}"] for s in args.seeds}, "random init",
               {s: rand[f"val acc, seed {s}"] for s in args.seeds}, "validation accuracy",
               names_zh=("用真实文本初始化提示", "随机初始化", "验证集准确率"))
longer = helps[-1][f"test acc, seed {args.seed}"]
show(conclusions(
    f"Prompt tuning with {', '.join(map(str, args.ks))} virtual tokens reaches test accuracy {lo:.3f}–{hi:.3f}; "
    f"the validation split prefers k = {k} (val {chosen['val acc']:.3f}, test {chosen['test acc']:.3f}); full "
    f"fine-tuning test {full['test acc']:.3f}; the base {rows[0]['test acc']:.3f}.",
    "Untrained random prompts score " + ", ".join(f"{a:.3f} at k={s['k']}" for a, s in zip(at0, start))
    + f" against the base's {rows[0]['test acc']:.3f}"
    + (f"; on seed {args.seed} each larger random prompt started lower, and training must first undo that."
       if falls else "."),
    f"{init.en()[0].upper()}{init.en()[1:]} (test, seed {args.seed}: "
    f"{text_init[f'test acc, seed {args.seed}']:.3f} against {rand[f'test acc, seed {args.seed}']:.3f}); three times "
    f"the rate: val {fast[f'val acc, seed {args.seed}']:.3f}; as many steps again: test "
    f"{rand[f'test acc, seed {args.seed}']:.3f} -> {longer:.3f}.",
    zh=f"提示微调用 {', '.join(map(str, args.ks))} 个虚拟 token,测试集准确率在 {lo:.3f}–{hi:.3f} 之间;"
       f"按验证集选出 k = {k}(验证集 {chosen['val acc']:.3f},测试集 {chosen['test acc']:.3f});全量微调的测试集准确率"
       f"为 {full['test acc']:.3f},未训练的基座模型为 {rows[0]['test acc']:.3f}。未经训练的随机提示会先拉低模型"
       f"(k 最大时只有 {at0[-1]:.3f})" + (f"(随机种子 {args.seed}),提示越长,起点越低,训练要先把这部分损失找回来。" if falls else "。")
       + init.zh() + ";"
       f"再训练同样多的步数,测试集准确率从 {rand[f'test acc, seed {args.seed}']:.3f} 变为 {longer:.3f}。",
))

# %% [markdown]
# ## Exercises · 练习
#
# The coding exercise's skeleton is `exercises/04_soft_prompt.py`; write the function bodies, then run `minituner check 04_soft_prompt` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `prepend_prompt`.** Write X′ = [P; X] for a batch: P (k, C) before every row of X (B, T, C). Also `prompt_params`, the closed-form count.
# 2. **Choose and defend.** Choose k, the number of virtual tokens, on the validation split (never the test split) and defend your choice with mean ± std over seeds.
# 3. **Explore.** Initialise P from the text of the task versus at random: which converges faster, and why might that be?
#
# 编程题的骨架在 `exercises/04_soft_prompt.py`：写好函数体后运行 `minituner check 04_soft_prompt --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`prepend_prompt`。** 对一个批次实现 X′ = [P; X]：把 P (k, C) 放在 X (B, T, C) 每一行之前。再写 `prompt_params`，提示微调可训练参数量的闭式公式。
# 2. **选择并论证。** 在验证集上（绝不用测试集）选出虚拟 token 数 k，并用多个种子的均值 ± 标准差论证你的选择。
# 3. **探索。** 用任务文本初始化 P 与随机初始化相比：哪个收敛更快？为什么？
