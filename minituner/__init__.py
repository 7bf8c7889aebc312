"""minituner: learn how language models are fine-tuned by building it.

    base = minituner.load_base()                      # the shipped pretrained tiny GPT
    task = minituner.make_task("classify")            # train / val / test splits of a downstream task
    model = minituner.full(base)                      # or freeze / prompt_tuning / prefix_tuning / lora
    minituner.print_trainable_parameters(model)
    history = minituner.train(model, task, steps=200, lr=1e-4, eval_every=25, patience=4)
    minituner.evaluate(model, task.test)              # once, at the end
"""

from .checkpoint import fingerprint, load_base, load_model, save_model
from .data import make_corpus, make_fact_probe, make_task, make_world
from .dataset import Dataset, Split, from_pairs
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
    "make_world", "make_corpus", "make_task", "make_fact_probe", "Dataset", "Split", "from_pairs",
    "train", "evaluate", "answer",
    "count_parameters", "print_trainable_parameters",
    "full", "freeze", "parameter_table",
    "lora", "merge", "unmerge", "merge_and_unload", "disabled", "add_adapter", "set_adapter",
    "delete_adapter", "save_adapter", "load_adapter", "LoRALinear",
    "prompt_tuning", "prefix_tuning", "ptuning_v2", "PromptTuningModel", "PrefixTuningModel",
]
