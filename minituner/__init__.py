"""minituner: learn how language models are fine-tuned by building it.

    base = minituner.load_base()                      # the shipped pretrained tiny GPT
    task = minituner.make_task("classify")            # the mini-world's downstream task
    model = minituner.get_peft_model(base, minituner.LoraConfig(r=4))   # or full / freeze / prompt_tuning / lora
    model.print_trainable_parameters()
    history = minituner.train(model, task, steps=200, lr=3e-3)
    minituner.evaluate(model, task.test)
    model.save_pretrained("runs/lora")                # later: minituner.PeftModel.from_pretrained(base, "runs/lora")
"""

__version__ = "0.1.0"

from .checkpoint import fingerprint, load_base, load_model, save_model  # noqa: E402
from .data import make_corpus, make_fact_probe, make_task, make_world  # noqa: E402
from .methods import (  # noqa: E402
    METHODS,
    FreezeConfig,
    FreezeModel,
    FullConfig,
    FullModel,
    LoraConfig,
    LoRALinear,
    LoraModel,
    PeftModel,
    PrefixTuningConfig,
    PrefixTuningModel,
    PromptTuningConfig,
    PromptTuningModel,
    get_peft_model,
)
from .methods.shortcuts import (  # noqa: E402
    freeze,
    full,
    load_adapter,
    lora,
    prefix_tuning,
    prompt_tuning,
    ptuning_v2,
)
from .model import GPT, GPTConfig  # noqa: E402
from .optim import AdamW  # noqa: E402
from .report import count_parameters, parameter_table, print_trainable_parameters  # noqa: E402
from .tokenizer import CharTokenizer  # noqa: E402
from .train import History, answer, evaluate, train  # noqa: E402

__all__ = [
    "GPT", "GPTConfig", "AdamW", "CharTokenizer", "History",
    "load_base", "load_model", "save_model", "fingerprint",
    "make_world", "make_corpus", "make_task", "make_fact_probe",
    "train", "evaluate", "answer",
    "count_parameters", "print_trainable_parameters", "parameter_table",
    "get_peft_model", "load_adapter", "METHODS", "PeftModel",
    "FullConfig", "FreezeConfig", "PromptTuningConfig", "PrefixTuningConfig", "LoraConfig",
    "FullModel", "FreezeModel", "PromptTuningModel", "PrefixTuningModel", "LoraModel", "LoRALinear",
    "full", "freeze", "prompt_tuning", "prefix_tuning", "ptuning_v2", "lora",
]
