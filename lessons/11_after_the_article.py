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
print(f"{args.steps} steps of batch {args.batch_size}, validation every {args.eval_every} steps, seed {args.seed}")
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
    print(f"{name}, validation accuracy by step: " + ", ".join(f"{step}: {acc:.3f}" for step, _, acc in hist.val))
    _, loss, acc = hist.val[-1]  # the final model's (the last evaluation is at step args.steps)
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

# %%
model = bitfit(base)
fresh = {"BitFit": (model(x) - base(x)).abs().max().item()}
print(f"fresh BitFit vs base: max |Δlogits| = {fresh['BitFit']:.1e}")
closed, n = 11 * d * L + d, counted(model)
print(f"closed form 11d·L + d = 11·{d}·{L} + {d} = {closed:,}; print_trainable_parameters: {n:,} (equal: {closed == n})")
bx, by, bm = task.train.batch(args.batch_size, torch.Generator().manual_seed(args.seed))
cross_entropy(model(bx), by, bm).backward()  # one batch's gradient, before training
grad = {kind: mean(p.grad.abs().mean().item() for n, p in model.named_parameters() if n.endswith(f"{kind}.bias"))
        for kind in ("q_proj", "k_proj")}
model.zero_grad()
eps = AdamW([torch.zeros(1, requires_grad=True)]).eps  # the ε train() uses
print(f"mean |∂loss/∂b| on one batch: b_q {grad['q_proj']:.1e}, b_k {grad['k_proj']:.1e}; AdamW's ε = {eps:g}, so a steady "
      f"b_k gradient moves by about g/(g + ε) = {grad['k_proj'] / (grad['k_proj'] + eps):.2f} of the learning rate per step")
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

# %%
model = ia3(base)
fresh["(IA)³"] = (model(x) - base(x)).abs().max().item()
print(f"fresh (IA)³ vs base (l = 1): max |Δlogits| = {fresh['(IA)³']:.1e}")
closed, n = 6 * d * L, counted(model)
print(f"closed form 6d·L = 6·{d}·{L} = {closed:,}; print_trainable_parameters: {n:,} (equal: {closed == n})")
rows["(IA)³"], hists["(IA)³"] = fit("(IA)³", model, hp["ia3"])
with torch.no_grad():
    ia3_merge = (model.merge_and_unload()(x) - model(x)).abs().max().item()
    ls = torch.cat([p.flatten() for p in model.parameters() if p.requires_grad])
print(f"after training: l in [{ls.min().item():.3f}, {ls.max().item():.3f}]; merged into W (a plain GPT) vs "
      f"unmerged: max |Δlogits| = {ia3_merge:.1e}")
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

# %%
r = hp["dora"]["r"]
model = lora_like(dora, hp["dora"])
fresh["DoRA"] = (model(x) - base(x)).abs().max().item()
print(f"fresh DoRA vs base (m = ‖W₀‖_c, B = 0): max |Δlogits| = {fresh['DoRA']:.1e}")
closed, n = (2 * r * d + d) * 2 * L, counted(model)
print(f"closed form (2rd + d)·2L = (2·{r}·{d} + {d})·2·{L} = {closed:,}; print_trainable_parameters: {n:,} "
      f"(equal: {closed == n})")
rows["DoRA"], hists["DoRA"] = fit("DoRA", model, hp["dora"])
with torch.no_grad():
    before = model(x)
    model.merge_adapter()
    dora_merge = (model(x) - before).abs().max().item()
    model.unmerge_adapter()
print(f"after training: merged (W ← W′) vs unmerged: max |Δlogits| = {dora_merge:.1e}")
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
print("correlation of log ΔM with log ΔD over the rows: " + ", ".join(f"{k} {v:+.2f}" for k, v in corr.items()))
fig, ax = plt.subplots(figsize=(6, 4.5))
for name, pts in points.items():
    ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.5, label=f"{name} (corr. of logs {corr[name]:+.2f})")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel(label("ΔD: 1 − cos(W_i, W₀_i), per row", "方向变化 ΔD"))
ax.set_ylabel(label("ΔM: |‖W_i‖ − ‖W₀_i‖|, per row", "长度变化 ΔM"))
ax.set_title(label("Length change against direction change, q and v rows", "每一行的长度变化与方向变化"))
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

# %%
print("NF4 code book q_i: " + ", ".join(f"{v:.4f}" for v in NF4.tolist()))
qrows = quantization_rows(base)
n_linear = sum(row["fp32 bytes"] for row in qrows) // 4  # weights held in the Linear matrices
rest = 4 * (count_parameters(base)[1] - n_linear)  # embeddings, biases, LayerNorms: fp32 in every form
forms = [("fp32", 32.0, "fp32 bytes"), ("NF4, fp32 scales", 4 + 32 / BLOCK, "NF4 bytes"),
         ("NF4, double-quantised scales", 4 + 8 / BLOCK + 32 / (BLOCK * SCALE_BLOCK), "NF4 DQ bytes")]
nf4_bytes = {name: sum(row[col] for row in qrows) for name, _, col in forms}
bytes_rows = [{"form": name, "bits per weight (formula)": bits, "Linear weights, bytes": nf4_bytes[name],
               "÷ fp32": nf4_bytes[name] / nf4_bytes["fp32"], "whole base, bytes": nf4_bytes[name] + rest,
               "whole ÷ fp32": (nf4_bytes[name] + rest) / (nf4_bytes["fp32"] + rest)} for name, bits, _ in forms]
print(f"{len(qrows)} Linear matrices, {n_linear:,} weights; the rest of the base (fp32 in every form): {rest:,} bytes")
show(markdown_table(bytes_rows))
kinds = summarise(qrows, "kind", ["NF4 ‖W−Ŵ‖/‖W‖", "NF4 DQ ‖W−Ŵ‖/‖W‖", "NF4 max|W−Ŵ|", "NF4 DQ max|W−Ŵ|"])
show(markdown_table(kinds))
worst = max(qrows, key=lambda row: row["NF4 DQ ‖W−Ŵ‖/‖W‖"])
best = min(qrows, key=lambda row: row["NF4 DQ ‖W−Ŵ‖/‖W‖"])
print(f"per matrix (DQ): ‖W−Ŵ‖/‖W‖ from {best['NF4 DQ ‖W−Ŵ‖/‖W‖']:.4f} ({best['matrix']}) "
      f"to {worst['NF4 DQ ‖W−Ŵ‖/‖W‖']:.4f} ({worst['matrix']})")

# %%
u = torch.cat([normalized_blocks(m.weight.detach()).reshape(-1) for m in base.modules() if isinstance(m, Linear)])
share = torch.bincount((u[:, None] - NF4).abs().argmin(dim=1), minlength=len(NF4)) / u.numel()  # (16,) per level
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.hist(u.numpy(), bins=200, density=True, color="tab:blue", alpha=0.6, label=label("w / c, every Linear weight", "w / c"))
for i, q in enumerate(NF4.tolist()):
    ax.axvline(q, color="black", lw=0.8, label=label("the 16 NF4 levels q_i", "NF4 的 16 个取值") if i == 0 else None)
ax.set_xlabel(label("weight / its block's absmax", "权重 / 所在块的最大绝对值"))
ax.set_ylabel(label("density", "密度"))
ax.set_title(label("NF4's levels over the weights they round", "NF4 的取值与权重的分布"))
ax.legend(fontsize=8)
save_figure(fig, args.out / "nf4_levels.png")
print("share of the weights at each level, q_0 … q_15: " + ", ".join(f"{v:.3f}" for v in share.tolist()))

# %%

r = hp["qlora"]["r"]
model = lora_like(qlora, hp["qlora"])
print(f"QLoraModel.base_bytes(): fp32 {model.base_bytes()['fp32']:,}, NF4 {model.base_bytes()['nf4']:,} "
      f"(the table's DQ row: {model.base_bytes()['nf4'] == nf4_bytes['NF4, double-quantised scales']})")
closed, n = r * 2 * d * 2 * L, counted(model)
print(f"closed form r·(d + d)·2L = {r}·{2 * d}·2·{L} = {closed:,}; print_trainable_parameters (each 4-bit weight "
      f"one frozen parameter): {n:,} (equal: {closed == n})")
with torch.no_grad():
    logits, logits_w = model(x), base(x)
    to_nf4 = (logits - model.merge_and_unload()(x)).abs().max().item()
    to_fp32 = (logits - logits_w).abs()
    same = (logits.argmax(-1) == logits_w.argmax(-1)).float().mean().item()
print(f"fresh QLoRA (B = 0) vs the NF4 base Ŵ as a float32 GPT: max |Δlogits| = {to_nf4:.1e}; vs the float32 "
      f"base W: mean |Δlogits| {to_fp32.mean().item():.3f}, max {to_fp32.max().item():.2f}, the same greedy next "
      f"character at {same:.1%} of {x.numel():,} positions")

# %% [markdown]
# ## 6. QLoRA, part 2: accuracy before and after LoRA (量化基座的准确率)
#
# The validation accuracy of the base in float32 and in NF4 (both forms of the scales), before
# any training; QLoRA after training; LoRA on the float32 base at the same setting (same r, α,
# targets, learning rate, steps, seed and data order). One more row separates the two effects:
# QLoRA's trained adapter moved onto the float32 base, i.e. what the adapter learned without
# the rounding of W under it.

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
print(f"setting: {rows['QLoRA']['setting']}, α = 4r, q and v; validation: {len(task.val)} rows "
      f"(one row = {1 / len(task.val):.4f})")
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

# %%
total = count_parameters(base)[1]
base_held = {"QLoRA": nf4_bytes["NF4, double-quantised scales"] + rest}
final = [{**row, "from": source[key], "trainable ÷ base %": 100 * row["trainable"] / total,
          "base bytes": base_held.get(row["method"], nf4_bytes["fp32"] + rest)}
         for key, row in zip(("lora", "bitfit", "ia3", "dora", "qlora"), rows.values())]
show(markdown_table(final, ["method", "setting", "from", "trainable", "trainable ÷ base %", "train loss", "val acc", "val loss",
                             "adapter bytes", "base bytes"]))
plot_curves(hists, f"classify, {args.steps} steps: LoRA and the methods the article does not cover", args.out / "curves.png");

# %% [markdown]
# ## Conclusions (结论)
#
# Each line is printed from the tables above.

# %%
ref = rows["LoRA"]
for name in ("BitFit", "(IA)³", "DoRA", "QLoRA"):
    row = rows[name]
    print(f"- {name} trains {row['trainable']:,} numbers ({row['trainable'] / ref['trainable']:.2f}× LoRA's "
          f"{ref['trainable']:,}), adapter {row['adapter bytes']:,} bytes; validation accuracy {row['val acc']:.3f} "
          f"vs LoRA's {ref['val acc']:.3f} ({round((row['val acc'] - ref['val acc']) * len(task.val)):+d} of "
          f"{len(task.val)} rows).")
print(f"- BitFit's biases moved most in {moved[0]['bias of']} and {moved[1]['bias of']}, least in "
      f"{moved[-1]['bias of']} ({moved[-1]['mean |b − b₀|'] / moved[0]['mean |b − b₀|']:.2f}× the most).")
print("- A fresh model against its base, max |Δlogits|: " + ", ".join(f"{k} {v:.0e}" for k, v in fresh.items())
      + f"; merged against unmerged after training: (IA)³ {ia3_merge:.0e}, DoRA {dora_merge:.0e}.")
dm = {row["method"]: (row["ΔM (mean |Δ‖W_i‖|)"], row["ΔD (mean 1 − cos)"]) for row in md}
print(f"- DoRA vs LoRA on the same matrices: ΔM {dm['DoRA'][0]:.4f} vs {dm['LoRA'][0]:.4f}, ΔD {dm['DoRA'][1]:.4f} vs "
      f"{dm['LoRA'][1]:.4f}; over the rows, log ΔM and log ΔD correlate {corr['DoRA']:+.2f} for DoRA, "
      f"{corr['LoRA']:+.2f} for LoRA.")
dq = bytes_rows[2]
print(f"- NF4 with double quantisation holds the Linear weights in {dq['Linear weights, bytes']:,} bytes instead of "
      f"{bytes_rows[0]['Linear weights, bytes']:,} ({dq['÷ fp32']:.3f}×; fp32 scales: {bytes_rows[1]['÷ fp32']:.3f}×); "
      f"the whole base {dq['whole ÷ fp32']:.3f}×, the fp32 embeddings, biases and LayerNorms now its "
      f"{rest / (dq['whole base, bytes']):.0%}.")
print(f"- Rounding costs ‖W−Ŵ‖/‖W‖ of {min(k['NF4 DQ ‖W−Ŵ‖/‖W‖'] for k in kinds):.3f}–"
      f"{max(k['NF4 DQ ‖W−Ŵ‖/‖W‖'] for k in kinds):.3f} per kind of matrix; double quantisation changes it by at most "
      f"{max(abs(k['NF4 DQ ‖W−Ŵ‖/‖W‖'] - k['NF4 ‖W−Ŵ‖/‖W‖']) for k in kinds):.1e}.")
acc = {row["model"]: row["val acc"] for row in acc_rows}
q, f, w = (acc[k] for k in ("QLoRA: NF4 base (DQ) + LoRA, trained", "fp32 LoRA, same setting, trained",
                            "the QLoRA adapter, on the fp32 base"))
print(f"- Validation accuracy before training: fp32 base {acc['fp32 base, untrained']:.3f}, NF4 base "
      f"{acc['NF4 base (DQ), untrained']:.3f}. After LoRA: {q:.3f} on the NF4 base, {f:.3f} on the fp32 base "
      f"({round((q - f) * len(task.val)):+d} rows); QLoRA's adapter moved onto the fp32 base: {w:.3f} "
      f"({round((w - f) * len(task.val)):+d} rows against fp32 LoRA). Training loss {rows['QLoRA']['train loss']:.4f} "
      f"vs {fp32_lora['train loss']:.4f}, validation loss {rows['QLoRA']['val loss']:.3f} vs {fp32_lora['val loss']:.3f}.")

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

# %% [markdown]
# ## 小结
#
# 下面每句话里的数字都由代码从上面的结果打印。

# %%
print(f"- 文章之外的四种方法里,BitFit、(IA)³、QLoRA 都早于文章,只有 DoRA 在它之后。同样的步数和数据顺序下,"
      f"验证集准确率:LoRA {ref['val acc']:.3f}," + ",".join(f"{n} {rows[n]['val acc']:.3f}"
                                                for n in ("BitFit", "(IA)³", "DoRA", "QLoRA")) + "(只有一个种子,差几行是噪声)。")
print(f"- BitFit 只训练偏置:b_k 的梯度只有舍入误差({grad['k_proj']:.1e}),但 AdamW 按 g/(g + ε) 放大,它仍然动了;"
      f"动得最多的是 {moved[0]['bias of']}。")
print(f"- DoRA 把每一行拆成长度和方向:对每一行,log ΔM 与 log ΔD 的相关系数 DoRA 为 {corr['DoRA']:+.2f},"
      f"LoRA 为 {corr['LoRA']:+.2f}。")
print(f"- NF4 的 16 个取值是正态分布的分位数,正好密集在权重集中的地方;双重量化后 Linear 权重只占 fp32 的 "
      f"{dq['÷ fp32']:.3f} 倍,QLoRA 训练后验证集准确率 {q:.3f},同样设置的 fp32 LoRA 为 {f:.3f}。")

# %% [markdown]
# ## Exercises · 练习
#
# The coding exercise's skeleton is `exercises/11_nf4.py`; write the function bodies, then run `minituner check 11_nf4` (add `--lang zh` for Chinese). Solutions are in `exercises/solutions/`: try first.
#
# 1. **Code: `nf4_roundtrip`.** Quantise a weight to NF4 in blocks of 64 (absmax scale per block, nearest code) and dequantise it.
# 2. **Count.** Write in closed form the trainable parameters of BitFit (biases only) and of IA³ (one vector per scaled activation); check them against the models' own counts.
# 3. **Predict, then measure.** QLoRA trains LoRA over a 4-bit base: how much does the base's rounding error cost in test accuracy against LoRA over the float base?
#
# 编程题的骨架在 `exercises/11_nf4.py`：写好函数体后运行 `minituner check 11_nf4 --lang zh`，检查器会指出哪个用例出错、期望值与实际值。参考答案在 `exercises/solutions/`，请先自己尝试。
#
# 1. **编程：`nf4_roundtrip`。** 把权重按每 64 个一块量化为 NF4（每块一个 absmax 缩放，取最近的码值），再反量化。
# 2. **计数。** 写出 BitFit（只训练偏置）和 IA³（每个被缩放的激活一个向量）可训练参数量的闭式公式，并与模型自己的计数核对。
# 3. **先预测再测量。** QLoRA 在 4 比特的基座上训练 LoRA：与在浮点基座上的 LoRA 相比，基座的舍入误差让测试准确率损失多少？
