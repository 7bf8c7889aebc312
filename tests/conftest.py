import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch

import minituner
from minituner.model import GPT, GPTConfig


@pytest.fixture
def tiny():
    """A small random GPT for fast structural tests (vocabulary of the real tokenizer)."""
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=minituner.CharTokenizer().vocab_size, block_size=96, n_layer=2, n_head=2, n_embd=16), seed=0)


@pytest.fixture(scope="session")
def base():
    """The shipped pretrained base (tests must not modify it: methods copy it)."""
    return minituner.load_base()


@pytest.fixture(scope="session")
def classify():
    return minituner.make_task("classify")
