# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 05 · 前缀微调 (prefix tuning) and P-Tuning v2 (article §3.2)
#
# First, the three words of attention (注意力) this lesson needs. At every layer each
# position's vector x is projected three ways: a **query** q = W_q x (what it looks for),
# a **key** k = W_k x (what it offers to be found by) and a **value** v = W_v x (what it
# passes on). Position t mixes the values of the positions it may see, weighted by
# softmax over its query's dot products with their keys.
#
# The article writes prefix tuning as: W = [W]  becomes  W' = [Wp; W],  and  Y = W'X.
# Read literally, stacking rows Wp on a weight matrix would add *output features* to
# Y. That is not what prefix tuning does (Li & Liang 2021): it changes no weight at all.
# It puts k extra *positions* in front of every layer's keys and values, free vectors
# that are trained, and no input produces them: at layer l, attention runs over
# K' = [P_k; K] and V' = [P_v; V], with P_k, P_v of shape (k × d). In minituner that is
# two lines of `model.py`, the `prefixes=` slot:
# `k = torch.cat([prefix_k.expand(B, -1, -1, -1), k], dim=2)` and the same for `v`.
#
# **P-Tuning v2** (Liu et al. 2022, Tsinghua University and BAAI) is "deep prompt tuning":
# trainable keys and values at every layer, as here. Li & Liang made their prefixes with
# an MLP (a reparameterisation); Liu et al. treat that MLP as optional and report that
# it helps on some tasks and not on others. minituner's `ptuning_v2` trains the prefixes
# directly (`PrefixTuningConfig(prefix_projection=False)`, PEFT's name).
# Against prompt tuning (lesson 04), whose k vectors enter only at the bottom, the deep
# prompts reach each layer directly, with 2·L times as many numbers.
#
# Run it: `python lessons/05_prefix_tuning.py` (add `--smoke` for the quick test preset).

# %%
import matplotlib.pyplot as plt
import torch

import minituner
from minituner.lesson import best, conclusions, options, pct, reference_rows, run
from minituner.methods.prefix import prefix_parameter_count
from minituner.methods.virtual_tokens import text_keys_values
from minituner.report import (
    label,
    markdown_table,
    plot_curves,
    plot_tradeoff,
    save_figure,
    show,
)
from minituner.train import print_answers

args = options("Lesson 05: prefix tuning and P-Tuning v2", smoke=dict(rows=48, steps=3, ks=(2,), answers=1), out="runs/05_prefix_tuning",
               ks=(2, 8), steps=48, batch_size=16, prefix_lr=1e-2, v2_lr=1e-1, full_lr=5e-4, seed=0, rows=None, answers=3)
torch.manual_seed(args.seed)
base, task = minituner.load_base(), minituner.make_task("classify", rows=args.rows)
fingerprint = minituner.fingerprint(base)
c = base.config
PHRASE = "the animal that says woof is the dog.\n"  # a sentence the base read in pretraining


def phrase(k: int) -> str:
    """The last k characters of PHRASE (repeated as needed): text the base knows, ending where X begins."""
    return (PHRASE * (k // len(PHRASE) + 1))[-k:]


print(f"k in {args.ks}; {args.steps} steps, batch {args.batch_size}; prefix tuning lr {args.prefix_lr}, "
      f"P-Tuning v2 lr {args.v2_lr}, full fine-tuning lr {args.full_lr}")

# %% [markdown]
# ## 1. K' = [P_k; K], V' = [P_v; V], checked by hand — and a zero prefix is not "nothing"
#
# For the first layer of the base we compute attention ourselves over the concatenated
# keys and values (softmax from PyTorch as the oracle) and compare with the model.
# Every real token's query sees all k prefix rows; no query is made *for* them, so the
# model predicts only the T real positions and the prefix never counts in the loss.
# Positions follow PEFT on GPT-2: the prefixes are keys and values already "in the cache",
# so the real tokens are numbered k…k+T−1 (pretraining saw them at 0…T−1), and k + T may
# not exceed `block_size`. The whole model is then checked the same way: the token
# embeddings at positions k…k+T−1, every block with its layer's prefix, the tied head.
#
# Is a prefix of zeros "nothing"? No. A zero key scores q·0 = 0, so each of the k zero rows
# still takes exp(0) out of the softmax's sum Z: every real token's weight shrinks by
# Z / (Z + k), and the zero values put nothing back. The first layer's attention output
# changes on the same input; the whole model's logits change for that reason at every layer,
# and because the real tokens moved by k positions. The figure draws that share for every
# layer and head of the model with a zero prefix, averaged over the real tokens.

# %%
k = 4
model = minituner.ptuning_v2(base, num_virtual_tokens=k, init="text", init_text=phrase(k))
idx = task.test.x[:4]  # (B, T)
B, T = idx.shape
d, nh = c.n_embd, c.n_head
with torch.no_grad():
    attn = model.base.h[0].attn
    x = model.base.h[0].ln_1(model.base.wte(idx) + model.base.wpe(torch.arange(k, k + T)))  # (B, T, d), at k..k+T-1
    pk, pv = model.prefixes()[0]  # (k, d) each
    heads = lambda t: t.view(B, t.size(1), nh, d // nh).transpose(1, 2)  # (B, ·, d) -> (B, nh, ·, hs)  # noqa: E731
    Q = heads(attn.q_proj(x))  # (B, nh, T, hs)
    K = heads(torch.cat([pk.expand(B, k, d), attn.k_proj(x)], dim=1))  # (B, nh, k + T, hs): K' = [P_k; K]
    V = heads(torch.cat([pv.expand(B, k, d), attn.v_proj(x)], dim=1))  # (B, nh, k + T, hs): V' = [P_v; V]
    seen = torch.cat([torch.ones(T, k, dtype=torch.bool), torch.ones(T, T, dtype=torch.bool).tril()], dim=1)
    S = (Q @ K.transpose(-2, -1) / (d // nh) ** 0.5).masked_fill(~seen, float("-inf"))  # (B, nh, T, k + T)
    by_hand = attn.o_proj((torch.softmax(S, -1) @ V).transpose(1, 2).reshape(B, T, d))  # (B, T, d)
    layer_residual = (attn(x, prefix=(pk, pv)) - by_hand).abs().max().item()
    h = model.base.wte(idx) + model.base.wpe(torch.arange(k, k + T))  # (B, T, d): the real tokens at k..k+T-1
    for block, prefix in zip(model.base.h, model.prefixes(), strict=True):
        h = block(h, prefix=prefix)  # (B, T, d): each layer's [P_k; K], [P_v; V]
    logits = model(idx)  # (B, T, V)
    model_residual = (logits - model.base.ln_f(h) @ model.base.wte.weight.T).abs().max().item()
    print(f"P_k, P_v {tuple(pk.shape)} per layer × {c.n_layer} layers; "
          f"max |attention(x, prefix) − by hand| = {layer_residual:.1e}; the whole model by hand, real tokens at "
          f"positions {k}…{k + T - 1}: max |model(X) − by hand| = {model_residual:.1e}")
    assert layer_residual < 1e-5 and model_residual < 1e-4, "the by-hand K' = [P_k; K], V' = [P_v; V] must be the model's"
    print(f"logits {tuple(logits.shape)} for input {tuple(idx.shape)}: only the real positions are predicted")
    zero = minituner.ptuning_v2(base, num_virtual_tokens=k)
    zero.prefix.zero_()
    real = S[..., k:]  # (B, nh, T, T): the real keys' scores, masked where causal
    share = k / (k + real.exp().sum(-1))  # (B, nh, T): what k zero keys take, k / (k + Z)
    is_real = (idx != task.tokenizer.pad_id).unsqueeze(1).expand_as(share)  # (B, nh, T): not padding
    zeros = torch.zeros(k, d)
    print(f"a prefix of {k} zero keys and values, in layer 0 on the same input: max |attention output − without "
          f"prefix| = {(attn(x, prefix=(zeros, zeros)) - attn(x)).abs().max().item():.3f} (not 0); they take "
          f"{share[is_real].mean():.0%} of a real token's attention on average, {share[..., 0].mean():.0%} at the "
          f"first token. Over the whole model (every layer, positions moved by {k}): max |logits − base logits| = "
          f"{(zero(idx) - base(idx)).abs().max().item():.3f}")
    empty = torch.zeros(0, d)
    print(f"a prefix of length 0 is the base exactly: "
          f"{torch.equal(base(idx, prefixes=[(empty, empty)] * c.n_layer), base(idx))}")
    zero_k, taken = k, torch.zeros(c.n_layer, nh)  # (L, nh): the zero keys' share, per layer and head
    h = base.wte(idx) + base.wpe(torch.arange(k, k + T))  # (B, T, d): the zero-prefix model's input
    for layer, block in enumerate(base.h):
        a = block.ln_1(h)  # (B, T, d)
        Q, K = heads(block.attn.q_proj(a)), heads(block.attn.k_proj(a))  # (B, nh, T, hs)
        S = (Q @ K.transpose(-2, -1) / (d // nh) ** 0.5).masked_fill(~seen[:, k:], float("-inf"))  # (B, nh, T, T)
        share = k / (k + S.exp().sum(-1))  # (B, nh, T): k zero keys score 0 each, exp(0) = 1
        taken[layer] = torch.stack([share[:, i][is_real[:, i]].mean() for i in range(nh)])
        h = block(h, prefix=(zeros, zeros))  # (B, T, d): on to the next layer, with its zero prefix
print(f"the zero prefix's share of attention over all layers and heads: {pct(taken.min().item())} to "
      f"{pct(taken.max().item())}")
fig, ax = plt.subplots(figsize=(5, 3.5))
im = ax.imshow(taken.numpy(), vmin=0, vmax=1, cmap="viridis")
for i in range(c.n_layer):
    for j in range(nh):
        ax.text(j, i, pct(taken[i, j].item()), ha="center", va="center", fontsize=8, color="white")
ax.set_xticks(range(nh))
ax.set_yticks(range(c.n_layer))
ax.set_xlabel(label("head", "注意力头"))
ax.set_ylabel(label("layer", "层"))
fig.colorbar(im, ax=ax)
ax.set_title(label(f"Share of attention {zero_k} zero prefix keys take", "全零前缀占去的注意力"))
save_figure(fig, args.out / "zero_prefix_share.png");

# %% [markdown]
# ## 2. What trains: the MLP while training, plain prefixes after `fold()`
#
# Li & Liang found training the prefixes directly unstable and made them with an MLP
# from a small embedding E (k × d): P = W2·tanh(W1·E + b1) + b2, read as one (P_k, P_v)
# pair per layer. The MLP is a training device: `fold()` computes P = MLP(E) once and
# keeps only that. P-Tuning v2 trains the 2·L·k·d numbers directly from the start.
# Each count is compared with its closed form, and the last lines compare the sizes of
# the numbers each form's optimiser moves.

# %%
k, h = args.ks[-1], c.n_embd
mlp = minituner.prefix_tuning(base, k, encoder_hidden_size=h, init="text", init_text=phrase(k))
v2 = minituner.ptuning_v2(base, k, init="text", init_text=phrase(k))
counts = []
for name, m, closed, formula in [
    ("prefix tuning (MLP)", mlp, prefix_parameter_count(k, d, c.n_layer, h), f"k·d + (d·h + h) + (h·2Ld + 2Ld), h={h}"),
    ("P-Tuning v2 (direct)", v2, prefix_parameter_count(k, d, c.n_layer), "2·L·k·d"),
]:
    trainable, total = minituner.count_parameters(m)
    counts.append({"model": name, "k": k, "closed form": formula, "trainable": trainable,
                   "= closed form": trainable == closed, "trainable %": 100 * trainable / total})
show(markdown_table(counts))
with torch.no_grad():
    rms = lambda t: t.pow(2).mean().sqrt().item()  # noqa: E731
    kv = text_keys_values(base, torch.tensor(task.tokenizer.encode(phrase(k))))  # (L, 2, k, C): the base's own
    rand_rms = rms(minituner.ptuning_v2(base, k, seed=args.seed).prefix)
    print(f"root-mean-square size: the base's own keys and values {rms(kv):.2f}; P-Tuning v2's prefixes (text "
          f"init) {rms(v2.prefix):.2f}; a random init N(0, 1) {rand_rms:.2f}; the MLP's W1 "
          f"{rms(mlp.mlp_in.weight):.3f}, W2 {rms(mlp.mlp_out.weight):.3f}, E {rms(mlp.embedding):.2f}")

# %% [markdown]
# ## 3. Prefix tuning and P-Tuning v2 side by side, sweeping k
#
# All runs: the same base, steps and batch. Prefix tuning starts from Li & Liang's init
# from real words: the base reads a phrase of k characters and each layer's own keys and
# values of it become the starting prefix (`init="text"`; with the MLP, its last layer is
# solved so that MLP(E) equals them at step 0). P-Tuning v2 is shown with a random init
# (N(0, 1): PEFT's default for its prefix embedding, not a choice of the paper) and with
# the same text init. Full fine-tuning is the reference.
#
# The two forms get different learning rates (printed at the top): an AdamW step moves
# each number by about the learning rate, and section 2 printed how large each form's
# numbers are. Try others with `--prefix-lr` and `--v2-lr`.

# %%
every = max(2, args.steps // 8)
rows, histories = reference_rows(base, task, args.steps, args.full_lr, args.batch_size, args.seed, every)
models = {}
for k in args.ks:
    text = dict(init="text", init_text=phrase(k))
    for name, method, kwargs, lr in [("prefix (MLP), text init", minituner.prefix_tuning, text, args.prefix_lr),
                                     ("v2, random init", minituner.ptuning_v2, {}, args.v2_lr),
                                     ("v2, text init", minituner.ptuning_v2, text, args.v2_lr)]:
        run_name = f"{name}, k={k}"
        models[run_name] = method(base, k, seed=args.seed, **kwargs)
        row, histories[run_name] = run(run_name, models[run_name], task, args.steps, lr, batch_size=args.batch_size,
                                       seed=args.seed, eval_every=every)
        if models[run_name].reparameterized:
            models[run_name].fold()  # what is kept after training: 2·L·k·d numbers
        row["stored"] = minituner.count_parameters(models[run_name])[0]
        rows.append(row)
show(markdown_table(rows, ["run", "trainable", "stored", "trainable %", "lr", "train loss", "train acc", "val acc",
                           "test loss", "test acc"]))
plot_curves(histories, "classify: prefix tuning, P-Tuning v2, full fine-tuning", args.out / "prefix_tuning_curves.png");

# %% [markdown]
# ## 4. Why can a random deep prompt score below the base?
#
# As with prompt tuning (lesson 04), an untrained prefix is not neutral: its keys take
# a share of every softmax row at *every* layer, and its values are mixed into every
# position. Scored before any training, for each k and each init, beside the trained
# rows; for the random init also the test loss, at step 0 and after training, to see how
# far training brought it back towards the base's.

# %%
start = []
for k in args.ks:
    entry = {"k": k, "base": rows[0]["test acc"]}
    for init, kwargs in (("random", {}), ("text", dict(init="text", init_text=phrase(k)))):
        at0 = minituner.evaluate(minituner.ptuning_v2(base, k, seed=args.seed, **kwargs), task.test)
        trained = next(r for r in rows if r["run"] == f"v2, {init} init, k={k}")
        entry[f"v2 at step 0, {init} init"] = at0["accuracy"]
        entry[f"v2 trained, {init} init"] = trained["test acc"]
        if init == "random":
            entry["random: test loss at step 0"], entry["random: test loss trained"] = at0["loss"], trained["test loss"]
    start.append(entry)
show(markdown_table(start))
plot_tradeoff([(r["run"], r["trainable"], r["test acc"]) for r in rows[1:]],
              "Prefix tuning and P-Tuning v2: trainable parameters vs accuracy", args.out / "params_vs_accuracy.png",
              xlabel="trainable parameters while training (log)", baseline=rows[0]["test acc"]);

# %% [markdown]
# ## 5. The folded prefix at work
#
# After `fold()` the prefix model gives the logits it gave with the MLP, and `generate()`
# works unchanged: the prefix is put before the cached keys and values at every step, so
# the tokens with and without the KV cache (lesson 04) are the same.

# %%
k = args.ks[-1]
fresh = minituner.prefix_tuning(base, k, init="text", init_text=phrase(k))
with torch.no_grad():
    before = fresh(task.test.x[:8])
    print(f"fold(): max |logits with MLP − folded| = {(fresh.fold()(task.test.x[:8]) - before).abs().max().item():.1e}")
print_answers(models[f"prefix (MLP), text init, k={k}"], task, n=args.answers)
print(f"the base is bit-identical after all of it: {minituner.fingerprint(base) == fingerprint}")

# %% [markdown]
# ## Conclusions (小结)
#
# Generated from the tables above, in English and then in Chinese. The best row is the one
# the validation split prefers; its test accuracy is reported beside it.

# %%
top = best(rows[2:])
full = rows[1]
climbing = [s for s in start if s["random: test loss at step 0"] > s["random: test loss trained"] > rows[0]["test loss"]]
show(conclusions(
    f"Best prefix row on validation: {top['run']}, val acc {top['val acc']:.3f}, test acc {top['test acc']:.3f}, with "
    f"{top['trainable']:,} trainable numbers; full fine-tuning test {full['test acc']:.3f}; the base "
    f"{rows[0]['test acc']:.3f}.",
    f"A prefix of {zero_k} zero keys is not nothing: it takes {pct(taken.min().item())}–{pct(taken.max().item())} of the "
    "attention of every layer and head.",
    *[f"k={s['k']}: P-Tuning v2 starts at test acc {s['v2 at step 0, random init']:.3f} with random prefixes and "
      f"{s['v2 at step 0, text init']:.3f} with the phrase's own keys and values (base {s['base']:.3f}); after "
      f"training {s['v2 trained, random init']:.3f} and {s['v2 trained, text init']:.3f}." for s in start],
    f"From random, training lowered the test loss but left it above the base's {rows[0]['test loss']:.2f} for k in "
    f"{[s['k'] for s in climbing]}: {args.steps} steps were still climbing back." if climbing else "",
    f"Size: a random N(0, 1) prefix has root-mean-square {rand_rms:.2f}, the base's own keys and values {rms(kv):.2f}.",
    zh=f"按验证集,前缀类方法中最好的是 {top['run']}(验证集准确率 {top['val acc']:.3f},测试集 {top['test acc']:.3f},"
       f"可训练参数 {top['trainable']:,} 个);全量微调的测试集准确率为 {full['test acc']:.3f},基座模型为 "
       f"{rows[0]['test acc']:.3f}。全零的前缀并不等于“没有”:在每一层、每个注意力头里,它都占去 "
       f"{pct(taken.min().item())}–{pct(taken.max().item())} 的注意力。P-Tuning v2 用随机前缀开始时测试集准确率只有 "
       f"{min(s['v2 at step 0, random init'] for s in start):.3f}–{max(s['v2 at step 0, random init'] for s in start):.3f},"
       f"用短语自身的键和值初始化则为 {min(s['v2 at step 0, text init'] for s in start):.3f}–"
       f"{max(s['v2 at step 0, text init'] for s in start):.3f}:初始化决定了起点。",
))

# %% [markdown]
# ## Exercises · 练习
#
# The coding exercise's skeleton is `exercises/05_prefix_kv.py`; write the function bodies, then run `minituner check 05_prefix_kv` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `prepend_prefix`.** Write K′ = [P_k; K] in every head: prefix_k (nh, n, hs) before k (B, nh, T, hs). Also `prefix_params`, the closed-form count without the MLP.
# 2. **Compare.** Why does 前缀微调 train 2·L times the parameters of prompt tuning at the same n? Check the ratio with your two count functions.
# 3. **Design.** Train prefix tuning with and without the reparameterisation MLP on three seeds; is the difference beyond noise (use the verdict rule)?
#
# 编程题的骨架在 `exercises/05_prefix_kv.py`：写好函数体后运行 `minituner check 05_prefix_kv --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`prepend_prefix`。** 在每个注意力头里实现 K′ = [P_k; K]：把 prefix_k (nh, n, hs) 放在 k (B, nh, T, hs) 之前。再写 `prefix_params`，不带 MLP 时的闭式参数量。
# 2. **比较。** 相同的 n 下，前缀微调的可训练参数为什么是提示微调的 2·L 倍？用你写的两个计数函数核对这个比例。
# 3. **设计。** 在三个种子上分别训练带和不带重参数化 MLP 的前缀微调；差异是否超出噪声（用 verdict 规则判断）？
