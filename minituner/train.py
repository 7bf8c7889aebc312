"""train() and evaluate(): the article's §4 steps 7 (train, watching the validation set)
and 8 (evaluate on the test set, once).

train() trains on ``data.train`` and looks at ``data.val`` only: every ``eval_every``
steps it scores the validation split, and with ``patience`` it stops once the
validation score has not improved for that many evaluations and puts back the weights
of the best one (early stopping). The score is what the project reports: exact-match
accuracy first, the lower loss breaking ties. Loss alone misleads on answers of many
tokens: the validation loss can rise while accuracy rises (the model grows sure of the words
it gets right and of a few wrong ones), as it did on a first `qa` whose answers restated the
whole fact. It never reads ``data.test``; whoever reports
calls ``evaluate(model, data.test)`` once, at the end.

Accuracy is exact match of the greedy answer. It is computed in one batched,
teacher-forced pass: greedy decoding reproduces the answer exactly if and only
if, at every answer position, the argmax of the logits given the *correct*
earlier tokens is the correct next token (as long as all earlier tokens match,
greedy decoding's context *is* the correct context). tests/test_train.py checks
this against generate().
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from tqdm import tqdm

from .checks import boolean, int_in, real_in, refuse
from .dataset import Dataset, Split
from .device import check_device
from .distributed import whole_batch_loss, wrap
from .functional import _check_mask, cross_entropy, token_nll
from .i18n import _
from .optim import AdamW
from .tokenizer import END


@dataclass(repr=False)
class History:
    """What a run did: the training loss per step, the validation curve
    ``val`` = [(step, val loss, val accuracy), ...], the best step (best_score: the highest
    val accuracy, ties to the lower loss),
    whether it stopped early, and the seconds it took."""

    losses: list[float] = field(default_factory=list)
    val: list[tuple[int, float, float]] = field(default_factory=list)
    best_step: int | None = None
    stopped_early: bool = False
    seconds: float = 0.0
    optimizer_state_bytes: int = 0
    allreduce_bytes: int = 0  # with several processes: the gradient bytes one step all-reduced

    def __repr__(self) -> str:
        out = f"History({len(self.losses)} steps, {self.seconds:.1f} s, final train loss {self.losses[-1]:.4f}" \
            if self.losses else "History(0 steps"
        if self.val:
            step, loss, acc = max(self.val, key=best_score)
            out += f"; best val accuracy {acc:.3f} (loss {loss:.4f}) at step {step}"
            out += ", stopped early" if self.stopped_early else ""
        return out + ")"

    def plot(self, ax=None, title: str | None = None):
        """The training loss per step and the validation loss at each evaluation, on one axis
        (log scale); returns the matplotlib Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(range(1, len(self.losses) + 1), self.losses, lw=0.8, alpha=0.7, label="train loss")
        if self.val:
            steps, losses, _ = zip(*self.val)
            ax.plot(steps, losses, "o-", ms=3, label="validation loss")
        if self.best_step is not None:
            ax.axvline(self.best_step, color="grey", ls=":", lw=1, label=f"best step {self.best_step}")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (answer tokens)")
        ax.set_title(title or "training and validation loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return ax


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up for `warmup` steps, then cosine decay to lr/10 (as nanoGPT)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def check_train_args(data, steps, lr, batch_size, eval_every, patience, weight_decay=0.0, grad_clip=None,
                     warmup=0) -> None:
    """Every argument of train() checked before any work: a TypeError or ValueError naming it
    (data None: the numbers only, as the command line checks them before it reads the data)."""
    if data is not None and not isinstance(data, Dataset):
        raise TypeError(f"train() needs a minituner Dataset (train, val and test splits), got "
                        f"{type(data).__name__}; for your own (prompt, answer) pairs use "
                        f"minituner.Dataset.from_pairs(pairs)")
    int_in("steps", steps, 1, high=10**7)
    int_in("batch_size", batch_size, 1, high=2**16)
    int_in("warmup", warmup, 0, high=steps)  # a longer warm-up would never reach the rate
    int_in("eval_every", eval_every, 0, high=10**7)
    real_in("lr", lr, positive=True, high=10.0)  # far above any rate that trains (prompt tuning's is 0.1)
    real_in("weight_decay", weight_decay, positive=False, high=10.0)
    if grad_clip is not None:
        real_in("grad_clip", grad_clip, positive=False)  # 0 or None: no clipping
    if patience is not None:
        int_in("patience", patience, 1, high=10**6)
        if not eval_every:
            raise refuse(ValueError, "patience", "patience needs eval_every > 0: early stopping watches the "
                                                 "validation loss")


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar over range(total) that shows in a terminal and in Jupyter alike: the widget
    bar when ipywidgets is there, else the text bar on stderr (which Jupyter prints too)."""
    if enabled and "ipykernel" in sys.modules:
        if importlib.util.find_spec("ipywidgets") is not None:  # the widget bar needs it; without it, text
            from tqdm.notebook import tqdm as notebook_tqdm

            return notebook_tqdm(range(total), desc=desc, leave=False)
    return tqdm(range(total), desc=desc, disable=not enabled, leave=False, mininterval=0.5,
                file=sys.stderr, dynamic_ncols=True)


def update(opt: AdamW, loss: torch.Tensor, grad_clip: float, lr: float) -> None:
    """One optimiser step (article §4 step 6): gradients of the loss, clipped to norm grad_clip
    (0: no clipping), then AdamW at learning rate lr."""
    opt.zero_grad()
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(opt.params, grad_clip)
    opt.lr = lr
    opt.step()


def train(model, data: Dataset, steps: int = 300, lr: float = 1e-3, batch_size: int = 32,
          seed: int = 0, device: str = "cpu", weight_decay: float = 0.0, grad_clip: float | None = 1.0,
          warmup: int = 0, eval_every: int = 0, patience: int | None = None,
          progress: bool = True) -> History:
    """Train the model's trainable tensors on data.train with AdamW; returns a History.

    Only tensors with requires_grad are given to the optimiser: that is how every method
    (freezing, prompts, prefixes, LoRA) decides what is trained. Weight decay, when given,
    applies to all of them alike (soft prompts and LoRA matrices included).
    eval_every > 0 scores data.val every that many steps (and at the last step);
    patience stops after that many evaluations without a better validation score
    (best_score: higher accuracy, ties to the lower loss) and restores the trainable tensors
    of the best evaluation.
    A non-finite loss stops training with a RuntimeError naming the step.

    One loop for one process or W (as nanoGPT's train.py): inside a torch.distributed process
    group (``launch.spawn``, torchrun) each rank takes its 1/W of the batch through
    DistributedDataParallel (see distributed.py for the loss scaling that makes the averaged
    gradient the whole batch's); rank 0 alone scores data.val and broadcasts (loss, accuracy),
    so every rank takes the same decisions (best step, stop) and restores the same weights.
    """
    check_train_args(data, steps, lr, batch_size, eval_every, patience, weight_decay, grad_clip, warmup)
    boolean("progress", progress)
    if hasattr(getattr(model, "config", None), "validate"):  # a method's config, checked again where it is used
        model.config.validate()
    int_in("seed", seed, 0, high=2**63 - 1)  # as torch.Generator().manual_seed takes it
    for split in (data.train, data.val):  # the splits train() reads: every row fits the context (else named)
        split.check_context(model.gpt_config.block_size, getattr(model, "num_virtual_tokens", 0))
    device = check_device(device)
    ddp = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if ddp else (0, 1)
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} must split evenly over {world} processes")
    b = batch_size // world  # this rank's rows of every batch
    raw_model = model
    raw_model.to(device)
    raw_model.train()
    opt = AdamW(raw_model.parameters(), lr=lr, weight_decay=weight_decay)
    hist, sent = History(optimizer_state_bytes=opt.state_bytes()), []
    if ddp:
        model, sent = wrap(raw_model, rank, device)  # sent: the bytes of every gradient bucket all-reduced
    gen = torch.Generator().manual_seed(seed)  # every rank draws the same batch, then takes its rows
    best, best_state, bad_evals = (-math.inf, -math.inf), None, 0
    t0 = time.perf_counter()
    bar = progress_bar(steps, _("train {task}").format(task=data.name), progress and rank == 0)
    for step in bar:
        x, y, m = (t[rank * b:(rank + 1) * b].to(device) for t in data.train.batch(batch_size, gen))
        loss = whole = cross_entropy(model(x), y, m)  # the mean over this rank's answer tokens
        if ddp:
            loss, whole = whole_batch_loss(loss, m, world)
        if not loss.requires_grad:
            raise ValueError("the loss does not depend on any trainable tensor: " + (
                "gradients are off (train() was called inside torch.no_grad() or torch.inference_mode()); "
                "call it outside" if not torch.is_grad_enabled() else
                "a merged LoRA model keeps ΔW in the frozen W: call model.unmerge_adapter() before training it"
                if getattr(raw_model, "merged", False) else "the forward reads no tensor that requires grad"))
        if not torch.isfinite(whole):  # the whole batch's loss: every rank stops here together
            dtype = next(raw_model.parameters()).dtype
            raise RuntimeError(f"the loss became {whole.item()} at step {step}: " + (
                f"the model is in {dtype}, whose range overflows here; train in float32 (model.float())"
                if dtype in (torch.float16, torch.bfloat16) else
                f"lower the learning rate (now {lr}) or keep gradient clipping on"))
        update(opt, loss, grad_clip, lr_at(step, steps, lr, warmup))
        hist.losses.append(whole.item())
        if eval_every and ((step + 1) % eval_every == 0 or step + 1 == steps):
            score = torch.zeros(2, dtype=torch.float64)  # (val loss, val accuracy), rank 0's
            if rank == 0:
                ev = evaluate(raw_model, data.val)
                raw_model.train()
                score[:] = torch.tensor([ev["loss"], ev["accuracy"]])
            if ddp:
                dist.broadcast(score, src=0)  # every rank now takes rank 0's decisions
            hist.val.append((step + 1, score[0].item(), score[1].item()))
            bar.set_postfix(loss=f"{whole.item():.4f}", val_loss=f"{score[0]:.4f}", val_acc=f"{score[1]:.3f}")
            if best_score(hist.val[-1]) > best:
                best, hist.best_step, bad_evals = best_score(hist.val[-1]), step + 1, 0
                if patience is not None:
                    best_state = [p.detach().clone() for p in opt.params]
            else:
                bad_evals += 1
                if patience is not None and bad_evals >= patience:
                    hist.stopped_early = step + 1 < steps
                    break
        elif step % 10 == 0:
            bar.set_postfix(loss=f"{whole.item():.4f}")
    bar.close()
    if best_state is not None:  # early stopping: back to the best validation score
        with torch.no_grad():
            for p, saved in zip(opt.params, best_state, strict=True):
                p.copy_(saved)
    hist.seconds = time.perf_counter() - t0
    hist.allreduce_bytes = sum(sent) // max(1, len(hist.losses))
    raw_model.eval()
    return hist


def best_score(evaluation: tuple[int, float, float]) -> tuple[float, float]:
    """The order of validation evaluations (step, loss, accuracy): higher accuracy, then lower loss."""
    _, loss, accuracy = evaluation
    return accuracy, -loss


def model_device(model) -> torch.device:
    """Where the model's tensors live (its first parameter's device)."""
    return next(model.parameters()).device


@torch.no_grad()
def evaluate(model, split: Split, batch_size: int = 256, chunk: int = 32) -> dict:
    """Masked loss and exact-match accuracy of greedy answers over a whole split
    (inputs are moved to the model's device).

    Returns {"loss": mean loss per answer token, "accuracy": fraction of rows whose
    greedy answer is exactly right, "correct": a bool per row}.

    The loss is reduced over `batch_size` rows at a time. Within them the model runs on
    `chunk` rows at a time, sorted by length, each cut after its last answer token: a
    position's logits depend only on the tokens before it (causal attention), so the
    padding after the answer changes nothing, and on the CPU the logits kept are the same
    bits as those of one pass over the padded rows (tests/test_train.py checks it). On the
    comparison's validation split that is a third of the tokens fewer, and small passes
    stay in the cache.
    """
    if not isinstance(split, Split):
        hint = " (pass one split, e.g. data.val or data.test)" if isinstance(split, Dataset) else ""
        raise TypeError(f"evaluate() needs a Split, got {type(split).__name__}{hint}")
    int_in("batch_size", batch_size, 1)
    int_in("chunk", chunk, 1)
    if not len(split):
        raise ValueError(f"evaluate() needs at least one row; the {split.name} split is empty")
    device = model_device(model)
    was_training = model.training
    model.eval()
    total, count, correct = 0.0, 0.0, []
    for i in range(0, len(split), batch_size):
        x, y, m = (t[i : i + batch_size].to(device) for t in (split.x, split.y, split.mask))
        ends = (m * torch.arange(1, m.size(1) + 1, device=device)).amax(1).long().clamp_(min=1)  # (b,) tokens needed
        nll = torch.zeros(m.shape, device=device)  # (b, L): 0 where the loss does not count
        hit = m == 0  # (b, L): a position is right or does not count
        order = torch.argsort(ends, stable=True)
        for rows in order.split(chunk):
            n = int(ends[rows].max())
            logits = model(x[rows, :n])  # (c, n, V)
            nll[rows, :n] = token_nll(logits, y[rows, :n])
            hit[rows, :n] |= logits.argmax(-1) == y[rows, :n]
        mask, n_kept = _check_mask(m, nll.dtype)
        total += (nll * (mask / n_kept)).sum().item() * n_kept.item()  # cross_entropy's sum, as one pass gives it
        count += n_kept.item()
        correct += hit.all(dim=1).tolist()
    model.train(was_training)
    return {"loss": total / count, "accuracy": sum(correct) / len(correct), "correct": correct}


@torch.no_grad()
def answer(model, tokenizer, prompt: str, max_new_tokens: int | None = None) -> str:
    """The model's greedy answer to one prompt, up to the end-of-answer marker (not included).

    max_new_tokens defaults to all the room the context has left; if the answer reaches the
    context limit before the marker, the text so far is returned with " […context limit]"
    appended, so a cut is never silent.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"the prompt must be a str, got {type(prompt).__name__}")
    if not prompt:
        raise ValueError("the prompt is empty; the model continues a text: give at least one character")
    idx = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=model_device(model))
    block_size = model.gpt_config.block_size
    k = getattr(model.config, "num_virtual_tokens", 0)
    room = block_size - idx.size(1) - k  # virtual tokens take room too
    if room < 1:
        raise ValueError(f"the prompt ({idx.size(1)} tokens)" + (f" and the model's {k} virtual tokens" if k else "")
                         + f" leave no room to answer in the context (block_size={block_size}); use a shorter prompt"
                         + (" or fewer virtual tokens" if k else ""))
    n = room if max_new_tokens is None else max_new_tokens
    int_in("max_new_tokens", n, 1)
    (end_id,) = tokenizer.encode(END)  # the marker is one token (a character, or GPT-2's byte 'Ċ')
    out = model.generate(idx, min(n, room), stop_id=end_id)[0, idx.size(1):].tolist()
    if end_id in out:
        return tokenizer.decode(out[: out.index(end_id)])
    return tokenizer.decode(out) + (" […context limit]" if n >= room else "")


def print_answers(model, task, n: int = 3) -> bool:
    """Print the model's greedy answers to the first n test prompts, then check that
    generate() gives the same tokens with the KV cache as without it; returns that check."""
    for prompt, expected in task.test.examples[:n]:
        print("  " + _("{prompt} -> {answer} (expected {expected})").format(
            prompt=repr(prompt), answer=repr(answer(model, task.tokenizer, prompt)), expected=repr(expected)))
    idx = task.test.x[:8, :30]
    same = torch.equal(model.generate(idx, 12, use_cache=True), model.generate(idx, 12, use_cache=False))
    print(_("generate with the KV cache = without it: {same}").format(same=same))
    return same
