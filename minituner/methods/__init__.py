"""One file per fine-tuning method; each takes a base model and returns the model to train."""

from .freeze import freeze as freeze  # `X as X`: an explicit re-export (ruff F401)
from .full import full as full
from .lora import LoRALinear as LoRALinear
from .lora import add_adapter as add_adapter
from .lora import delete_adapter as delete_adapter
from .lora import disabled as disabled
from .lora import load_adapter as load_adapter
from .lora import lora as lora
from .lora import merge as merge
from .lora import merge_and_unload as merge_and_unload
from .lora import save_adapter as save_adapter
from .lora import set_adapter as set_adapter
from .lora import unmerge as unmerge
from .prefix import PrefixTuningModel as PrefixTuningModel
from .prefix import prefix_tuning as prefix_tuning
from .prefix import ptuning_v2 as ptuning_v2
from .prompt import PromptTuningModel as PromptTuningModel
from .prompt import prompt_tuning as prompt_tuning
