"""The article's §5 table maps onto minituner's module names, and its shapes follow the modelling code."""

import pytest

import minituner
from minituner.methods.lora import lora_layers
from minituner.model_families import (
    FAMILIES,
    family,
    lora_parameters_per_block,
    minituner_targets,
    target_shapes,
)


def test_the_table_is_the_articles():
    assert [f.name for f in FAMILIES] == ["LLaMA", "LLaMA-2", "BLOOM", "BLOOMZ", "Falcon", "Baichuan", "Baichuan2",
                                         "InternLM", "Qwen", "ChatGLM3", "Phi-1.5"]
    assert {",".join(f.targets) for f in FAMILIES} == {"q_proj,v_proj", "query_key_value", "W_pack", "c_attn", "Wqkv"}
    with pytest.raises(ValueError, match="LLaMA"):
        family("GPT-4")


@pytest.mark.parametrize("f", FAMILIES, ids=[f.name for f in FAMILIES])
def test_each_family_maps_onto_minituners_modules(f, base):
    """Split families name minituner's own modules; a fused name does not exist in minituner (but GPT-2's
    c_attn, Qwen's too, is taken as PEFT means it: q, k and v), and its minituner equivalent adapts every
    projection the fused matrix computes (q, k and v)."""
    if f.fused and f.targets != ("c_attn",):
        with pytest.raises(ValueError, match="q_proj"):
            minituner.lora(base, target_modules=f.targets)
    else:
        assert lora_layers(minituner.lora(base, target_modules=f.targets).base).keys() == lora_layers(
            minituner.lora(base, target_modules=minituner_targets(f)).base).keys()
    model = minituner.lora(base, r=2, target_modules=minituner_targets(f))
    adapted = {name.rsplit(".", 1)[-1] for name in lora_layers(model.base)}
    assert adapted == {"q_proj", "k_proj", "v_proj"} if f.fused else set(f.targets)
    assert len(lora_layers(model.base)) == len(adapted) * base.config.n_layer


def test_fused_shapes_follow_the_heads():
    """3C × C only when every head has its own k and v; multi-query Falcon-7B and ChatGLM3's two groups are not."""
    assert target_shapes(family("Baichuan")) == [("W_pack", 3 * 4096, 4096)]
    assert target_shapes(family("Falcon")) == [("query_key_value", 4544 + 2 * 64, 4544)]
    assert target_shapes(family("ChatGLM3")) == [("query_key_value", 4096 + 2 * 2 * 128, 4096)]
    assert target_shapes(family("LLaMA")) == [("q_proj", 4096, 4096), ("v_proj", 4096, 4096)]


def test_fused_and_split_defaults_train_the_same_count_when_every_head_has_kv():
    """r·(C + 3C) on the fused matrix = 2·r·(C + C) on q_proj and v_proj: both 4rC."""
    r, C = 8, 4096
    assert lora_parameters_per_block(family("Qwen"), r) == lora_parameters_per_block(family("LLaMA"), r) == 4 * r * C
    assert lora_parameters_per_block(family("Falcon"), r) < 4 * r * 4544
