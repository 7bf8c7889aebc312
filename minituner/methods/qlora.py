"""QLoRA: LoRA in float32 on top of a frozen base held in 4 bits (Dettmers et al. 2023).

Paper's notation (Eq. 5, one layer, with our float32 where the paper computes in BF16):
    Y = X · doubleDequant(c₁^FP32, c₂^k-bit, W^NF4) + X L₁ L₂
    W^NF4 the frozen weight in NormalFloat-4 (blocks of 64, absmax scale c₂ per block), the
    scales double-quantised to 8 bits (blocks of 256, one fp32 c₁ each); L₁ L₂ = LoRA's Aᵀ Bᵀ.
Article's notation (§3.2): Y = (Ŵ + ΔW) X + b with ΔW = AB as in LoRA, where Ŵ is W rounded
to 16 levels per block: the frozen W of LoRA, now stored in ≈ 4.13 bits per weight.
The quantisation itself (code book, blocks, packing, double quantisation) is minituner/quant.py.

What is quantised: every Linear of the base (q, k, v, o, up, down in each block), as QLoRA does;
the embeddings (the tied head), LayerNorms and biases stay float32. Ŵ is rebuilt from the codes
in every forward (``Linear4bit``), and only lora_A, lora_B train; the packed codes are buffers
the optimiser never sees, so they never change (tests hash them before and after training).
Trainable count: r · (in + out) per targeted Linear, as LoRA.
Base bytes: 4 per weight in float32; 0.5 + 1/64 + 4/(64·256) per weight in NF4, double-quantised.

Merging into 4 bits would round ΔW away, so ``merge_adapter`` is refused; ``merge_and_unload``
returns a float32 GPT with W = Ŵ + ΔW (the quantised base plus the adapter, exactly as trained).
A save holds the LoRA tensors only; loading re-quantises the float32 base (quantisation is
deterministic, so the same codes come back) and checks that base's fingerprint.

References: 1) Dettmers et al. 2023, QLoRA: Efficient Finetuning of Quantized LLMs (NeurIPS).
2) Hu et al. 2021, LoRA.  3) bitsandbytes' Linear4bit and PEFT's prepare_model_for_kbit_training.
"""

from __future__ import annotations

import copy
from typing import ClassVar

import torch
import torch.nn as nn

from ..model import GPT, Linear, count_parameters
from ..quant import Linear4bit, numel_4bit, state_bytes
from .fields import peft_config
from .lora import LoraConfig, LoRALinear, LoraModel
from .options import option
from .registry import Method, ranks, register
from .targets import replace_module


@peft_config
class QLoraConfig(LoraConfig):
    """LoraConfig's fields, and bitsandbytes' name for the double quantisation of the scales."""

    method: ClassVar[str] = "qlora"
    bnb_4bit_use_double_quant: bool = option(True, "quantise the 4-bit blocks' scales again (8-bit, per 256)")


def _float_linear(weight: torch.Tensor, bias: torch.Tensor) -> Linear:
    lin = Linear(weight.size(1), weight.size(0))
    lin.weight, lin.bias = nn.Parameter(weight.detach().clone()), nn.Parameter(bias.detach().clone())
    return lin


class QLoraModel(LoraModel):
    """A LoraModel whose every Linear weight is held in NF4 (``Linear4bit``), LoRA on top in float32."""

    def __init__(self, base: GPT, config: QLoraConfig, adapter_name: str = "default"):
        super().__init__(base, config, adapter_name)  # LoRA layers first, on the float32 copy
        for n, m in list(self.base.named_modules()):  # then every W (inside LoRALinear or not) to 4 bits
            if isinstance(m, Linear):
                replace_module(self.base, n, Linear4bit(m, config.bnb_4bit_use_double_quant))

    def merge_adapter(self, adapter_names=None, keep_copy: bool = False):
        raise ValueError("a 4-bit W cannot hold ΔW without rounding it away; use merge_and_unload() for a "
                         "float32 GPT with W = Ŵ + ΔW")

    def get_nb_trainable_parameters(self) -> tuple[int, int]:
        """(trainable, all), each 4-bit weight counted as one frozen parameter (as PEFT counts them)."""
        trainable, total = count_parameters(self)
        return trainable, total + numel_4bit(self)

    def base_bytes(self) -> dict[str, int]:
        """Bytes of the Linear weights: as float32, and as held here (NF4 codes and scales)."""
        quant = [m for m in self.base.modules() if isinstance(m, Linear4bit)]
        return {"fp32": sum(4 * m.in_features * m.out_features for m in quant),
                "nf4": sum(state_bytes(m.quant_state()) for m in quant)}

    @torch.no_grad()
    def merge_and_unload(self) -> GPT:
        """A float32 GPT: W = Ŵ + ΔW where an adapter sits, W = Ŵ elsewhere (frozen, as PEFT leaves it)."""
        plain = copy.deepcopy(self.base)
        for n, m in list(plain.named_modules()):
            if isinstance(m, LoRALinear) or (isinstance(m, Linear4bit) and not n.endswith(".base_layer")):
                w = m.weight + (m.get_delta_weight(self.active_adapter) if isinstance(m, LoRALinear) else 0)
                bias = m.base_layer.bias if isinstance(m, LoRALinear) else m.bias
                replace_module(plain, n, _float_linear(w, bias).requires_grad_(bias.requires_grad))
        return plain


register(Method("qlora", "QLoRA", QLoraConfig, QLoraModel, order=10, grid={**ranks(8), "lr": [3e-3, 1e-2]},
                memory="qlora", note="NF4 base, q,v"))
