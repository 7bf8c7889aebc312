"""PEFT's behaviour where no PEFT run can be compared (issue 23): every method (full, freeze, BitFit,
DoRA, QLoRA too) disables, loads frozen and counts as PEFT's verbs say; LoRA's bias (in place) and
modules_to_save (a copy per adapter) save, load and disable; PEFT's refused fields say what to use."""

import pytest
import torch

import minituner
from minituner import PeftModel, get_peft_model
from minituner.methods import METHODS
from minituner.methods.causal_lm import causal_lm_loss
from minituner.methods.options import ConfigError

X = torch.tensor([[3, 7, 1, 9, 4], [5, 5, 8, 2, 6]])  # (B, T)


def trained(model):
    """Move every trainable tensor, so a method's model is no longer its base."""
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.3)
    return model


@pytest.mark.parametrize("key", list(METHODS))
def test_every_method_disables_loads_frozen_and_counts(tiny, tmp_path, key):
    model = trained(get_peft_model(tiny, METHODS[key].make_config()))
    before = {n: p.requires_grad for n, p in model.named_parameters()}
    want = model(X).detach()
    assert not torch.allclose(want, tiny(X), atol=1e-4)
    # QLoRA's base is the 4-bit one: a fresh model (B = 0) is what disabling must give
    base_logits = get_peft_model(tiny, METHODS[key].make_config())(X) if key == "qlora" else tiny(X)
    with model.disable_adapter():
        torch.testing.assert_close(model(X), base_logits, atol=1e-5, rtol=0)
        assert model(input_ids=X).logits.shape[-2] >= X.size(1)
    assert torch.equal(model(X), want)  # everything back: values and requires_grad
    assert {n: p.requires_grad for n, p in model.named_parameters()} == before
    assert model.get_nb_trainable_parameters()[0] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert model.print_trainable_parameters() is None
    model.save_pretrained(tmp_path / key)
    again = PeftModel.from_pretrained(tiny, tmp_path / key)
    assert not again.training and torch.equal(again(X), want)
    assert not any(p.requires_grad for p in again.parameters())  # every method loads frozen (PEFT >= 0.22)
    if key not in ("prompt", "prefix", "ptuning-v2"):  # PEFT refuses is_trainable for prompt learning
        live = PeftModel.from_pretrained(tiny, tmp_path / key, is_trainable=True)
        assert live.training and live.get_nb_trainable_parameters() == model.get_nb_trainable_parameters()


def test_lora_bias_in_place_and_modules_to_save_per_adapter_save_load_and_disable(tiny, tmp_path):
    model = minituner.lora(tiny, r=2, bias="lora_only", modules_to_save=["ln_f"])
    trains = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {n for n in trains if "lora_" not in n} == {f"base.h.{i}.attn.{t}_proj.base_layer.bias" for i in (0, 1)
                                                      for t in "qv"} | {"base.ln_f.modules_to_save.default.weight",
                                                                        "base.ln_f.modules_to_save.default.bias"}
    trained(model)
    assert torch.equal(model.base.ln_f.original_module.weight, tiny.ln_f.weight)  # the base's ln_f never trains
    with model.disable_adapter():
        torch.testing.assert_close(model(X), tiny(X), atol=1e-6, rtol=0)
        model.save_pretrained(tmp_path / "a")  # inside: the trained tensors, as PEFT
    again = PeftModel.from_pretrained(tiny, tmp_path / "a")
    assert torch.equal(again(X), model(X))
    assert minituner.lora(tiny, bias="all").get_nb_trainable_parameters()[0] == (
        minituner.lora(tiny).get_nb_trainable_parameters()[0] + minituner.bitfit(tiny).get_nb_trainable_parameters()[0])
    with pytest.raises(ValueError, match="only one adapter may have bias"):
        model.add_adapter("b", minituner.LoraConfig(bias="all"))


def test_a_second_modules_to_save_adapter_has_its_own_copy(tiny, tmp_path):
    model = trained(minituner.lora(tiny, r=2, modules_to_save=["ln_f"]))
    want = model(X).detach()
    model.add_adapter("b", minituner.LoraConfig(r=2, modules_to_save=["ln_f"]))
    model.set_adapter("b")  # b's copy of ln_f is the base's, untouched by default's training
    torch.testing.assert_close(model(X), tiny(X), atol=1e-6, rtol=0)
    model.set_adapter("default")
    model.delete_adapter("b")
    assert torch.equal(model(X), want)
    model.save_pretrained(tmp_path / "a")
    model.add_adapter("c", minituner.LoraConfig(r=2))
    model.load_adapter(tmp_path / "a", "loaded")
    model.set_adapter("loaded")
    assert torch.equal(model(X), want)
    model.set_adapter("c")  # c has no copy: the original runs
    torch.testing.assert_close(model(X), tiny(X), atol=1e-6, rtol=0)
    model.delete_adapter("default")
    torch.testing.assert_close(model.unload()(X), tiny(X), atol=1e-6, rtol=0)


def test_disable_adapter_needs_nothing_of_the_base_passed_in(tiny):
    import copy
    base = copy.deepcopy(tiny)
    model = trained(minituner.bitfit(base))
    with torch.no_grad():
        base.ln_f.bias.add_(1.0)
    del base
    with model.disable_adapter():
        with model.disable_adapter():  # nested: the inner block's end keeps the base
            pass
        torch.testing.assert_close(model(X), tiny(X), atol=1e-6, rtol=0)


def test_init_lora_weights_and_target_modules_forms(tiny):
    def a_std(**kw):
        return minituner.lora(tiny, r=4, **kw).base.h[0].attn.q_proj.lora_A["default"].std().item()
    assert 0.15 < a_std(init_lora_weights="gaussian") < 0.35  # N(0, 1/r): std 1/4
    assert torch.equal(minituner.lora(tiny, init_lora_weights="gaussian")(X), tiny(X))  # B = 0
    assert not torch.allclose(minituner.lora(tiny, init_lora_weights=False)(X), tiny(X))  # B random too
    for bad in ("pissa", 1, None):
        with pytest.raises(ConfigError, match="init_lora_weights"):
            minituner.LoraConfig(init_lora_weights=bad)
    names = {t: sorted({n.split(".lora_A")[0] for n, _ in minituner.lora(tiny, target_modules=t).named_parameters()
                        if ".lora_A." in n}) for t in ("all-linear", r"h\.1\.mlp\..*", "q_proj,v_proj", "q_proj")}
    assert len(names["all-linear"]) == 12 and names[r"h\.1\.mlp\..*"] == ["base.h.1.mlp.down_proj", "base.h.1.mlp.up_proj"]
    assert len(names["q_proj,v_proj"]) == 4 and len(names["q_proj"]) == 2
    with pytest.raises(ConfigError, match="regular expression"):
        minituner.LoraConfig(target_modules="h.[0")
    with pytest.raises(ValueError, match="matches none"):
        minituner.lora(tiny, target_modules=r"h\.9\..*")


@pytest.mark.parametrize("field", ["fan_in_fan_out", "use_dora", "prompt_tuning_init", "layers_to_transform"])
def test_peft_fields_minituner_refuses_say_what_to_use(field):
    config = minituner.PromptTuningConfig if field.startswith("prompt") else minituner.LoraConfig
    with pytest.raises(ValueError, match=f"PEFT's {field} is not taken here: .+"):
        config(**{field: True})
    with pytest.raises(ConfigError, match="task_type"):
        config(task_type="SEQ_CLS")


def test_causal_lm_loss_is_the_shifted_mean_over_counted_labels():
    logits = torch.randn(2, 4, 7, generator=torch.Generator().manual_seed(0))  # (B, T, V)
    labels = torch.tensor([[1, 2, -100, 4], [-100, 5, 6, 0]])
    pairs = [(b, t) for b in range(2) for t in range(3) if labels[b, t + 1] != -100]  # t predicts labels[t + 1]
    want = sum(-torch.log_softmax(logits[b, t], -1)[labels[b, t + 1]] for b, t in pairs) / len(pairs)
    torch.testing.assert_close(causal_lm_loss(logits, labels), want)


def test_peft_calls_on_a_prompt_model(tiny):
    model = minituner.prompt_tuning(tiny, 3).eval()
    out = model(input_ids=X, labels=X)
    assert out.logits.shape == (2, 3 + 5, tiny.config.vocab_size)  # PEFT's k + T rows
    torch.testing.assert_close(out.logits[:, 3:], model(X))  # the real rows are model(idx)'s
    torch.testing.assert_close(out.loss, causal_lm_loss(out.logits, torch.cat([torch.full((2, 3), -100), X], 1)))
    assert torch.equal(model.generate(input_ids=X, max_new_tokens=2), model.generate(X, 2))
    with pytest.raises(TypeError, match="give the tokens once"):
        model(X, input_ids=X)
    with pytest.raises(ValueError, match="attention_mask"):
        model(input_ids=X, attention_mask=torch.zeros_like(X))
