# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 11 · After the article: BitFit, (IA)³, DoRA and QLoRA (文章之后的方法)
#
# The article (January 2024) covers prompt tuning, prefix tuning, P-Tuning v2 and LoRA, all
# from 2021. Four methods it does not cover are in `minituner/methods/`, each in the shape
# every method has (a config, a wrapper, save and load, `print_trainable_parameters`). Three
# of them predate the article; only DoRA came after it:
#
# - **BitFit** (Ben Zaken et al., preprint 2021, ACL 2022): train only the biases b of Y = WX + b.
# - **(IA)³** (Liu et al. 2022): learned vectors that rescale the keys, the values and the
#   MLP's hidden activations.
# - **QLoRA** (Dettmers et al., May 2023): LoRA in float32 on top of a base held in 4 bits.
# - **DoRA** (Liu et al., February 2024): LoRA split into a length and a direction per row of W.
#
# Each section writes the formula in the article's notation (Y = WX, ΔW = AB, §1 and §3.2)
# and the paper's, prints the closed-form trainable count beside `print_trainable_parameters`,
# checks the formula numerically, and trains the method on the `classify` task, printing its
# validation curve (the last section draws every method's training and validation curves in
# one figure). The QLoRA sections measure what 4 bits cost:
# bytes, the error per matrix, and the accuracy before and after LoRA. The last table puts
# all four next to LoRA.
#
# Every run starts from the same shipped base with the same seed and data order and trains
# all its steps (no early stopping), so the validation split chooses nothing here: each
# validation accuracy is the final model's. One seed: read differences of a few rows of the
# validation split as noise.
#
# Run it: `python lessons/11_after_the_article.py` (`--smoke` for the test preset).

# %% [markdown] lang="zh"
# # 11 · 文章之后：BitFit、(IA)³、DoRA 与 QLoRA
#
# 这篇文章（2024 年 1 月）讲了提示微调、前缀微调、P-Tuning v2 和 LoRA，它们都出自 2021 年。
# `minituner/methods/` 里还有四种文章没有讲到的方法，结构与其他方法完全一样（一个配置类、一个包装模型、
# 保存与加载、`print_trainable_parameters`）。其中三种其实早于这篇文章，只有 DoRA 是在它之后提出的：
#
# - **BitFit**（Ben Zaken 等，2021 年预印本，ACL 2022）：只训练 Y = WX + b 中的偏置 b。
# - **(IA)³**（Liu 等，2022）：学习几个向量，分别对键、值和 MLP 隐藏层的激活值做逐元素缩放。
# - **QLoRA**（Dettmers 等，2023 年 5 月）：基座模型以 4 比特存储，在它上面用 float32 训练 LoRA。
# - **DoRA**（Liu 等，2024 年 2 月）：把 LoRA 拆成 W 每一行的长度和方向两部分。
#
# 每一节都先用文章的记号（Y = WX，ΔW = AB，见 §1 与 §3.2）和论文的记号写出公式，把可训练参数量的闭式公式
# 打印在 `print_trainable_parameters` 的结果旁边，用数值验证公式，然后在 `classify` 任务上训练这个方法，
# 打印它的验证集曲线（最后一节把所有方法的训练曲线和验证集曲线画在同一张图里）。QLoRA 的两节测量 4 比特
# 的代价：字节数、每个矩阵的误差，以及训练 LoRA 前后的准确率。最后一张表把这四种方法和 LoRA 并排列出。
#
# 每次运行都从同一个随包发布的基座模型出发，随机种子和数据顺序都相同，并且训练完全部步数（不早停），
# 所以这里的验证集不用来挑选任何东西：每个验证集准确率都是最终模型的准确率。只用了一个随机种子：
# 验证集上几行之差，应当看作噪声。
#
# 运行方式：`python lessons/11_after_the_article.py`（加 `--smoke` 使用测试用的快速预设，
# 加 `--lang zh` 让输出变成中文）。

# %%
import tempfile
from pathlib import Path
from statistics import mean

import matplotlib.pyplot as plt
import torch

import minituner
from minituner.analysis import magnitude_direction, quantization_rows, summarise
from minituner.experiments import selected_settings
from minituner.functional import cross_entropy
from minituner.i18n import _
from minituner.lesson import options
from minituner.methods.lora import lora_layers
from minituner.methods.registry import low_rank
from minituner.methods.shortcuts import bitfit, dora, ia3, lora, qlora
from minituner.model import Linear, count_parameters
from minituner.optim import AdamW
from minituner.quant import BLOCK, NF4, SCALE_BLOCK, normalized_blocks
from minituner.report import label, markdown_table, plot_curves, save_figure, show

args = options("Lesson 11: after the article", smoke=dict(rows=48, steps=2, eval_every=2), out="runs/11_after_the_article",
               steps=80, eval_every=20, batch_size=16, seed=0, rows=None)
torch.manual_seed(args.seed)
base, task = minituner.load_base(), minituner.make_task("classify", rows=args.rows)
d, L = base.config.n_embd, base.config.n_layer
x = task.val.x[:16]  # the prompts every numerical check runs on

# The settings: the sweep's choice (minituner/assets/selected.json) where it has one for a method,
# else a default, said so in the table. DoRA and QLoRA default to LoRA's chosen r and lr (α = 4r, q and v,
# as in `minituner compare`), so that they differ from LoRA in one thing only.
chosen = selected_settings().get("classify", {})
defaults = {"bitfit": {"lr": 1e-2}, "ia3": {"lr": 1e-2},
            "dora": {"r": chosen["lora"]["r"], "lr": chosen["lora"]["lr"]},
            "qlora": {"r": chosen["lora"]["r"], "lr": chosen["lora"]["lr"]}}
hp = {"lora": chosen["lora"]} | {k: chosen.get(k, v) for k, v in defaults.items()}
source = {k: "selected.json (swept on validation)" if k in chosen else "default, not swept" for k in hp}
print(_("{steps} steps of batch {batch}, validation every {every} steps, seed {seed}").format(
    steps=args.steps, batch=args.batch_size, every=args.eval_every, seed=args.seed))
show(markdown_table([{"method": k, "setting": ", ".join(f"{n}={v:g}" for n, v in s.items()), "from": source[k]}
                      for k, s in hp.items()]))


def counted(model) -> int:
    """print_trainable_parameters' line (printed), and PEFT's count of trainable numbers behind it."""
    model.print_trainable_parameters()
    return model.get_nb_trainable_parameters()[0]


def adapter_bytes(model) -> int:
    """The size of what save_pretrained writes: adapter_model.safetensors."""
    with tempfile.TemporaryDirectory() as folder:
        return (Path(model.save_pretrained(f"{folder}/adapter")) / "adapter_model.safetensors").stat().st_size


def fit(name: str, model, setting: dict):
    """Train all args.steps steps at setting["lr"] (no patience: the model stays the last step's, which
    train() scores on validation last); print the validation curve; (table row, History)."""
    hist = minituner.train(model, task, steps=args.steps, lr=setting["lr"], batch_size=args.batch_size,
                           seed=args.seed, eval_every=args.eval_every, progress=False)
    curve = ", ".join(f"{step}: {acc:.3f}" for step, _loss, acc in hist.val)
    print(_("{name}, validation accuracy by step: {curve}").format(name=_(name), curve=curve))
    _step, loss, acc = hist.val[-1]  # the final model's (the last evaluation is at step args.steps)
    return {"method": name, "setting": ", ".join(f"{n}={v:g}" for n, v in setting.items()),
            "trainable": count_parameters(model)[0], "train loss": sum(hist.losses[-10:]) / len(hist.losses[-10:]),
            "val acc": acc, "val loss": loss,
            "adapter bytes": adapter_bytes(model)}, hist


def lora_like(build, setting: dict, **kw):
    """LoRA, DoRA or QLoRA on q_proj and v_proj at rank r with α = 4r, as `minituner compare` builds LoRA."""
    return build(base, **low_rank(setting["r"]), target_modules=("q_proj", "v_proj"), seed=args.seed, **kw)

# %% [markdown]
# ## 1. The reference: LoRA at the comparison's setting (参照: LoRA)
#
# Lesson 06's method: Y = (W + ΔW)X + b with ΔW = AB (the article's letters; in code
# ΔW = (α/r)·`lora_B`·`lora_A`), on the query and value projections. Every method below is
# read against this row.

# %% [markdown] lang="zh"
# ## 1. 参照：LoRA，采用对比实验中的设置
#
# 这是第 06 课的方法：Y = (W + ΔW)X + b，其中 ΔW = AB（这是文章的字母；代码里写作
# ΔW = (α/r)·`lora_B`·`lora_A`），作用在查询投影和值投影上。下面的每一种方法都拿来和这一行对比。

# %%
rows, hists = {}, {}
lora_model = lora_like(lora, hp["lora"])
rows["LoRA"], hists["LoRA"] = fit("LoRA", lora_model, hp["lora"])
show(markdown_table([rows["LoRA"]]))

# %% [markdown]
# ## 2. BitFit: train only the biases (偏置微调 BitFit)
#
# **Article's notation** (§1): every layer computes Y = WX + b. BitFit keeps every W frozen
# at W₀ and trains only the b's. **Paper's notation** (Ben Zaken et al. 2022, §2): per layer ℓ
# the biases b_q, b_k, b_v of the attention, b_m1 of its output projection, b_m2 and b_m3 of the
# MLP's two layers and the LayerNorms' shifts train; every W stays. Ours per block: q, k, v, o
# (d each), up (4d), down (d) and two LayerNorm shifts (d each), plus the final LayerNorm's:
#
#     trainable = 11d·L + d
#
# The forward is the base's own, so a fresh model *is* the base: the difference of their logits
# must be exactly 0. Afterwards: which biases moved most. The paper finds b_q and b_m2 (our
# q_proj and up_proj) move most. b_k is a special case: a key bias adds q·b_k to every score
# of one query alike, and softmax ignores what is added to all scores alike, so in exact
# arithmetic b_k gets no gradient; in float32 it gets rounding error (its gradient is printed
# beside b_q's, on one batch). It still moves: AdamW's step is lr · m̂ / (√v̂ + ε), so a
# steady gradient of size g moves a tensor by about lr · g / (g + ε) per step, whatever the
# scale of g (lesson 06): rounding error comparable to ε (printed) still takes a sizeable
# share of the learning rate. The second table says how far each kind of bias moved.

# %% [markdown] lang="zh"
# ## 2. BitFit：只训练偏置
#
# **文章的记号**（§1）：每一层计算 Y = WX + b。BitFit 把每个 W 冻结在 W₀，只训练各个 b。
# **论文的记号**（Ben Zaken 等 2022，§2）：在每一层 ℓ 上，训练注意力的偏置 b_q、b_k、b_v，注意力输出投影的
# 偏置 b_m1，MLP 两层的偏置 b_m2 和 b_m3，以及各个层归一化（LayerNorm）的平移参数；所有 W 都保持不变。
# 在我们的模型里，每个 block 有 q、k、v、o 的偏置（各 d 个）、up 的偏置（4d 个）、down 的偏置（d 个）
# 和两个层归一化的平移参数（各 d 个），再加上最后一个层归一化的平移参数：
#
#     可训练参数量 = 11d·L + d
#
# 前向计算和基座模型完全一样，所以新建的模型*就是*基座模型：两者 logits 之差必须恰好为 0。训练之后，
# 看哪些偏置变化最大。论文发现 b_q 和 b_m2（也就是我们的 q_proj 和 up_proj）变化最大。b_k 是个特例：
# 键的偏置给同一个查询的所有分数都加上同一个数 q·b_k，而 softmax 对所有分数同加一个数毫无反应，
# 所以在精确的算术里 b_k 根本得不到梯度；在 float32 里它得到的只是舍入误差（下面在同一批数据上把它的梯度
# 和 b_q 的梯度一起打印出来）。但它仍然会动：AdamW 的一步是 lr · m̂ / (√v̂ + ε)，所以不论 g 的量级如何，
# 一个大小为 g 的稳定梯度每步都让张量移动约 lr · g / (g + ε)（第 06 课）：与 ε 相当的舍入误差
# （ε 的值会打印出来）仍然能换来学习率中不小的一部分。第二张表列出每一类偏置移动了多远。

# %%
model = bitfit(base)
fresh = {"BitFit": (model(x) - base(x)).abs().max().item()}
print(_("fresh BitFit vs base: max |Δlogits| = {diff:.1e}").format(diff=fresh["BitFit"]))
closed, n = 11 * d * L + d, counted(model)
print(_("closed form 11d·L + d = 11·{d}·{L} + {d} = {closed:,}; print_trainable_parameters: {n:,} (equal: {equal})").format(
    d=d, L=L, closed=closed, n=n, equal=closed == n))
bx, by, bm = task.train.batch(args.batch_size, torch.Generator().manual_seed(args.seed))
cross_entropy(model(bx), by, bm).backward()  # one batch's gradient, before training
grad = {kind: mean(p.grad.abs().mean().item() for n, p in model.named_parameters() if n.endswith(f"{kind}.bias"))
        for kind in ("q_proj", "k_proj")}
model.zero_grad()
eps = AdamW([torch.zeros(1, requires_grad=True)]).eps  # the ε train() uses
print(_("mean |∂loss/∂b| on one batch: b_q {b_q:.1e}, b_k {b_k:.1e}; AdamW's ε = {eps:g}, so a steady b_k gradient "
        "moves by about g/(g + ε) = {share:.2f} of the learning rate per step").format(
    b_q=grad["q_proj"], b_k=grad["k_proj"], eps=eps, share=grad["k_proj"] / (grad["k_proj"] + eps)))
rows["BitFit"], hists["BitFit"] = fit("BitFit", model, hp["bitfit"])
b0 = dict(base.named_parameters())
moved = summarise([{"bias of": n.split(".")[-2], "mean |b − b₀|": (p - b0[n.removeprefix("base.")]).abs().mean().item()}
                   for n, p in model.named_parameters() if p.requires_grad], "bias of", ["mean |b − b₀|"])
moved.sort(key=lambda row: -row["mean |b − b₀|"])
show(markdown_table([rows["BitFit"]]))
show(markdown_table(moved))

# %% [markdown]
# ## 3. (IA)³: learned scales on keys, values and the MLP (激活缩放 (IA)³)
#
# **Paper's notation** (Liu et al. 2022, §3.3), three vectors per block, all starting at ones:
#
#     attention  softmax( Q (l_k ⊙ Kᵀ) / √d_k ) (l_v ⊙ V)        l_k, l_v ∈ R^d
#     MLP        (l_ff ⊙ γ(W₁ x)) W₂                              l_ff ∈ R^{4d}
#
# **Article's notation**: the key and value layers become Y = diag(l)(WX + b) (their output
# rescaled), the MLP's second layer Y = W diag(l) X + b (its input rescaled). With l = 1 both
# are the base. diag(l) is linear, so it **merges** into W: W ← diag(l)W, b ← l ⊙ b on the
# output side, W ← W diag(l) on the input side; the merged plain GPT must give the same logits.
#
#     trainable = (d + d + 4d)·L = 6d·L

# %% [markdown] lang="zh"
# ## 3. (IA)³：在键、值和 MLP 上学习缩放系数
#
# **论文的记号**（Liu 等 2022，§3.3）：每个 block 三个向量，初值都是全 1：
#
#     注意力     softmax( Q (l_k ⊙ Kᵀ) / √d_k ) (l_v ⊙ V)        l_k, l_v ∈ R^d
#     MLP        (l_ff ⊙ γ(W₁ x)) W₂                              l_ff ∈ R^{4d}
#
# **文章的记号**：键和值这两层变成 Y = diag(l)(WX + b)（缩放它们的输出），MLP 的第二层变成
# Y = W diag(l) X + b（缩放它的输入）。l = 1 时，两者都就是基座模型。diag(l) 是线性的，所以它可以
# **合并**进 W：在输出一侧是 W ← diag(l)W、b ← l ⊙ b，在输入一侧是 W ← W diag(l)；
# 合并之后得到的普通 GPT 必须给出相同的 logits。
#
#     可训练参数量 = (d + d + 4d)·L = 6d·L

# %%
model = ia3(base)
fresh["(IA)³"] = (model(x) - base(x)).abs().max().item()
print(_("fresh (IA)³ vs base (l = 1): max |Δlogits| = {diff:.1e}").format(diff=fresh["(IA)³"]))
closed, n = 6 * d * L, counted(model)
print(_("closed form 6d·L = 6·{d}·{L} = {closed:,}; print_trainable_parameters: {n:,} (equal: {equal})").format(
    d=d, L=L, closed=closed, n=n, equal=closed == n))
rows["(IA)³"], hists["(IA)³"] = fit("(IA)³", model, hp["ia3"])
with torch.no_grad():
    ia3_merge = (model.merge_and_unload()(x) - model(x)).abs().max().item()
    ls = torch.cat([p.flatten() for p in model.parameters() if p.requires_grad])
print(_("after training: l in [{lo:.3f}, {hi:.3f}]; merged into W (a plain GPT) vs unmerged: max |Δlogits| = "
        "{diff:.1e}").format(lo=ls.min().item(), hi=ls.max().item(), diff=ia3_merge))
show(markdown_table([rows["(IA)³"]]))

# %% [markdown]
# ## 4. DoRA: a length and a direction per row (权重分解 DoRA)
#
# **Paper's notation** (Liu et al. 2024, Eq. 5):
#
#     W′ = m · (W₀ + BA) / ‖W₀ + BA‖_c
#
# with B = 0 and A random as in LoRA, and a trainable magnitude m, one per weight vector. The
# paper's W is d×k with one norm per column; in our (out, in) layout that is one norm per
# output row, so m has `out` entries. **Article's notation** (§3.2):
# Y = diag(m / ‖W + ΔW‖_c)(W + ΔW)X + b with ΔW = AB: ΔW turns each row, m sets its length.
#
# Checks: with m = ‖W₀‖_c and B = 0, W′ = W₀ and the model is the base (up to one float
# rounding of the norm and the division); after training, merging W ← W′ gives the same logits.
#
#     trainable = (r·(d + d) + d) per targeted matrix = (2rd + d)·2L on q and v
#
# The paper's analysis splits any change of W into ΔM, the mean change of the rows' lengths,
# and ΔD, the mean 1 − cos between each row and its old self (`minituner.analysis.magnitude_direction`);
# the second table below compares DoRA's with LoRA's, averaged over the adapted matrices. The
# figure shows every row of every adapted matrix: its change of length against its change of
# direction, for LoRA and for DoRA (the paper's Figure 2 draws the same two quantities per
# layer and training step; it finds LoRA's rise together, DoRA's not).

# %% [markdown] lang="zh"
# ## 4. DoRA：每一行拆成长度和方向
#
# **论文的记号**（Liu 等 2024，式 5）：
#
#     W′ = m · (W₀ + BA) / ‖W₀ + BA‖_c
#
# 和 LoRA 一样，B = 0、A 随机初始化；此外还有一个可训练的幅度 m，每个权重向量一个。论文里的 W 是 d×k 的，
# 每一列一个范数；换成我们 (out, in) 的布局，就是每个输出行一个范数，所以 m 有 `out` 个元素。
# **文章的记号**（§3.2）：Y = diag(m / ‖W + ΔW‖_c)(W + ΔW)X + b，其中 ΔW = AB：ΔW 负责转动每一行的方向，
# m 负责设定它的长度。
#
# 检验：当 m = ‖W₀‖_c 且 B = 0 时，W′ = W₀，模型就是基座模型（只差范数计算和除法带来的一次浮点舍入）；
# 训练之后，合并 W ← W′ 必须给出相同的 logits。
#
#     可训练参数量 = 每个目标矩阵 (r·(d + d) + d) = 作用于 q 和 v 时共 (2rd + d)·2L
#
# 论文的分析把 W 的任何变化拆成 ΔM 和 ΔD：ΔM 是各行长度变化的平均，ΔD 是每一行与原来的自己之间
# 1 − cos 的平均（`minituner.analysis.magnitude_direction`）；下面第二张表在所有被适配的矩阵上取平均，
# 比较 DoRA 和 LoRA 的这两个量。图中画出每个被适配矩阵的每一行：LoRA 和 DoRA 各自的长度变化与方向变化
# （论文的图 2 按层、按训练步画的是同样的两个量；它发现 LoRA 的两者一起增大，DoRA 则不然）。

# %%
r = hp["dora"]["r"]
model = lora_like(dora, hp["dora"])
fresh["DoRA"] = (model(x) - base(x)).abs().max().item()
print(_("fresh DoRA vs base (m = ‖W₀‖_c, B = 0): max |Δlogits| = {diff:.1e}").format(diff=fresh["DoRA"]))
closed, n = (2 * r * d + d) * 2 * L, counted(model)
print(_("closed form (2rd + d)·2L = (2·{r}·{d} + {d})·2·{L} = {closed:,}; print_trainable_parameters: {n:,} "
        "(equal: {equal})").format(r=r, d=d, L=L, closed=closed, n=n, equal=closed == n))
rows["DoRA"], hists["DoRA"] = fit("DoRA", model, hp["dora"])
with torch.no_grad():
    before = model(x)
    model.merge_adapter()
    dora_merge = (model(x) - before).abs().max().item()
    model.unmerge_adapter()
print(_("after training: merged (W ← W′) vs unmerged: max |Δlogits| = {diff:.1e}").format(diff=dora_merge))
with torch.no_grad():
    split = {name: [magnitude_direction(layer.weight, w(layer)) for layer in lora_layers(m.base).values()]
             for name, m, w in (("LoRA", lora_model, lambda lay: lay.weight + lay.get_delta_weight("default")),
                                ("DoRA", model, lambda lay: lay.dora_weight("default")))}
md = [{"method": name, "ΔM (mean |Δ‖W_i‖|)": sum(p[0] for p in v) / len(v), "ΔD (mean 1 − cos)": sum(p[1] for p in v) / len(v)}
      for name, v in split.items()]
show(markdown_table([rows["DoRA"]]))
show(markdown_table(md))

# %%
with torch.no_grad():  # one (ΔD, ΔM) point per row of every adapted matrix
    points = {name: torch.tensor([magnitude_direction(layer.weight[i:i + 1], w(layer)[i:i + 1])[::-1]
                                  for layer in lora_layers(m.base).values() for i in range(layer.out_features)])
              for name, m, w in (("LoRA", lora_model, lambda lay: lay.weight + lay.get_delta_weight("default")),
                                 ("DoRA", model, lambda lay: lay.dora_weight("default")))}  # (rows, 2)
corr = {name: torch.corrcoef(pts.clamp_min(1e-12).log().T)[0, 1].item() for name, pts in points.items()}
print(_("correlation of log ΔM with log ΔD over the rows: {values}").format(
    values=", ".join(f"{k} {v:+.2f}" for k, v in corr.items())))
fig, ax = plt.subplots(figsize=(6, 4.5))
for name, pts in points.items():
    ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.5, label=label("{name} (corr. of logs {corr:+.2f})").format(
        name=name, corr=corr[name]))
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel(label("ΔD: 1 − cos(W_i, W₀_i), per row"))
ax.set_ylabel(label("ΔM: |‖W_i‖ − ‖W₀_i‖|, per row"))
ax.set_title(label("Length change against direction change, q and v rows"))
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
save_figure(fig, args.out / "dora_magnitude_direction.png");

# %% [markdown]
# ## 5. QLoRA, part 1: a 4-bit base, its bytes and its error (4 比特量化: 字节与误差)
#
# **Paper's notation** (Dettmers et al. 2023, Eq. 5–6), one layer:
#
#     Y = X · doubleDequant(c₁^FP32, c₂^k-bit, W^NF4) + X L₁ L₂
#
# W^NF4 holds each weight as one of 16 NormalFloat values q_i (quantiles of N(0, 1) scaled to
# [−1, 1], with an exact 0), in blocks of 64 weights with one absmax scale c per block:
# code = argmin_i |w/c − q_i|, ŵ = q[code]·c. **Double quantisation** stores the scales c
# themselves in 8 bits (centred by their mean, absmax in blocks of 256, one fp32 c₂ each).
# L₁L₂ is LoRA's AᵀBᵀ, trained in float32 (the paper computes in BF16). **Article's notation**
# (§3.2): Y = (Ŵ + ΔW)X + b, ΔW = AB as in LoRA, where Ŵ is W rounded to 16 levels per block
# and rebuilt from the codes in every forward pass. Every Linear of the base (q, k, v, o, up,
# down) is quantised; the embeddings (the tied head), biases and LayerNorms stay float32.
#
# First the code book and the bytes: bits per weight from the formula, bytes measured from the
# tensors that hold them (`minituner.analysis.quantization_rows`). Then the error per kind of
# matrix, ‖W − Ŵ‖_F/‖W‖_F and max |W − Ŵ|, with fp32 scales and with double-quantised ones.
# Then the usual checks: the trainable count, and a fresh QLoRA (B = 0) is the NF4 base, not
# the float32 one. The figure puts NF4's 16 levels over the histogram of what they round:
# every weight of the base's Linear matrices divided by its block's absmax, w/c in [−1, 1].
# NF4's levels are quantiles of a normal distribution, so they crowd where the weights do.

# %% [markdown] lang="zh"
# ## 5. QLoRA（上）：4 比特的基座模型，它的字节数与误差
#
# **论文的记号**（Dettmers 等 2023，式 5–6），一层：
#
#     Y = X · doubleDequant(c₁^FP32, c₂^k-bit, W^NF4) + X L₁ L₂
#
# W^NF4 把每个权重存成 16 个 NormalFloat 取值 q_i 中的一个（这些取值是 N(0, 1) 的分位数，缩放到 [−1, 1]，
# 并且恰好包含 0），每 64 个权重为一块，每块一个 absmax 缩放系数 c：code = argmin_i |w/c − q_i|，
# ŵ = q[code]·c。**双重量化**把缩放系数 c 本身也用 8 比特存储（先减去它们的均值，再每 256 个一块做 absmax
# 量化，每块一个 fp32 的 c₂）。L₁L₂ 就是 LoRA 的 AᵀBᵀ，用 float32 训练（论文用 BF16 计算）。
# **文章的记号**（§3.2）：Y = (Ŵ + ΔW)X + b，ΔW = AB 与 LoRA 相同，其中 Ŵ 是 W 在每一块内舍入到
# 16 个取值之一的结果，每次前向计算都从码值重建。基座模型的每个 Linear（q、k、v、o、up、down）都被量化；
# 嵌入（与输出头共享）、偏置和层归一化参数保持 float32。
#
# 先看码本和字节数：每个权重的位数按公式计算，字节数则从存放它们的张量实测
# （`minituner.analysis.quantization_rows`）。再看每一类矩阵的误差 ‖W − Ŵ‖_F/‖W‖_F 和 max |W − Ŵ|，
# 分别在缩放系数用 fp32 和用双重量化两种情况下计算。然后是常规检验：可训练参数量；新建的 QLoRA（B = 0）
# 等于 NF4 基座模型，而不是 float32 的那个。图中把 NF4 的 16 个取值叠在它们所舍入的数值的直方图上：
# 基座模型各 Linear 矩阵中的每个权重除以所在块的 absmax，即 [−1, 1] 中的 w/c。NF4 的取值是正态分布的分位数，
# 所以权重密集的地方，取值也密集。

# %%
print(_("NF4 code book q_i: {levels}").format(levels=", ".join(f"{v:.4f}" for v in NF4.tolist())))
qrows = quantization_rows(base)
n_linear = sum(row["fp32 bytes"] for row in qrows) // 4  # weights held in the Linear matrices
rest = 4 * (count_parameters(base)[1] - n_linear)  # embeddings, biases, LayerNorms: fp32 in every form
forms = [("fp32", 32.0, "fp32 bytes"), ("NF4, fp32 scales", 4 + 32 / BLOCK, "NF4 bytes"),
         ("NF4, double-quantised scales", 4 + 8 / BLOCK + 32 / (BLOCK * SCALE_BLOCK), "NF4 DQ bytes")]
nf4_bytes = {name: sum(row[col] for row in qrows) for name, _, col in forms}
bytes_rows = [{"form": name, "bits per weight (formula)": bits, "Linear weights, bytes": nf4_bytes[name],
               "÷ fp32": nf4_bytes[name] / nf4_bytes["fp32"], "whole base, bytes": nf4_bytes[name] + rest,
               "whole ÷ fp32": (nf4_bytes[name] + rest) / (nf4_bytes["fp32"] + rest)} for name, bits, _ in forms]
print(_("{n} Linear matrices, {weights:,} weights; the rest of the base (fp32 in every form): {rest:,} bytes").format(
    n=len(qrows), weights=n_linear, rest=rest))
show(markdown_table(bytes_rows))
kinds = summarise(qrows, "kind", ["NF4 ‖W−Ŵ‖/‖W‖", "NF4 DQ ‖W−Ŵ‖/‖W‖", "NF4 max|W−Ŵ|", "NF4 DQ max|W−Ŵ|"])
show(markdown_table(kinds))
worst = max(qrows, key=lambda row: row["NF4 DQ ‖W−Ŵ‖/‖W‖"])
best = min(qrows, key=lambda row: row["NF4 DQ ‖W−Ŵ‖/‖W‖"])
print(_("per matrix (DQ): ‖W−Ŵ‖/‖W‖ from {lo:.4f} ({lo_matrix}) to {hi:.4f} ({hi_matrix})").format(
    lo=best["NF4 DQ ‖W−Ŵ‖/‖W‖"], lo_matrix=best["matrix"], hi=worst["NF4 DQ ‖W−Ŵ‖/‖W‖"], hi_matrix=worst["matrix"]))

# %%
u = torch.cat([normalized_blocks(m.weight.detach()).reshape(-1) for m in base.modules() if isinstance(m, Linear)])
share = torch.bincount((u[:, None] - NF4).abs().argmin(dim=1), minlength=len(NF4)) / u.numel()  # (16,) per level
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.hist(u.numpy(), bins=200, density=True, color="tab:blue", alpha=0.6, label=label("w / c, every Linear weight"))
for i, q in enumerate(NF4.tolist()):
    ax.axvline(q, color="black", lw=0.8, label=label("the 16 NF4 levels q_i") if i == 0 else None)
ax.set_xlabel(label("weight / its block's absmax"))
ax.set_ylabel(label("density"))
ax.set_title(label("NF4's levels over the weights they round"))
ax.legend(fontsize=8)
save_figure(fig, args.out / "nf4_levels.png")
print(_("share of the weights at each level, q_0 … q_15: {shares}").format(
    shares=", ".join(f"{v:.3f}" for v in share.tolist())))

# %%

r = hp["qlora"]["r"]
model = lora_like(qlora, hp["qlora"])
print(_("QLoraModel.base_bytes(): fp32 {fp32:,}, NF4 {nf4:,} (the table's DQ row: {same})").format(
    fp32=model.base_bytes()["fp32"], nf4=model.base_bytes()["nf4"],
    same=model.base_bytes()["nf4"] == nf4_bytes["NF4, double-quantised scales"]))
closed, n = r * 2 * d * 2 * L, counted(model)
print(_("closed form r·(d + d)·2L = {r}·{d2}·2·{L} = {closed:,}; print_trainable_parameters (each 4-bit weight one "
        "frozen parameter): {n:,} (equal: {equal})").format(r=r, d2=2 * d, L=L, closed=closed, n=n, equal=closed == n))
with torch.no_grad():
    logits, logits_w = model(x), base(x)
    to_nf4 = (logits - model.merge_and_unload()(x)).abs().max().item()
    to_fp32 = (logits - logits_w).abs()
    same = (logits.argmax(-1) == logits_w.argmax(-1)).float().mean().item()
print(_("fresh QLoRA (B = 0) vs the NF4 base Ŵ as a float32 GPT: max |Δlogits| = {nf4:.1e}; vs the float32 base W: "
        "mean |Δlogits| {mean:.3f}, max {max:.2f}, the same greedy next character at {same:.1%} of {n:,} "
        "positions").format(nf4=to_nf4, mean=to_fp32.mean().item(), max=to_fp32.max().item(), same=same, n=x.numel()))

# %% [markdown]
# ## 6. QLoRA, part 2: accuracy before and after LoRA (量化基座的准确率)
#
# The validation accuracy of the base in float32 and in NF4 (both forms of the scales), before
# any training; QLoRA after training; LoRA on the float32 base at the same setting (same r, α,
# targets, learning rate, steps, seed and data order). One more row separates the two effects:
# QLoRA's trained adapter moved onto the float32 base, i.e. what the adapter learned without
# the rounding of W under it.

# %% [markdown] lang="zh"
# ## 6. QLoRA（下）：训练 LoRA 前后的准确率
#
# 先看基座模型在 float32 和 NF4（缩放系数的两种形式）下、未经任何训练时的验证集准确率；然后是训练后的
# QLoRA；以及在 float32 基座模型上以相同设置（相同的 r、α、目标模块、学习率、步数、随机种子和数据顺序）
# 训练的 LoRA。再加一行，把两种影响分开：把 QLoRA 训练好的适配器搬到 float32 基座模型上，
# 也就是去掉底下 W 的舍入之后，这个适配器本身学到了多少。

# %%
rows["QLoRA"], hists["QLoRA"] = fit("QLoRA", model, hp["qlora"])
if hp["qlora"] == hp["lora"]:
    fp32_lora = rows["LoRA"]
else:  # selected.json chose differently for QLoRA: train fp32 LoRA at QLoRA's setting too
    fp32_lora, hists["LoRA at QLoRA's setting"] = fit("LoRA at QLoRA's setting", lora_like(lora, hp["qlora"]), hp["qlora"])
on_fp32 = lora_like(lora, hp["qlora"])  # the same adapter tensors, on the float32 W
on_fp32.load_adapter_state_dict(model.adapter_state_dict())


def val(m) -> dict:
    ev = minituner.evaluate(m, task.val)
    return {"val acc": ev["accuracy"], "val loss": ev["loss"]}


acc_rows = [{"model": "fp32 base, untrained", **val(base)},
            {"model": "NF4 base (fp32 scales), untrained", **val(lora_like(qlora, hp["qlora"], bnb_4bit_use_double_quant=False))},
            {"model": "NF4 base (DQ), untrained", **val(lora_like(qlora, hp["qlora"]))},
            {"model": "QLoRA: NF4 base (DQ) + LoRA, trained", "val acc": rows["QLoRA"]["val acc"], "val loss": rows["QLoRA"]["val loss"]},
            {"model": "fp32 LoRA, same setting, trained", "val acc": fp32_lora["val acc"], "val loss": fp32_lora["val loss"]},
            {"model": "the QLoRA adapter, on the fp32 base", **val(on_fp32)}]
print(_("setting: {setting}, α = 4r, q and v; validation: {n} rows (one row = {row:.4f})").format(
    setting=rows["QLoRA"]["setting"], n=len(task.val), row=1 / len(task.val)))
show(markdown_table(acc_rows))

# %% [markdown]
# ## 7. All four next to LoRA (对比)
#
# One row per method, each at its setting above: what it trains ("trainable ÷ base %" divides
# by the base's parameters; PEFT's `trainable%`, printed by `print_trainable_parameters` above,
# divides by all parameters of the adapted model, adapter included, so it is a little smaller),
# its training loss (the mean of the last 10 steps), the final model's validation accuracy and loss, the bytes `save_pretrained` writes (the adapter alone), and the bytes of
# the base it needs beside it (float32, or NF4 with double quantisation for QLoRA). The figure:
# left, each run's training loss (a running mean over 10 steps); right, its validation loss at
# each evaluation.

# %% [markdown] lang="zh"
# ## 7. 四种方法与 LoRA 并排对比
#
# 每种方法一行，各自采用上面的设置：它训练多少参数（“可训练参数 ÷ 基座模型 %”除以的是基座模型的参数量；
# 上面 `print_trainable_parameters` 打印的 PEFT 的 `trainable%` 除以的是适配后模型的全部参数，
# 连适配器也算在内，所以略小一些）、训练损失（最后 10 步的平均）、最终模型的验证集准确率和损失、
# `save_pretrained` 写出的字节数（只有适配器），以及使用时还需要放在旁边的基座模型的字节数（float32；
# QLoRA 则是双重量化的 NF4）。图：左边是每次运行的训练损失（10 步滑动平均），右边是每次评估时的验证集损失。

# %%
total = count_parameters(base)[1]
base_held = {"QLoRA": nf4_bytes["NF4, double-quantised scales"] + rest}
final = [{**row, "from": source[key], "trainable ÷ base %": 100 * row["trainable"] / total,
          "base bytes": base_held.get(row["method"], nf4_bytes["fp32"] + rest)}
         for key, row in zip(("lora", "bitfit", "ia3", "dora", "qlora"), rows.values())]
show(markdown_table(final, ["method", "setting", "from", "trainable", "trainable ÷ base %", "train loss", "val acc", "val loss",
                             "adapter bytes", "base bytes"]))
plot_curves(hists, _("classify, {steps} steps: LoRA and the methods the article does not cover").format(steps=args.steps),
            args.out / "curves.png");

# %% [markdown]
# ## Conclusions (结论)
#
# Each line is printed from the tables above.

# %% [markdown] lang="zh"
# ## 小结
#
# 下面每一行都由代码从上面的表格打印出来。

# %%
ref = rows["LoRA"]
for name in ("BitFit", "(IA)³", "DoRA", "QLoRA"):
    row = rows[name]
    print("- " + _("{name} trains {n:,} numbers ({ratio:.2f}× LoRA's {lora:,}), adapter {size:,} bytes; validation "
                   "accuracy {acc:.3f} vs LoRA's {lora_acc:.3f} ({rows:+d} of {total} rows).").format(
        name=name, n=row["trainable"], ratio=row["trainable"] / ref["trainable"], lora=ref["trainable"],
        size=row["adapter bytes"], acc=row["val acc"], lora_acc=ref["val acc"],
        rows=round((row["val acc"] - ref["val acc"]) * len(task.val)), total=len(task.val)))
print("- " + _("BitFit's biases moved most in {first} and {second}, least in {last} ({ratio:.2f}× the most).").format(
    first=moved[0]["bias of"], second=moved[1]["bias of"], last=moved[-1]["bias of"],
    ratio=moved[-1]["mean |b − b₀|"] / moved[0]["mean |b − b₀|"]))
print("- " + _("A fresh model against its base, max |Δlogits|: {fresh}; merged against unmerged after training: "
               "(IA)³ {ia3:.0e}, DoRA {dora:.0e}.").format(
    fresh=", ".join(f"{k} {v:.0e}" for k, v in fresh.items()), ia3=ia3_merge, dora=dora_merge))
dm = {row["method"]: (row["ΔM (mean |Δ‖W_i‖|)"], row["ΔD (mean 1 − cos)"]) for row in md}
print("- " + _("DoRA vs LoRA on the same matrices: ΔM {dora_m:.4f} vs {lora_m:.4f}, ΔD {dora_d:.4f} vs {lora_d:.4f}; "
               "over the rows, log ΔM and log ΔD correlate {dora_corr:+.2f} for DoRA, {lora_corr:+.2f} for LoRA.").format(
    dora_m=dm["DoRA"][0], lora_m=dm["LoRA"][0], dora_d=dm["DoRA"][1], lora_d=dm["LoRA"][1], dora_corr=corr["DoRA"],
    lora_corr=corr["LoRA"]))
dq = bytes_rows[2]
print("- " + _("NF4 with double quantisation holds the Linear weights in {dq:,} bytes instead of {fp32:,} "
               "({ratio:.3f}×; fp32 scales: {ratio_fp32_scales:.3f}×); the whole base {whole:.3f}×, the fp32 "
               "embeddings, biases and LayerNorms now its {rest:.0%}.").format(
    dq=dq["Linear weights, bytes"], fp32=bytes_rows[0]["Linear weights, bytes"], ratio=dq["÷ fp32"],
    ratio_fp32_scales=bytes_rows[1]["÷ fp32"], whole=dq["whole ÷ fp32"], rest=rest / (dq["whole base, bytes"])))
print("- " + _("Rounding costs ‖W−Ŵ‖/‖W‖ of {lo:.3f}–{hi:.3f} per kind of matrix; double quantisation changes it by "
               "at most {change:.1e}.").format(
    lo=min(k["NF4 DQ ‖W−Ŵ‖/‖W‖"] for k in kinds), hi=max(k["NF4 DQ ‖W−Ŵ‖/‖W‖"] for k in kinds),
    change=max(abs(k["NF4 DQ ‖W−Ŵ‖/‖W‖"] - k["NF4 ‖W−Ŵ‖/‖W‖"]) for k in kinds)))
acc = {row["model"]: row["val acc"] for row in acc_rows}
q, f, w = (acc[k] for k in ("QLoRA: NF4 base (DQ) + LoRA, trained", "fp32 LoRA, same setting, trained",
                            "the QLoRA adapter, on the fp32 base"))
print("- " + _("Validation accuracy before training: fp32 base {fp32:.3f}, NF4 base {nf4:.3f}. After LoRA: {q:.3f} on "
               "the NF4 base, {f:.3f} on the fp32 base ({q_rows:+d} rows); QLoRA's adapter moved onto the fp32 base: "
               "{w:.3f} ({w_rows:+d} rows against fp32 LoRA). Training loss {q_train:.4f} vs {f_train:.4f}, validation "
               "loss {q_val:.3f} vs {f_val:.3f}.").format(
    fp32=acc["fp32 base, untrained"], nf4=acc["NF4 base (DQ), untrained"], q=q, f=f,
    q_rows=round((q - f) * len(task.val)), w=w, w_rows=round((w - f) * len(task.val)),
    q_train=rows["QLoRA"]["train loss"], f_train=fp32_lora["train loss"], q_val=rows["QLoRA"]["val loss"],
    f_val=fp32_lora["val loss"]))

# %% [markdown]
# How to read it:
#
# - **Vectors or matrices.** BitFit and (IA)³ train vectors only (biases; scales), so their
#   adapters are the smallest in the table; LoRA and DoRA train matrices. Read each accuracy
#   difference as the number of validation rows it amounts to (printed above): with one seed,
#   a few rows is noise.
# - **DoRA** is LoRA plus one length per row of W. ΔM and ΔD say whether it used that freedom
#   to change lengths and directions differently from LoRA; the paper reports that LoRA's
#   changes of length and direction rise together while DoRA's (and full fine-tuning's) do not.
# - **QLoRA** mixes two effects in one row: the rounding of W (the untrained NF4 rows against the
#   fp32 base) and training LoRA on top of a rounded W (QLoRA against fp32 LoRA). QLoRA's adapter
#   moved onto the fp32 base separates them: near fp32 LoRA, the adapter is as good and the loss
#   is the rounding under it; near QLoRA, the adapter itself learned less. The training loss
#   tells where the loss shows: the validation split asks facts the training split never shows,
#   which only the base's weights can supply, so a QLoRA run that fits the training split like
#   LoRA but scores lower on validation has lost what the rounded W recalls. The paper's finding
#   that NF4 with LoRA matches 16-bit fine-tuning was measured with LoRA on every Linear layer,
#   on RoBERTa-large (GLUE) and T5 from 80M parameters up (Super-NaturalInstructions, its
#   Table 3) and on LLaMA 7B–65B (MMLU, its Table 4); here LoRA adapts q and v of a far smaller
#   model.

# %% [markdown] lang="zh"
# 怎样读这些结果：
#
# - **向量还是矩阵。** BitFit 和 (IA)³ 只训练向量（偏置；缩放系数），所以它们的适配器在表中最小；
#   LoRA 和 DoRA 训练的是矩阵。把每个准确率之差换算成它相当于验证集上的几行来读（上面已经打印）：
#   只有一个随机种子时，差几行就是噪声。
# - **DoRA** 就是 LoRA 再给 W 的每一行加一个长度。ΔM 和 ΔD 说明它有没有利用这份自由，以不同于 LoRA 的
#   方式去改变长度和方向；论文报告说，LoRA 对长度和方向的改变总是一起增大，而 DoRA（以及全量微调）不是这样。
# - **QLoRA** 的一行里混着两种影响：W 的舍入（未训练的两行 NF4 与 fp32 基座模型相比），以及在舍入后的 W
#   上训练 LoRA（QLoRA 与 fp32 LoRA 相比）。把 QLoRA 的适配器搬到 fp32 基座模型上，就能把两者分开：
#   结果接近 fp32 LoRA，说明适配器学得一样好，损失来自它底下的舍入；结果接近 QLoRA，说明适配器本身就学得少了。
#   训练损失则说明损失出现在哪里：验证集问的是训练集从未展示过的事实，这些只有基座模型的权重才能提供；
#   所以，如果一次 QLoRA 运行在训练集上拟合得和 LoRA 一样好，在验证集上却得分更低，它丢掉的就是舍入后的 W
#   原本记得的东西。论文的结论“NF4 加 LoRA 能追平 16 位微调”，是在每个 Linear 层上都加 LoRA 时测得的，
#   模型是 RoBERTa-large（GLUE）、从 80M 参数起的 T5（Super-NaturalInstructions，论文表 3）以及
#   LLaMA 7B–65B（MMLU，论文表 4）；而这里的 LoRA 只适配一个小得多的模型的 q 和 v。

# %% [markdown]
# ## Exercises
#
# The coding exercise's skeleton is `exercises/11_nf4.py`; write the function bodies, then run `minituner check 11_nf4` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `nf4_roundtrip`.** Quantise a weight to NF4 in blocks of 64 (absmax scale per block, nearest code) and dequantise it.
# 2. **Count.** Write in closed form the trainable parameters of BitFit (biases only) and of IA³ (one vector per scaled activation); check them against the models' own counts.
# 3. **Predict, then measure.** QLoRA trains LoRA over a 4-bit base: how much does the base's rounding error cost in test accuracy against LoRA over the float base?

# %% [markdown] lang="zh"
# ## 练习
#
# 编程题的骨架在 `exercises/11_nf4.py`：写好函数体后运行 `minituner check 11_nf4 --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`nf4_roundtrip`。** 把权重按每 64 个一块量化为 NF4（每块一个 absmax 缩放系数，取最近的码值），再反量化回来。
# 2. **计数。** 写出 BitFit（只训练偏置）和 (IA)³（每个被缩放的激活值一个向量）可训练参数量的闭式公式，并与模型自己的计数核对。
# 3. **先预测，再测量。** QLoRA 在 4 比特的基座模型上训练 LoRA：与在浮点基座模型上训练的 LoRA 相比，基座模型的舍入误差会让测试集准确率损失多少？
