"""Full fine-tuning (全量微调, article §3.1): every parameter of the base is trained.

Article: the model is the matrix W of Y = WX (§1); full fine-tuning adjusts *all*
layers and parameters, W ← W − lr·∇_W L, with a small learning rate on task data.
Paper's notation (Howard & Ruder 2018; Devlin et al. 2019): θ ← θ − η ∇_θ L(θ; D_task),
starting from the pretrained θ₀, for every θ in the model.

Trainable count (closed form, d = n_embd, L = n_layer, V = vocab_size, T = block_size):
    V·d + T·d + L·(12d² + 13d) + 2d        (= every parameter; the head is tied to wte)
    per block: attention 4d² + 4d, MLP 8d² + 5d, two LayerNorms 4d.

The copy (``FullModel.base``) is what trains: the base object is never modified (tests hash
it before and after). The optimiser keeps m and v for every tensor: 2 × all × 4 bytes (see
optim.py). A save holds every tensor: the whole model, by the base's own names.

References: 1) Howard & Ruder 2018, Universal Language Model Fine-tuning (ULMFiT)
2) Devlin et al. 2019, BERT  3) Radford et al. 2018, GPT-1 (generative pretraining, then fine-tuning)
"""

from __future__ import annotations

from typing import ClassVar

from ..model import GPT
from .fields import MethodConfig, peft_config
from .peft_model import PeftModel
from .registry import Method, register


@peft_config
class FullConfig(MethodConfig):
    method: ClassVar[str] = "full"


class FullModel(PeftModel):
    """A copy of a GPT (``.base``) with every parameter trainable (requires_grad=True)."""

    def __init__(self, base: GPT, config: FullConfig, adapter_name: str = "default"):
        super().__init__(base, config, adapter_name)
        self.base.requires_grad_(True)
        self.in_place = [n for n, _ in self.base.named_parameters()]

    def trained_tensors(self):
        return self.base.state_dict(keep_vars=True)  # every tensor, named as in the base


register(Method("full", "full (全量微调)", FullConfig, FullModel, order=1, grid={"lr": [1e-4, 3e-4, 1e-3]},
                memory="full", note="all trainable"))
