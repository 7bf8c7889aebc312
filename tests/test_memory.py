"""The memory estimator: exact at minituner's size against a measured step, and at 7B against known counts."""

import pytest
import torch

import minituner
from minituner.cli import main
from minituner.memory import estimate_memory, gpt_shape, llama_shape, measure_step
from minituner.model import count_parameters

ALL = ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj")
CASES = [  # (estimator method and options, the model that method builds)
    ("full", {}, lambda b: minituner.full(b)),
    ("freeze", {"trainable_layers": 2}, lambda b: minituner.freeze(b, trainable_layers=2)),
    ("lora", {"r": 4}, lambda b: minituner.lora(b, r=4)),
    ("lora", {"r": 2, "targets": ALL}, lambda b: minituner.lora(b, r=2, target_modules=ALL)),
    ("prompt", {"num_virtual_tokens": 4}, lambda b: minituner.prompt_tuning(b, num_virtual_tokens=4)),
    ("ptuning-v2", {"num_virtual_tokens": 8}, lambda b: minituner.ptuning_v2(b, num_virtual_tokens=8)),
]


@pytest.mark.parametrize("method, options, build", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_estimate_matches_a_measured_step_of_the_shipped_base(base, classify, method, options, build):
    batch = classify.train.batch(8, torch.Generator().manual_seed(0))
    B, T = batch[0].shape
    measured = measure_step(build(base), batch)
    est = estimate_memory(gpt_shape(base.config), method, bits=32, batch_size=B, seq_len=T, **options)
    assert (est.weights, est.gradients, est.optimizer) == (measured["weights"], measured["gradients"],
                                                          measured["optimizer"])
    assert est.activations == pytest.approx(measured["activations"], rel=0.005)


def test_gpt_shape_counts_minituners_parameters(tiny):
    assert gpt_shape(tiny.config).n_params() == count_parameters(tiny)[1]


def test_llama_7b_shape_and_peft_s_lora_count():
    shape = llama_shape(7e9)
    assert (shape.n_layer, shape.n_embd, shape.mlp_hidden) == (32, 4096, 11008)
    assert shape.n_params() == 6_738_415_616  # LLaMA-7B (Touvron et al. 2023)
    est = estimate_memory(7e9, "lora", r=8)
    assert est.trainable == 4_194_304  # PEFT's count for LLaMA-7B, r=8 on q_proj and v_proj
    full = estimate_memory(7e9, "full", bits=16)
    assert full.weights + full.gradients + full.optimizer == 18 * shape.n_params()  # mixed precision AdamW
    pure = estimate_memory(7e9, "full", bits=16, pure=True)
    assert pure.weights + pure.gradients + pure.optimizer == 8 * shape.n_params()


def test_checkpointing_keeps_less_and_frozen_blocks_keep_nothing():
    full, ckpt = (estimate_memory(7e9, "full", checkpointing=c) for c in (False, True))
    assert ckpt.activations < full.activations / 5
    top1, top2 = (estimate_memory(7e9, "freeze", trainable_layers=n) for n in (1, 2))
    assert top1.activations < top2.activations < full.activations / 8


@pytest.mark.parametrize("kwargs, words", [
    ({"method": "lora", "bits": 4}, "QLoRA"),
    ({"method": "qlora", "bits": 16}, "QLoRA"),
    ({"method": "full", "bits": 32, "pure": True}, "pure"),
    ({"method": "dora"}, "no layout for method .dora."),
    ({"method": "lora", "targets": ("c_attn",)}, "targets"),
])
def test_bad_settings_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        estimate_memory(7e9, **kwargs)


def test_the_memory_command_prints_the_estimate_beside_llama_factory(capsys):
    assert main(["memory", "--params", "7e9", "--method", "lora", "--r", "8", "--bits", "16"]) == 0
    out = capsys.readouterr().out
    assert "6,738,415,616" in out
    assert "its table 16 GB; its rule 2x for x billion parameters 14.0 GB" in out  # the cell and the rule, each named
