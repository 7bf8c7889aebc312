"""BitFit: train only the bias terms (Ben Zaken, Ravfogel & Goldberg 2022).

Article's notation (§1, Y = WX): every layer computes Y = WX + b; BitFit keeps every W
frozen at W₀ and trains only the b's. Paper's notation: for each layer ℓ, the bias vectors
b^ℓ_{q,k,v} (attention), b^ℓ_{m1} (its output projection), b^ℓ_{m2}, b^ℓ_{m3} (the MLP's two
layers) and the LayerNorm shifts b^ℓ_{LN1}, b^ℓ_{LN2} train;
θ = (W₀ frozen, b trainable), minimise L(W₀, b). The paper also reports a smaller variant
that trains only b_q and b_{m2}: ``bias_modules=("q_proj", "up_proj")`` here (our up_proj is
its m2, the MLP's first, widening layer).

Shapes, d = n_embd, L = n_layer: q,k,v,o_proj.bias (d,), up_proj.bias (4d,),
down_proj.bias (d,), ln_1, ln_2, ln_f .bias (d,).
Trainable count (closed form, bias_modules="all"):
    per block: 4d (attention) + 4d + d (MLP) + 2d (two LayerNorms) = 11d;  total 11d·L + d (ln_f).
With d = 64, L = 4: 2,880 numbers, 1.4% of the shipped base. A save holds those tensors only.

Nothing else changes: the forward is the base's own, so a fresh model equals the base
exactly and "merging" is a no-op (the trained biases simply are the model's biases).

References: 1) Ben Zaken et al. 2022, BitFit: Simple Parameter-efficient Fine-tuning for
Transformer-based Masked Language-models (ACL).  2) Hugging Face PEFT has no BitFit class;
its ``bias="all"`` option of LoraConfig trains the same tensors beside LoRA.
"""

from __future__ import annotations

from typing import ClassVar

from ..checks import refuse
from ..model import GPT
from .fields import MethodConfig, peft_config
from .options import ConfigError, option
from .peft_model import PeftModel
from .registry import Method, register


@peft_config
class BitFitConfig(MethodConfig):
    """bias_modules: "all" (every bias, LayerNorms included), or module last names ("q_proj", "ln_f", …)."""

    method: ClassVar[str] = "bitfit"
    bias_modules: tuple | str = option("all", "the modules whose bias trains: all, or names (q_proj, ln_f, ...)")

    def check(self):
        if not self.bias_modules:
            raise ConfigError("BitFitConfig", "bias_modules", "must name at least one module, or be 'all'")
        if self.bias_modules == ("all",):
            self.bias_modules = "all"


def bias_names(model, bias_modules) -> list[str]:
    """The names of the bias tensors bias_modules selects, in the model's order."""
    names = [n for n, _ in model.named_parameters() if n.endswith(".bias")]
    if bias_modules == "all":
        return names
    owners = sorted({n.rsplit(".", 2)[-2] for n in names})
    for t in bias_modules:
        if t not in owners:
            raise refuse(ValueError, "bias_modules", f"bias_modules: no bias belongs to a module named {t!r}; modules "
                                                     f"with a bias: {', '.join(owners)}")
    return [n for n in names if n.rsplit(".", 2)[-2] in bias_modules]


class BitFitModel(PeftModel):
    """A frozen copy of a GPT (``.base``) whose chosen bias vectors train."""

    def __init__(self, base: GPT, config: BitFitConfig, adapter_name: str = "default"):
        super().__init__(base, config, adapter_name)
        self.in_place = bias_names(self.base, config.bias_modules)  # trained where they are, saved as base.<name>
        for name in self.in_place:
            self.base.get_parameter(name).requires_grad_(True)


register(Method("bitfit", "BitFit", BitFitConfig, BitFitModel, order=7, grid={"lr": [1e-3, 3e-3, 1e-2]},
                note="every bias"))
