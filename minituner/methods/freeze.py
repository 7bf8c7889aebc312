"""Freezing (冻结, article §4 step 5): train the top blocks, keep the bottom ones as pretrained.

Article: "you can choose to freeze part of the model, especially the bottom layers;
this keeps the general features the pretrained model learned". In the terms of
Y = WX (§1): the W's of the frozen layers stay W₀; only the top layers' W's move.
Paper's notation (Yosinski et al. 2014; Howard & Ruder 2018): split θ = (θ_frozen, θ_top)
and minimise L(θ_frozen⁰, θ_top) over θ_top alone; the gradient still flows *through*
the frozen layers' activations, it is just never applied to their weights.

What trains, for a GPT of depth L (blocks h.0 at the bottom … h.{L-1} at the top):
    trainable_layers = N   blocks h.{L-N} … h.{L-1}, and ln_f when N > 0 (ln_f sits
                           above the top block and feeds only the head: it belongs to
                           the top of the stack, so it trains with the top blocks);
                           with bottom=True blocks h.0 … h.{N-1} instead, ln_f frozen
                           (the article's advice turned round: lesson 03 tests it);
    train_embeddings       wte and wpe (token and position embeddings);
    train_head             the output head. GPT-2 ties the head to wte (logits = ln_f(x) @ wteᵀ),
                           so there is no separate head tensor: train_head trains wte, the
                           same tensor as the token embedding, and wpe stays frozen.
N = 0 trains only what the flags allow; if that is nothing, a ValueError. A save holds the
trainable tensors only, by their names in the model.

Trainable count (closed form, d = n_embd, V = vocab_size, T = block_size, [·] is 1 or 0):
    N·(12d² + 13d) + [N > 0 and not bottom]·2d + [train_embeddings or train_head]·V·d + [train_embeddings]·T·d
    per block: attention 4d² + 4d, MLP 8d² + 5d, two LayerNorms 4d; ln_f 2d.

The optimiser sees only the tensors that require grad, so its state is 2 × trainable × 4
bytes, and frozen tensors stay bit-identical (verify/freeze.py checks both).

References: 1) Yosinski et al. 2014, How transferable are features in deep neural networks?
2) Howard & Ruder 2018, ULMFiT (gradual unfreezing)  3) LLaMA-Factory's `freeze` finetuning_type
(freeze_trainable_layers: the last N layers train)
"""

from __future__ import annotations

from typing import ClassVar

from ..model import GPT
from .fields import MethodConfig, peft_config
from .options import ConfigError, option
from .peft_model import PeftModel
from .registry import Method, register


@peft_config
class FreezeConfig(MethodConfig):
    """Train the top ``trainable_layers`` blocks (and ln_f), optionally the embeddings or the tied head."""

    method: ClassVar[str] = "freeze"
    trainable_layers: int = option(1, "top blocks left trainable (the rest frozen)", ge=0, le=1024, short="layers")
    train_embeddings: bool = option(False, "also train the token and position embeddings")
    train_head: bool = option(False, "also train the head (tied to the token embedding)")
    bottom: bool = option(False, "train the bottom trainable_layers blocks instead of the top ones (ln_f stays "
                                 "frozen): the article's advice turned round, to test it")

    def check(self):
        if self.trainable_layers == 0 and not (self.train_embeddings or self.train_head):
            raise ConfigError("FreezeConfig", "trainable_layers", "=0 with train_embeddings=False and train_head=False "
                              "leaves nothing to train; allow at least one block or one of the two flags")


class FreezeModel(PeftModel):
    """A copy of a GPT (``.base``) with all but the top ``trainable_layers`` blocks (and the flagged parts) frozen."""

    def __init__(self, base: GPT, config: FreezeConfig, adapter_name: str = "default"):
        depth, N = base.config.n_layer, config.trainable_layers
        if N > depth:
            raise ValueError(f"trainable_layers must be an integer from 0 to the model's depth "
                             f"n_layer={depth}, got {N!r}")
        super().__init__(base, config, adapter_name)  # 冻结: the copy starts frozen
        m = self.base
        if config.bottom:
            top = list(m.h[:N])  # the bottom N blocks: what the article advises to freeze
        else:
            top = list(m.h[depth - N :]) + ([m.ln_f] if N > 0 else [])  # the top N blocks, then ln_f
        top += [m.wte, m.wpe] if config.train_embeddings else []
        top += [m.wte] if config.train_head else []  # the head *is* wte (tied)
        for module in top:
            module.requires_grad_(True)
        self.in_place = [n for n, p in self.base.named_parameters() if p.requires_grad]


register(Method("freeze", "freeze (冻结)", FreezeConfig, FreezeModel, order=2,
                grid={"trainable_layers": [1, 2], "lr": [1e-3, 3e-3]}, memory="freeze"))
