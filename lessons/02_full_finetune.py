# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 02 · Full fine-tuning, step by step (全量微调, article §3.1 and §4)
#
# Full fine-tuning (§3.1) trains *every* layer and parameter of a pretrained model on
# task data, with a small learning rate. The article lays fine-tuning out as eight steps
# (§4); this lesson takes them in order on the mini-world's `classify` task:
#
# 1. choose the pretrained model (选择预训练模型) · 2. prepare the data (准备数据) ·
# 3. adjust the input (调整输入) · 4. define the loss (定义损失函数) · 5. freeze (冻结; nothing, here) ·
# 6. optimiser and learning rate (优化器与学习率) · 7. train (微调训练) · 8. evaluate (评估).
#
# Beside it runs the same training from a randomly initialised GPT of the same shape:
# the difference is what pretraining buys. Then the article's own example of step 3,
# "what was recognised as a cat is now to be called a dog": we teach the swap and
# measure what the model really learned.
#
# Run it: `python lessons/02_full_finetune.py` (`--smoke` for the quick test preset).

# %%
import torch

import minituner
from minituner.checkpoint import base_metadata
from minituner.data import encode_examples
from minituner.lesson import options, run
from minituner.optim import AdamW
from minituner.report import markdown_table, parameter_table, plot_curves

args = options("Lesson 02: full fine-tuning", smoke=dict(steps=3, relabel_steps=3), out="runs/02_full_finetune",
               steps=80, relabel_steps=40, batch_size=16, lr=5e-4, seed=0)
torch.manual_seed(args.seed)
print(f"{args.steps} steps, batch {args.batch_size}, lr {args.lr}; relabelling {args.relabel_steps} steps")

# %% [markdown]
# ## Step 1: choose the pretrained model (选择预训练模型)
#
# The shipped base (lesson 01) has read every fact of the mini-world, both ways, but
# never a task. Its metadata records how it was pretrained.

# %%
base, meta = minituner.load_base(), base_metadata()
recipe = meta["recipe"]
print(f"pretrained {recipe['steps']:,} steps at lr {recipe['lr']}, batch {recipe['batch_size']}; "
      f"held-out corpus loss {meta['held_out_loss']}, facts answered both ways {meta['fact_accuracy']:.1%}")
minituner.print_trainable_parameters(base);

# %% [markdown]
# ## Step 2: prepare the data (准备数据)
#
# `classify` describes an animal by one or two of its facts and asks for its name. The
# training split (训练集) shows some kinds of fact of every animal; the validation split
# (验证集) and the test split (测试集) ask the *other* kinds, each of its own animals
# (printed below): answering them needs what pretraining taught.

# %%
task = minituner.make_task("classify")
world = task.world
train_prompts = {p for p, _ in task.train.examples}
print(f"{len(task.train)} training rows, {len(task.val)} validation rows, {len(task.test)} test rows; "
      f"no prompt in both training and test: {not train_prompts & {p for p, _ in task.test.examples}}")
print(f"the cat: training shows its {' and '.join(world.seen['cat'])}; the "
      f"{'validation' if 'cat' in world.val_animals else 'test'} split asks its {', '.join(world.held_out('cat'))} "
      f"({len(world.val_animals)} validation animals, {len(world.animals) - len(world.val_animals)} test animals)")
for split in (task.train, task.test):
    for p, a in (split.examples[0], split.examples[2]):  # one fact, then two
        print(f"   {split.name}: {p!r} -> {a!r}")

# %% [markdown]
# ## Step 3: adjust the input (调整输入)
#
# Each example becomes one row, prompt then answer, phrased the way the corpus speaks
# ("…, so it is the" → " cat."). The model reads x and must predict y, the same row
# shifted by one character. The loss counts only the answer characters (the `^` below):
# the prompt is given, not learned.

# %%
tok, s = task.tokenizer, task.train
n = int((s.x[0] != tok.pad_id).sum())
print(f"   x:    {tok.decode(s.x[0, :n])!r}")
print(f"   y:    {tok.decode(s.y[0, :n])!r}")
print("   mask:  " + "".join("^" if m else " " for m in s.mask[0, :n].tolist()))

# %% [markdown]
# ## Step 4: define the loss (定义损失函数)
#
# Cross-entropy (交叉熵): −log of the softmax probability of the correct next character,
# averaged over the answer positions (`minituner.functional.cross_entropy`). Before any
# fine-tuning the base already has a loss on the test answers: the number to beat.

# %%
before, _ = run("base, before fine-tuning", base, task, steps=0)
print(f"the base's cross-entropy on the test answers: {before['test loss']:.3f} per answer character; "
      f"exact-match accuracy {before['test acc']:.3f}")

# %% [markdown]
# ## Steps 5 and 6: freeze nothing (冻结: none); AdamW and a small learning rate
#
# `minituner.full(base)` returns a copy of the base with every tensor trainable (step 5:
# nothing frozen). AdamW (step 6) keeps two running means, m and v, for each trainable
# number: 2 × trainable × 4 bytes. Three settings of `minituner.train` to know:
# - weight decay is 0 in every run of these lessons, so AdamW here is Adam;
# - the learning rate printed is the *peak*: `train()` decays it by a cosine to a tenth of
#   it over the run (after an optional linear warm-up, none here);
# - gradient clipping at 1.0: when the gradient of all trainable numbers, seen as one
#   vector, is longer than 1.0, it is scaled down to length 1.0 before the step (a guard
#   against one bad batch).
#
# The rate is small next to the base's pretraining rate, as the article advises for a
# pretrained model (a large step would overwrite what pretraining learned).

# %%
model = minituner.full(base)
print(markdown_table(parameter_table(model.base, depth=1)))  # the GPT inside the wrapper
trainable = minituner.count_parameters(model)[0]
state = AdamW(model.parameters(), lr=args.lr).state_bytes()
print(f"AdamW state {state:,} bytes = 2 × {trainable:,} trainable × 4 bytes: {state == 2 * trainable * 4}")
print(f"lr {args.lr} is {recipe['lr'] / args.lr:.0f}× smaller than pretraining's {recipe['lr']}")

# %% [markdown]
# ## Step 7: train (微调训练), and the same from random weights
#
# The run from scratch: `GPT(base.config, seed=…)`, the same shape with random weights,
# the same data, batch and number of steps, at the learning rate the base was pretrained
# with (a random model needs larger steps). Both runs score the validation split every few
# steps: the right panel is that curve.

# %%
every = max(2, args.steps // 10)
tuned, tuned_hist = run("full fine-tuning", model, task, args.steps, args.lr, batch_size=args.batch_size,
                        seed=args.seed, eval_every=every)
scratch, scratch_hist = run("same shape, from scratch", minituner.GPT(base.config, seed=args.seed + 1), task,
                            args.steps, recipe["lr"], batch_size=args.batch_size, seed=args.seed, eval_every=every)
print(f"fine-tuned: {tuned['s']:.1f} s, final training loss {tuned['train loss']:.3f}; "
      f"from scratch: {scratch['s']:.1f} s, final training loss {scratch['train loss']:.3f}")
plot_curves({f"full fine-tuning, lr {args.lr}": tuned_hist, f"from random weights, lr {recipe['lr']}": scratch_hist},
            "classify: full fine-tuning vs the same training from scratch", args.out / "full_finetune_curves.png")

# %% [markdown]
# ## Step 8: evaluate (评估)
#
# Exact match of the greedy answer, on the training split and on the test split, whose
# facts the task never showed. The base before fine-tuning, the fine-tuned model, and the
# model trained from scratch on the task alone.

# %%
rows = [before, tuned, scratch]
print(markdown_table(rows, ["run", "steps", "lr", "train loss", "train acc", "test loss", "test acc"]))
print(f"test accuracy: pretraining buys {tuned['test acc'] - scratch['test acc']:+.3f} over the same training "
      f"from scratch; fine-tuning adds {tuned['test acc'] - before['test acc']:+.3f} to the base as shipped")

# %% [markdown]
# ## The article's example: what was a cat is now to be called a dog
#
# §4 step 3's note: "originally it recognised a cat, now make it call it a dog". The
# `relabel` task has the same descriptions as `classify`, with *cat* and *dog* swapped.
# We continue training the fine-tuned model on it, then ask about cats and dogs on
# descriptions it was trained on (seen) and on the test split's descriptions (unseen),
# and count which name it answers: the swapped one, the original one, or another.
# The other animals' labels did not change: their accuracy shows what the swap cost.

# %%
relabel = minituner.make_task("relabel")
swapped = minituner.full(model.base)  # a trainable copy of the fine-tuned GPT
minituner.train(swapped, relabel, steps=args.relabel_steps, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                progress=False)
said = {}  # (split, model) -> the greedy answer of every row
relabel_rows = []
for split in ("train", "test"):
    old, new = getattr(task, split), getattr(relabel, split)
    assert [e[0] for e in old.examples] == [e[0] for e in new.examples]  # the same prompts, row by row
    is_cd = torch.tensor([o[1] != n[1] for o, n in zip(old.examples, new.examples, strict=True)])
    said_new = torch.tensor(minituner.evaluate(swapped, new)["correct"])  # answered the new label
    said_old = torch.tensor(minituner.evaluate(swapped, old)["correct"])  # answered the original label
    right_before = torch.tensor(minituner.evaluate(model, old)["correct"])
    relabel_rows.append({
        "descriptions": "seen in training" if split == "train" else "unseen (test)",
        "cat/dog rows": int(is_cd.sum()),
        "cat/dog: original, before": right_before[is_cd].float().mean().item(),
        "cat/dog: swapped, after": said_new[is_cd].float().mean().item(),
        "cat/dog: original, after": said_old[is_cd].float().mean().item(),
        "other animals, before": right_before[~is_cd].float().mean().item(),
        "other animals, after": said_new[~is_cd].float().mean().item(),
    })
print(markdown_table(relabel_rows))
for prompt, _ in [relabel.train.examples[0], relabel.test.examples[0]]:
    print(f"   {prompt!r}: before {minituner.answer(model, tok, prompt)!r}, after {minituner.answer(swapped, tok, prompt)!r}")

# %% [markdown]
# ### Where did the other animals' answers go?
#
# Relabelling changed two labels, yet in the table above the other animals' unseen
# accuracy moves too, and so does how often the unseen cat and dog rows get their
# *original* name. Does training on the swap pull answers towards the two names? We count,
# on every unseen (test) row, before and after, how many answers are "cat" or "dog".

# %%
def says(m, split, name):
    """Per row: would m's greedy answer be `name`? (evaluate's exact match against that answer)."""
    probe = encode_examples("probe", [(p, name) for p, _ in split.examples], tok)
    return torch.tensor(minituner.evaluate(m, probe)["correct"])


is_cd = torch.tensor([a in (" cat.", " dog.") for _, a in task.test.examples])
names_rows = []
for name, m in (("before", model), ("after", swapped)):
    cat_or_dog = says(m, task.test, " cat.") | says(m, task.test, " dog.")
    names_rows.append({"model": name, "answers cat or dog": int(cat_or_dog.sum()),
                       "of them on other animals": int(cat_or_dog[~is_cd].sum()),
                       "of them on cat/dog rows": int(cat_or_dog[is_cd].sum())})
print(markdown_table(names_rows))
print(f"(the unseen split has {len(task.test)} rows, {int(is_cd.sum())} of them cat/dog rows: one row is "
      f"{1 / is_cd.sum():.3f} of their accuracy)")

# %% [markdown]
# ## Conclusions
#
# Each line is printed from the tables above.

# %%
seen, unseen = relabel_rows
b, a = names_rows
print(f"- Fine-tuning every parameter for {args.steps} steps moves test accuracy "
      f"{before['test acc']:.3f} -> {tuned['test acc']:.3f}; the same steps from random weights reach "
      f"{scratch['test acc']:.3f} (train acc {scratch['train acc']:.3f}): the test's facts come from pretraining.")
held, spread = seen["cat/dog: swapped, after"], unseen["cat/dog: swapped, after"]
print(f"- The swap: {held:.0%} of the seen cat/dog descriptions answered with the swapped name, {spread:.0%} of "
      f"the unseen ones ({unseen['cat/dog: original, after']:.0%} still the original name)."
      + (f" {args.relabel_steps} steps taught a mapping from the seen prompts, not that cats are now called dogs."
         if held >= 0.75 and spread <= 0.25 else ""))
n_other, n_cd = int((~is_cd).sum()), int(is_cd.sum())
lost = round((unseen["other animals, before"] - unseen["other animals, after"]) * n_other)
print(f"- Unseen rows answered 'cat' or 'dog': {b['answers cat or dog']} -> {a['answers cat or dog']} "
      f"({b['of them on other animals']} -> {a['of them on other animals']} on the other animals' {n_other} rows, "
      f"{b['of them on cat/dog rows']} -> {a['of them on cat/dog rows']} on the {n_cd} cat/dog rows). The other "
      f"animals' accuracy went {unseen['other animals, before']:.3f} -> {unseen['other animals, after']:.3f} "
      f"({-lost:+d} rows)"
      + (": fewer of their rows were answered cat or dog, so the rows they lost went to other animals' names: "
         "the extra training moved answers everywhere, not towards the swapped pair."
         if lost > 0 and a["of them on other animals"] <= b["of them on other animals"] else
         f": {a['of them on other animals'] - b['of them on other animals']} more of their rows were answered cat or "
         f"dog, of the {lost} they lost." if lost > 0 else "."))
moved = round((unseen["cat/dog: original, after"] - unseen["cat/dog: original, before"]) * n_cd)
print(f"- The unseen cat/dog rows answered with their original name: {unseen['cat/dog: original, before']:.3f} -> "
      f"{unseen['cat/dog: original, after']:.3f} ({moved:+d} of {n_cd} rows, one seed)"
      + (": the swap did not reach them." if spread <= 0.25 else "."))
