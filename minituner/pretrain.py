"""Where a pretrained model comes from (article §4 step 1): language modelling on the corpus.

The shipped base in minituner/assets/ was made by ``minituner pretrain`` with the
defaults below; its metadata records the recipe, the seed, the held-out loss and the
fact probe's accuracy (every fact of the world asked both ways).
"""

from __future__ import annotations

import torch

from .checks import int_in, real_in
from .data import make_corpus, make_fact_probe
from .device import check_device
from .model import GPT, GPTConfig
from .tokenizer import CharTokenizer
from .train import evaluate, train

RECIPE = {"steps": 8000, "lr": 3e-3, "batch_size": 32, "warmup": 100, "weight_decay": 0.0,
          "grad_clip": 1.0, "seed": 0, "world_seed": 0}
MAX_CORPUS_TOKENS = 2**26  # n_train rows × (block_size + 1) characters: about a minute to build, 0.8 GiB
MAX_BATCH_TOKENS = 2**22  # batch_size × block_size positions in one step
MAX_STEPS = 10**7


def check_config(config: GPTConfig, world_seed: int = 0) -> None:
    """Refuse, before any training, a config the corpus or the fact probe cannot use:
    a vocabulary smaller than the tokenizer's, or a context shorter than the longest
    fact-probe row (the probe would fail only after training)."""
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
    need_vocab = CharTokenizer().vocab_size
    if config.vocab_size < need_vocab:
        raise ValueError(f"vocab_size={config.vocab_size} is smaller than the tokenizer's "
                         f"{need_vocab} tokens; use vocab_size >= {need_vocab}")
    need_context = make_fact_probe(world_seed).x.size(1)
    if config.block_size < need_context:
        raise ValueError(f"block_size={config.block_size} is too short for the fact probe, whose longest "
                         f"row needs {need_context} positions; use block_size >= {need_context}")


def check_pretrain_args(config: GPTConfig, steps, lr, batch_size, seed, world_seed, n_train, eval_every) -> None:
    """Every argument of pretrain() checked before the corpus is built: a TypeError or ValueError naming it.

    Upper bounds keep a typo from hanging the machine: the corpus (n_train rows of block_size + 1
    characters) at most MAX_CORPUS_TOKENS, a batch at most the corpus's rows and MAX_BATCH_TOKENS
    positions, at most MAX_STEPS steps."""
    for name, value, low in (("steps", steps, 1), ("batch_size", batch_size, 1), ("seed", seed, 0),
                             ("world_seed", world_seed, 0), ("n_train", n_train, 1), ("eval_every", eval_every, 0)):
        int_in(name, value, low)
    real_in("lr", lr, positive=True)
    check_config(config, world_seed)
    if steps > MAX_STEPS:
        raise ValueError(f"steps={steps:,} is more than the {MAX_STEPS:,} pretraining allows")
    corpus = n_train * (config.block_size + 1)
    if corpus > MAX_CORPUS_TOKENS:
        raise ValueError(f"block_size={config.block_size:,} with n_train={n_train:,} rows makes a corpus of {corpus:,} "
                         f"characters, more than {MAX_CORPUS_TOKENS:,}; use block_size <= "
                         f"{MAX_CORPUS_TOKENS // n_train - 1:,} or fewer rows")
    if batch_size > n_train:
        raise ValueError(f"batch_size={batch_size:,} is larger than the corpus's {n_train:,} rows; use batch_size <= {n_train:,}")
    if batch_size * config.block_size > MAX_BATCH_TOKENS:
        raise ValueError(f"batch_size={batch_size:,} × block_size={config.block_size:,} positions per step is more than "
                         f"{MAX_BATCH_TOKENS:,}; use batch_size <= {max(1, MAX_BATCH_TOKENS // config.block_size):,}")


def pretrain(steps: int = RECIPE["steps"], lr: float = RECIPE["lr"], batch_size: int = RECIPE["batch_size"],
             seed: int = RECIPE["seed"], world_seed: int = RECIPE["world_seed"], config: GPTConfig | None = None,
             device: str = "cpu", progress: bool = True, n_train: int = 20000, eval_every: int = 0):
    """Train a fresh GPT on the corpus; returns (model, history, metadata).

    eval_every > 0 records the corpus's validation loss every that many steps in the history
    (lesson 01's curve).
    """
    config = config or GPTConfig()
    check_pretrain_args(config, steps, lr, batch_size, seed, world_seed, n_train, eval_every)
    device = str(check_device(device))
    torch.manual_seed(seed)
    corpus = make_corpus(world_seed=world_seed, seed=seed, n_train=n_train, length=config.block_size + 1)
    model = GPT(config, seed=seed)
    warmup = min(RECIPE["warmup"], max(1, steps // 10))
    hist = train(model, corpus, steps=steps, lr=lr, batch_size=batch_size, seed=seed, device=device,
                 warmup=warmup, grad_clip=RECIPE["grad_clip"], eval_every=eval_every, progress=progress)
    model.to("cpu")
    held_out = evaluate(model, corpus.test)["loss"]
    facts = evaluate(model, make_fact_probe(world_seed))["accuracy"]
    meta = {
        "recipe": dict(RECIPE, steps=steps, lr=lr, batch_size=batch_size, seed=seed, world_seed=world_seed,
                       warmup=warmup, n_train_rows=n_train),
        "held_out_loss": round(held_out, 4),
        "fact_accuracy": round(facts, 4),
        "facts": len(make_fact_probe(world_seed)) // 2,
        "final_train_loss": round(sum(hist.losses[-50:]) / len(hist.losses[-50:]), 4),
        "seconds": round(hist.seconds, 1),
        "device": device,
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
    }
    return model, hist, meta
