"""Where a pretrained model comes from (article §4 step 1): language modelling on the corpus.

The shipped base in minituner/assets/ was made by ``minituner pretrain`` with the
defaults below; its metadata records the recipe, the seed and the held-out loss.
"""

from __future__ import annotations

import torch

from .data import make_corpus, make_fact_probe
from .model import GPT, GPTConfig
from .train import evaluate, train

RECIPE = {"steps": 6000, "lr": 3e-3, "batch_size": 32, "warmup": 100, "weight_decay": 0.0,
          "grad_clip": 1.0, "seed": 0, "world_seed": 0}


def pretrain(steps: int = RECIPE["steps"], lr: float = RECIPE["lr"], batch_size: int = RECIPE["batch_size"],
             seed: int = RECIPE["seed"], world_seed: int = RECIPE["world_seed"], config: GPTConfig | None = None,
             device: str = "cpu", progress: bool = True, n_train: int = 20000, eval_every: int = 0):
    """Train a fresh GPT on the corpus; returns (model, history, metadata).

    eval_every > 0 records the held-out loss every that many steps in the history (lesson 01's curve).
    """
    torch.manual_seed(seed)
    config = config or GPTConfig()
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
        "final_train_loss": round(sum(hist.losses[-50:]) / len(hist.losses[-50:]), 4),
        "seconds": round(hist.seconds, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
    }
    return model, hist, meta
