"""minituner: learn how language models are fine-tuned by building it.

    base = minituner.load_base()                      # the shipped pretrained tiny GPT
    task = minituner.make_task("classify")            # train / val / test splits of a downstream task
    model = minituner.get_peft_model(base, minituner.LoraConfig(r=4))   # or full / freeze / prompt_tuning / lora
    model.print_trainable_parameters()
    history = minituner.train(model, task, steps=250, lr=3e-3, eval_every=25, patience=4)  # watches task.val
    minituner.evaluate(model, task.test)              # once, at the end
    model.save_pretrained("runs/lora")                # later: minituner.PeftModel.from_pretrained(base, "runs/lora")
"""

from .checkpoint import fingerprint, load_base, load_model, save_model  # noqa: E402
from .data import make_corpus, make_fact_probe, make_task, make_world  # noqa: E402
from .dataset import Dataset, Split, from_pairs  # noqa: E402
from .functional import fused  # noqa: E402
from .methods import (  # noqa: E402
    METHODS,
    BitFitConfig,
    DoraConfig,
    FreezeConfig,
    FreezeModel,
    FullConfig,
    FullModel,
    IA3Config,
    LoraConfig,
    LoRALinear,
    LoraModel,
    PeftModel,
    PrefixTuningConfig,
    PrefixTuningModel,
    PromptTuningConfig,
    PromptTuningModel,
    QLoraConfig,
    get_peft_model,
)
from .methods.shortcuts import (  # noqa: E402
    bitfit,
    dora,
    freeze,
    full,
    ia3,
    load_adapter,
    lora,
    prefix_tuning,
    prompt_tuning,
    ptuning_v2,
    qlora,
)
from .model import GPT, GPTConfig, count_parameters, print_trainable_parameters  # noqa: E402
from .optim import AdamW  # noqa: E402
from .peft_format import load_peft_format, save_peft_format  # noqa: E402  (registers PEFT's folders with from_pretrained)
from .report import parameter_table  # noqa: E402
from .tokenizer import CharTokenizer  # noqa: E402
from .train import History, answer, evaluate, train  # noqa: E402
from .version import __version__  # noqa: E402, F401

__all__ = [
    "GPT", "GPTConfig", "AdamW", "fused", "CharTokenizer", "History",
    "load_base", "load_model", "save_model", "fingerprint",
    "make_world", "make_corpus", "make_task", "make_fact_probe", "Dataset", "Split", "from_pairs",
    "train", "evaluate", "answer",
    "count_parameters", "print_trainable_parameters", "parameter_table",
    "get_peft_model", "load_adapter", "METHODS", "PeftModel",
    "FullConfig", "FreezeConfig", "PromptTuningConfig", "PrefixTuningConfig", "LoraConfig",
    "FullModel", "FreezeModel", "PromptTuningModel", "PrefixTuningModel", "LoraModel", "LoRALinear",
    "full", "freeze", "prompt_tuning", "prefix_tuning", "ptuning_v2", "lora",
    "BitFitConfig", "IA3Config", "DoraConfig", "QLoraConfig", "bitfit", "ia3", "dora", "qlora",
]

# Real checkpoints and more than one process (issue 14)
from .bpe import BPETokenizer, train_bpe  # noqa: E402
from .gpt2 import load_gpt2  # noqa: E402

__all__ += ["load_gpt2", "BPETokenizer", "train_bpe", "save_peft_format", "load_peft_format"]
