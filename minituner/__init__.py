"""minituner: learn how language models are fine-tuned by building it.

    base = minituner.load_base()                      # the shipped pretrained tiny GPT
    task = minituner.make_task("classify")            # the mini-world's downstream task
    model = minituner.full(base)                      # or freeze / prompt_tuning / prefix_tuning / lora
    minituner.print_trainable_parameters(model)
    history = minituner.train(model, task, steps=200, lr=1e-4)
    minituner.evaluate(model, task.test)
"""

from .checkpoint import fingerprint, load_base, load_model, save_model
from .data import make_corpus, make_fact_probe, make_task, make_world
from .methods.freeze import freeze
from .methods.full import full
from .methods.lora import (
    LoRALinear,
    add_adapter,
    delete_adapter,
    disabled,
    load_adapter,
    lora,
    merge,
    merge_and_unload,
    save_adapter,
    set_adapter,
    unmerge,
)
from .methods.prefix import PrefixTuningModel, prefix_tuning, ptuning_v2
from .methods.prompt import PromptTuningModel, prompt_tuning
from .model import GPT, GPTConfig
from .optim import AdamW
from .report import count_parameters, parameter_table, print_trainable_parameters
from .tokenizer import CharTokenizer
from .train import History, answer, evaluate, train

__all__ = [
    "GPT", "GPTConfig", "AdamW", "CharTokenizer", "History",
    "load_base", "load_model", "save_model", "fingerprint",
    "make_world", "make_corpus", "make_task", "make_fact_probe",
    "train", "evaluate", "answer",
    "count_parameters", "print_trainable_parameters",
    "full", "freeze", "parameter_table",
    "lora", "merge", "unmerge", "merge_and_unload", "disabled", "add_adapter", "set_adapter",
    "delete_adapter", "save_adapter", "load_adapter", "LoRALinear",
    "prompt_tuning", "prefix_tuning", "ptuning_v2", "PromptTuningModel", "PrefixTuningModel",
]

# Real checkpoints and more than one process (issue 14)
from .bpe import BPETokenizer, train_bpe  # noqa: E402
from .gpt2 import load_gpt2  # noqa: E402

__all__ += ["load_gpt2", "BPETokenizer", "train_bpe"]
