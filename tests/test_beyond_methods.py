"""BitFit, (IA)³, DoRA and QLoRA: the shape every method has, their formulas, merging, and the frozen 4-bit base."""

import math

import pytest
import torch

from minituner import fingerprint
from minituner.analysis import magnitude_direction
from minituner.functional import cross_entropy
from minituner.methods import PeftModel, get_peft_model
from minituner.methods.bitfit import BitFitConfig
from minituner.methods.dora import DoraConfig
from minituner.methods.ia3 import IA3Config
from minituner.methods.lora import lora_layers
from minituner.methods.qlora import QLoraConfig
from minituner.model import GPT, count_parameters
from minituner.quant import Linear4bit, dequantize_nf4
from minituner.train import train
from minituner.verify.vectors import perturb


def closed_form(config, c):
    """Each method docstring's trainable count, d = n_embd, L = n_layer."""
    d, L = c.n_embd, c.n_layer
    if isinstance(config, BitFitConfig):
        return 11 * d * L + d
    if isinstance(config, IA3Config):
        return 6 * d * L
    r = config.r  # DoRA and QLoRA below target q_proj and v_proj (d → d)
    return 2 * L * (r * 2 * d + (d if isinstance(config, DoraConfig) else 0))


CONFIGS = [BitFitConfig(), IA3Config(), DoraConfig(r=2, lora_alpha=4), QLoraConfig(r=2, lora_alpha=4)]
IDS = ["bitfit", "ia3", "dora", "qlora"]


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_shape_count_and_the_base_left_alone(tiny, classify, config):
    fp = fingerprint(tiny)
    model = get_peft_model(tiny, config)
    assert isinstance(model, PeftModel) and model.config is config
    assert count_parameters(model)[0] == closed_form(config, tiny.config)
    assert model.get_nb_trainable_parameters()[0] == count_parameters(model)[0]
    train(model, classify, steps=2, lr=1e-2, batch_size=4, progress=False)
    assert fingerprint(tiny) == fp


@pytest.mark.parametrize("config", CONFIGS[:3], ids=IDS[:3])
def test_fresh_model_equals_the_base(tiny, classify, config):
    x = classify.test.x[:4]
    torch.testing.assert_close(get_peft_model(tiny, config)(x), tiny(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_save_and_load_round_trip(tiny, classify, config, tmp_path):
    model = perturb(get_peft_model(tiny, config), seed=0)
    model.save_pretrained(tmp_path / "a")
    again = PeftModel.from_pretrained(tiny, tmp_path / "a")
    assert type(again) is type(model)
    x = classify.test.x[:4]
    torch.testing.assert_close(again(x), model(x), atol=0, rtol=0)


def test_bitfit_trains_only_the_chosen_biases(tiny):
    model = get_peft_model(tiny, BitFitConfig(bias_modules=("q_proj", "up_proj")))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names == [f"base.h.{i}.{m}.bias" for i in range(2) for m in ("attn.q_proj", "mlp.up_proj")]
    with pytest.raises(ValueError, match="modules with a bias: .*ln_f"):
        get_peft_model(tiny, BitFitConfig(bias_modules=("wte",)))
    with pytest.raises(ValueError, match="bias_modules"):
        BitFitConfig(bias_modules=())


def test_ia3_scales_keys_values_and_the_mlp_hidden(tiny):
    """l ⊙ (x Wᵀ + b) on k and v; (l ⊙ h) Wᵀ + b on down_proj; merge folds diag(l) into W."""
    model = perturb(get_peft_model(tiny, IA3Config()), seed=1)
    k, down = model.base.h[0].attn.k_proj, model.base.h[0].mlp.down_proj
    x, h = torch.randn(3, 16), torch.randn(3, 64)
    W, b = k.base_layer.weight, k.base_layer.bias
    torch.testing.assert_close(k(x), k.ia3_l * (x @ W.T + b))
    torch.testing.assert_close(down(h), (down.ia3_l * h) @ down.base_layer.weight.T + down.base_layer.bias)
    plain = model.merge_and_unload()
    assert isinstance(plain, GPT) and not any("ia3" in n for n, _ in plain.named_parameters())
    idx = torch.randint(0, tiny.config.vocab_size, (2, 10))
    torch.testing.assert_close(plain(idx), model(idx), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="feedforward_module"):
        IA3Config(target_modules=("k_proj",), feedforward_modules=("down_proj",))


def test_dora_formula_and_merge(tiny):
    model = perturb(get_peft_model(tiny, DoraConfig(r=2, lora_alpha=4)), seed=2)
    layer = model.base.h[1].attn.v_proj
    W0, A, B, m = layer.weight, layer.lora_A["default"], layer.lora_B["default"], layer.magnitude["default"]
    V = W0 + (4 / 2) * B @ A  # W₀ + (α/r)·BA
    Wp = m[:, None] * V / V.norm(dim=1, keepdim=True)
    x = torch.randn(5, 16)
    torch.testing.assert_close(layer(x), x @ Wp.T + layer.base_layer.bias)
    idx = torch.randint(0, tiny.config.vocab_size, (2, 10))
    before = model(idx)
    torch.testing.assert_close(model.merge_and_unload()(idx), before, atol=1e-5, rtol=0)
    model.merge_adapter()
    torch.testing.assert_close(model(idx), before, atol=1e-5, rtol=0)
    model.unmerge_adapter()
    assert torch.equal(layer.weight, W0)
    with pytest.raises(ValueError, match="lora_dropout"):
        DoraConfig(lora_dropout=0.1)


def test_dora_magnitude_gets_a_gradient(tiny, classify):
    model = get_peft_model(tiny, DoraConfig(r=2, lora_alpha=4))
    x, y, mask = classify.train.batch(4, torch.Generator().manual_seed(0))
    cross_entropy(model(x), y, mask).backward()
    grads = {n.rsplit(".", 2)[-2] for n, p in model.named_parameters() if p.grad is not None}
    assert grads == {"lora_A", "lora_B", "magnitude"}


def test_qlora_trains_lora_only_and_never_moves_the_codes(tiny, classify):
    model = get_peft_model(tiny, QLoraConfig(r=2, lora_alpha=4, target_modules="all"))
    quant = [m for m in model.modules() if isinstance(m, Linear4bit)]
    assert len(quant) == 6 * tiny.config.n_layer  # every Linear, the LoRA-wrapped ones included
    codes = {n: b.clone() for n, b in model.named_buffers()}
    train(model, classify, steps=3, lr=1e-2, batch_size=4, progress=False)
    assert all(torch.equal(b, codes[n]) for n, b in model.named_buffers())
    assert any(layer.lora_B["default"].abs().sum() > 0 for layer in lora_layers(model.base).values())
    plain = model.merge_and_unload()  # float32: Ŵ + ΔW
    q = model.base.h[0].attn.q_proj
    torch.testing.assert_close(plain.h[0].attn.q_proj.weight,
                               dequantize_nf4(q.base_layer.quant_state()) + q.get_delta_weight("default"))
    idx = classify.test.x[:4]
    torch.testing.assert_close(plain(idx), model(idx), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="merge_and_unload"):
        model.merge_adapter()
    b = model.base_bytes()
    assert b["nf4"] < b["fp32"] / 7
    trainable = count_parameters(model)[0]  # the 4-bit weights count as frozen parameters, one per weight
    assert model.get_nb_trainable_parameters() == (trainable, count_parameters(tiny)[1] + trainable)


def test_magnitude_direction_separates_rescaling_from_rotation():
    """Rows scaled by s: ΔM = mean |s_i − 1|·‖W₀_i‖, ΔD = 0; rows rotated (lengths kept): ΔM = 0, ΔD = 1 − cos θ."""
    w0 = torch.randn(6, 8, generator=torch.Generator().manual_seed(0))
    s = torch.linspace(0.5, 1.5, 6)
    dm, dd = magnitude_direction(w0, s[:, None] * w0)
    assert dm == pytest.approx(float(((s - 1).abs() * w0.norm(dim=1)).mean()), rel=1e-5) and dd == pytest.approx(0, abs=1e-6)
    theta = 0.3
    c, s_ = math.cos(theta), math.sin(theta)
    rot = torch.eye(8)
    rot[:2, :2] = torch.tensor([[c, -s_], [s_, c]])  # turns the plane of the first two coordinates by θ
    w0[:, 2:] = 0  # every row in the plane the rotation turns
    dm, dd = magnitude_direction(w0, w0 @ rot.T)
    assert dm == pytest.approx(0, abs=1e-6) and dd == pytest.approx(1 - math.cos(theta), rel=1e-4)
    with pytest.raises(ValueError, match="one shape"):
        magnitude_direction(w0, w0.T)
