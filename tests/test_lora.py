"""LoRA: a fresh adapter is the base, only A and B learn, merge/unmerge/switch, adapter folders."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file
from torch.overrides import TorchFunctionMode

import minituner
from minituner import LoraConfig, LoraModel, PeftModel, fingerprint, fused, load_adapter, lora
from minituner.checkpoint import save_folder
from minituner.methods.lora import LoRALinear, lora_layers
from minituner.model import GPT, Linear, count_parameters
from minituner.train import train


def fill_B(model, seed, std=0.1, name=None):
    """A nonzero lora_B, as after training (a fresh one is zero, which hides most bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model.base).values():
            B = layer.lora_B[name or layer.active]
            B.copy_(torch.randn(B.shape, generator=g) * std)
    return model


def ids(n=3, T=12, seed=0):
    return torch.randint(3, 35, (n, T), generator=torch.Generator().manual_seed(seed))


class CountMatmuls(TorchFunctionMode):
    """Counts the matrix products a forward pass makes (x @ W.T and friends)."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in ("__matmul__", "matmul", "addmm"):
            self.n += 1
        return func(*args, **(kwargs or {}))


# ------------------------------------------------------------------ a fresh adapter


@pytest.mark.parametrize("targets", [("q_proj", "v_proj"), "all", "q_proj,k_proj", ("h.1.mlp.up_proj",)])
@pytest.mark.parametrize("use_rslora", [False, True])
def test_a_fresh_lora_equals_the_base_exactly(tiny, targets, use_rslora):
    model = lora(tiny, r=2, lora_alpha=4, target_modules=targets, lora_dropout=0.1, use_rslora=use_rslora)
    x = ids()
    assert torch.equal(model(x), tiny(x))  # B = 0, so ΔW = B·A = 0
    model.train()  # dropout on the LoRA path does not touch the base path either
    assert torch.equal(model(x), tiny(x))


@pytest.mark.parametrize("r", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("targets,per_block", [(("q_proj", "v_proj"), lambda d: 2 * (d + d)),
                                               ("all", lambda d: 4 * 2 * d + 2 * (d + 4 * d))])
def test_trainable_count_is_r_times_in_plus_out_per_target(tiny, r, targets, per_block):
    model = lora(tiny, r=r, lora_alpha=8, target_modules=targets)
    d, L = tiny.config.n_embd, tiny.config.n_layer
    trainable, total = count_parameters(model)
    assert trainable == r * per_block(d) * L
    assert total == count_parameters(tiny)[1] + trainable
    assert {n.rsplit(".", 2)[-2] for n, p in model.named_parameters() if p.requires_grad} == {"lora_A", "lora_B"}


def test_shapes_init_and_scaling(tiny):
    model = lora(tiny, r=4, lora_alpha=8)
    layer = model.base.h[0].attn.q_proj
    assert isinstance(layer, LoRALinear) and isinstance(model.base.h[0].attn.k_proj, Linear)
    assert not isinstance(model.base.h[0].attn.k_proj, LoRALinear)
    assert layer.lora_A["default"].shape == (4, 16) and layer.lora_B["default"].shape == (16, 4)
    assert layer.lora_A["default"].abs().sum() > 0 and layer.lora_B["default"].abs().sum() == 0
    assert layer.scale["default"] == 8 / 4
    assert lora(tiny, r=4, lora_alpha=8, use_rslora=True).base.h[0].attn.q_proj.scale["default"] == 8 / 2  # α/√r
    # the same seed gives the same A; another seed another A
    assert torch.equal(lora(tiny, r=4, seed=3).base.h[0].attn.q_proj.lora_A["default"],
                       lora(tiny, r=4, seed=3).base.h[0].attn.q_proj.lora_A["default"])
    assert not torch.equal(lora(tiny, r=4, seed=3).base.h[0].attn.q_proj.lora_A["default"],
                           lora(tiny, r=4, seed=4).base.h[0].attn.q_proj.lora_A["default"])


def test_the_article_letters_map_to_lora_B_and_lora_A(tiny):
    """Article: ΔW = AB, A m×r, B r×n. Ours: ΔW = scale·lora_B·lora_A. A_article = lora_B, B_article = lora_A."""
    layer = fill_B(lora(tiny, r=3, lora_alpha=3, target_modules=("up_proj",)), seed=0).base.h[0].mlp.up_proj
    m, n = layer.weight.shape  # (out, in) = (64, 16)
    A_article, B_article = layer.lora_B["default"], layer.lora_A["default"]
    assert A_article.shape == (m, 3) and B_article.shape == (3, n)
    assert torch.equal(layer.get_delta_weight("default"), 1.0 * (A_article @ B_article))  # scale α/r = 1
    x = torch.randn(5, n)
    Y = (layer.weight + A_article @ B_article) @ x.T + layer.base_layer.bias[:, None]  # Y = (W + ΔW)X, X columns
    torch.testing.assert_close(layer(x), Y.T)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("r", [0, -1, 17, 2.0])
def test_bad_rank_is_a_value_error(tiny, r):
    with pytest.raises(ValueError, match=r"LoraConfig\.r |rank r="):
        lora(tiny, r=r)


def test_rank_bound_is_per_module(tiny):
    lora(tiny, r=16, target_modules="all")  # min(in, out) = 16 for every module of the tiny model
    with pytest.raises(ValueError, match="min\\(in, out\\) = 16 of h.0.mlp.up_proj"):
        lora(tiny, r=17, target_modules=("up_proj",))  # 16→64: 17 > 16


def test_an_unknown_target_lists_the_modules_that_exist(tiny):
    with pytest.raises(ValueError) as e:
        lora(tiny, target_modules=("query_key_value",))
    for name in ("query_key_value", "q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "all"):
        assert name in str(e.value)
    with pytest.raises(ValueError, match="at least one module"):
        lora(tiny, target_modules=())


def test_methods_do_not_stack(tiny):
    model = lora(tiny)
    for stack in (lambda: lora(model), lambda: minituner.full(model), lambda: minituner.prefix_tuning(model),
                  lambda: minituner.prompt_tuning(model, 4)):
        with pytest.raises(ValueError, match="methods do not stack.*merge_and_unload"):
            stack()
    with pytest.raises(ValueError, match="LoRA layers inside"):
        lora(model.base)
    with pytest.raises(ValueError, match="methods do not stack"):
        lora(minituner.prompt_tuning(tiny, 4))


@pytest.mark.parametrize("alpha", [0, -1.0, float("nan"), float("inf")])
def test_alpha_must_be_finite_and_positive(tiny, alpha):
    with pytest.raises(ValueError, match="lora_alpha must be a finite number > 0"):
        lora(tiny, lora_alpha=alpha)


def test_merging_keeps_the_training_mode_and_a_merged_model_trains_nothing(tiny, classify):
    model = fill_B(lora(tiny, r=4), seed=0)
    for mode in (True, False):
        model.train(mode)
        model.merge_adapter()
        assert model.training is mode  # as PEFT: merging is not a switch to eval mode
        assert not model(ids()).requires_grad  # ΔW sits in the frozen W: lora_A, lora_B never reach the loss
        model.unmerge_adapter()
        assert model.training is mode
    model.train()
    train(model, classify, steps=1, lr=1e-3, batch_size=4, progress=False)


@pytest.mark.parametrize("dropout", [-0.1, 1.0])
def test_bad_dropout_is_a_value_error(tiny, dropout):
    with pytest.raises(ValueError, match="dropout"):
        lora(tiny, lora_dropout=dropout)


# ------------------------------------------------------------------ training


def test_only_lora_gets_gradients_and_the_base_never_moves(tiny, classify):
    fp = fingerprint(tiny)
    model = lora(tiny, r=4, lora_alpha=8, target_modules="all")
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    train(model, classify, steps=3, lr=1e-2, batch_size=8, weight_decay=0.1, progress=False)
    params = dict(model.named_parameters())
    assert all(torch.equal(params[n], t) for n, t in frozen.items())  # bit-identical
    assert all(not torch.equal(params[n], t) for n, t in lora_before.items())  # A and B both moved
    assert all(params[n].grad is None for n in frozen)
    assert all(params[n].grad is not None for n in lora_before)
    assert fingerprint(tiny) == fp  # the base object itself untouched


def test_dropout_is_seeded_and_only_in_training(tiny, classify):
    def run(seed):
        return train(lora(tiny, r=4, lora_dropout=0.5, seed=seed), classify, steps=4, lr=1e-2,
                     batch_size=8, progress=False).losses

    assert run(0) == run(0)
    assert run(0) != run(1)
    model = fill_B(lora(tiny, r=4, lora_dropout=0.5), seed=0)
    x = ids()
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))  # a new mask each call


# ------------------------------------------------------------------ merge, unmerge, disable


def test_merge_equals_unmerged_and_unmerge_restores_w(tiny):
    model = fill_B(lora(tiny, r=4, lora_alpha=8, target_modules="all"), seed=1)
    x = ids()
    W = {n: l.weight.detach().clone() for n, l in lora_layers(model.base).items()}
    before = model(x)
    model.merge_adapter()
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-6)
    assert all(not torch.equal(l.weight, W[n]) for n, l in lora_layers(model.base).items())
    with pytest.raises(ValueError, match="already merged"):
        model.merge_adapter()
    model.unmerge_adapter()
    for n, l in lora_layers(model.base).items():
        torch.testing.assert_close(l.weight, W[n], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="not merged"):
        model.unmerge_adapter()


def test_a_merged_model_makes_exactly_the_base_s_matmuls(tiny, monkeypatch):
    import minituner.methods.lora as lora_layer

    model = fill_B(lora(tiny, r=4, lora_alpha=8, target_modules="all"), seed=2)
    x = ids()
    counts = {}

    def low_rank():
        monkeypatch.setattr(lora_layer, "IN_WEIGHT_FACTOR", 0)
        return model

    def in_weight():
        monkeypatch.setattr(lora_layer, "IN_WEIGHT_FACTOR", 10**9)
        return model

    with CountMatmuls() as c:  # as written (not fused): every product of the base, then x·Aᵀ and (x·Aᵀ)·Bᵀ
        model(x)
    readable = c.n
    for name, make in (("base", lambda: tiny), ("lora", low_rank), ("in weight", in_weight),
                       ("merged", lambda: model.merge_adapter() or model), ("unloaded", lambda: model.merge_and_unload())):
        m = make()
        with CountMatmuls() as c, fused():
            m(x)
        counts[name] = c.n
    assert readable == counts["base"] + 2 * tiny.config.n_layer + 2 * 6 * tiny.config.n_layer
    n_lora = 6 * tiny.config.n_layer  # every projection of every block
    stacked = 2 * tiny.config.n_layer  # q, k, v in one product instead of three (CausalSelfAttention.qkv)
    assert counts["lora"] == counts["base"] + stacked + 2 * n_lora  # unmerged: x·Aᵀ and (x·Aᵀ)·Bᵀ per target
    assert counts["in weight"] == counts["base"] + n_lora  # or W + s·B·A per target, then the base's products
    assert counts["merged"] == counts["base"] == counts["unloaded"]


@pytest.mark.parametrize("n_in, n_out, r", [(8, 12, 2), (64, 64, 4)])
def test_low_rank_and_in_weight_paths_give_the_same_y_and_gradients(monkeypatch, n_in, n_out, r):
    """LoRALinear.forward takes x Wᵀ + b + s·(x Aᵀ) Bᵀ or x (W + s·B·A)ᵀ + b by size
    (IN_WEIGHT_FACTOR); both must give the same output and gradients (float64)."""
    import minituner.methods.lora as lora_layer

    base = Linear(n_in, n_out).double()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        base.weight.copy_(torch.randn(n_out, n_in, generator=g, dtype=torch.float64))
        base.bias.copy_(torch.randn(n_out, generator=g, dtype=torch.float64))
    layer = LoRALinear(base)
    layer.add("a", r, alpha=3.0, dropout=0.0, use_rslora=False, seed=1)
    layer.active = "a"
    with torch.no_grad():
        layer.lora_B["a"].copy_(torch.randn(n_out, r, generator=g, dtype=torch.float64))
    x = torch.randn(3, 5, n_in, generator=g, dtype=torch.float64)
    results = []
    for factor in (0, 10**9):  # 0: always the low-rank path; huge: always in the weight (fused)
        monkeypatch.setattr(lora_layer, "IN_WEIGHT_FACTOR", factor)
        xi = x.clone().requires_grad_(True)
        with fused():
            y = layer(xi)
        y.backward(torch.cos(y))
        results.append([y.detach(), xi.grad, layer.lora_A["a"].grad.clone(), layer.lora_B["a"].grad.clone()])
        layer.lora_A["a"].grad = layer.lora_B["a"].grad = None
    for low_rank, in_weight in zip(*results):
        torch.testing.assert_close(low_rank, in_weight, rtol=1e-12, atol=1e-12)


def test_merge_and_unload_gives_the_base_s_structure(tiny):
    model = fill_B(lora(tiny, r=4, lora_alpha=8), seed=3)
    x = ids()
    plain = model.merge_and_unload()
    assert not lora_layers(plain) and type(plain) is type(tiny)
    assert {n: t.shape for n, t in plain.state_dict().items()} == {n: t.shape for n, t in tiny.state_dict().items()}
    torch.testing.assert_close(plain(x), model(x), rtol=1e-5, atol=1e-6)
    assert not model.merged  # the LoRA model itself is left as it was


def test_disabled_runs_the_base_and_keeps_the_adapter(tiny):
    model = fill_B(lora(tiny, r=4, lora_alpha=8), seed=4)
    x = ids()
    with_adapter = model(x)
    with model.disable_adapter():
        assert torch.equal(model(x), tiny(x))
    assert torch.equal(model(x), with_adapter)
    model.merge_adapter()
    with model.disable_adapter():  # a merged model is unmerged inside the block
        torch.testing.assert_close(model(x), tiny(x), rtol=1e-5, atol=1e-6)
    assert model.merged
    torch.testing.assert_close(model(x), with_adapter, rtol=1e-5, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(n_in=st.integers(1, 24), n_out=st.integers(1, 24), r_frac=st.floats(0, 1), alpha=st.floats(0.5, 32),
       rs=st.booleans(), rows=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_merge_equivalence_for_any_shape(n_in, n_out, r_frac, alpha, rs, rows, seed):
    """x Wᵀ + b + s·(x Aᵀ) Bᵀ = x (W + s·B A)ᵀ + b, for every shape and rank."""
    g = torch.Generator().manual_seed(seed)
    base = Linear(n_in, n_out)
    with torch.no_grad():
        base.weight.copy_(torch.randn(n_out, n_in, generator=g))
        base.bias.copy_(torch.randn(n_out, generator=g))
    r = 1 + int(r_frac * (min(n_in, n_out) - 1))
    layer = LoRALinear(base)
    layer.add("a", r, alpha, 0.0, rs, seed)
    with torch.no_grad():
        layer.lora_B["a"].copy_(torch.randn(n_out, r, generator=g))
    layer.active = "a"
    x = torch.randn(rows, n_in, generator=g)
    unmerged = layer(x)
    W0 = layer.weight.detach().clone()
    layer.merge("a")
    merged = layer(x)
    scale = alpha / r**0.5 if rs else alpha / r
    big = 1 + scale * layer.lora_B["a"].abs().max().item()
    torch.testing.assert_close(merged, unmerged, rtol=1e-5, atol=1e-5 * big * n_in)
    torch.testing.assert_close(merged, x @ (W0 + scale * layer.lora_B["a"] @ layer.lora_A["a"]).T + layer.base_layer.bias)


# ------------------------------------------------------------------ several adapters


def expected_weight(base, n, layer, name):
    """W_base + ΔW of adapter `name` (W_base alone where that adapter has no matrices)."""
    W = base.get_submodule(n).weight
    return W + layer.get_delta_weight(name) if name in layer.lora_A else W


def two_adapters(tiny):
    model = fill_B(lora(tiny, r=4, lora_alpha=8), seed=5)
    model.add_adapter("other", LoraConfig(r=2, lora_alpha=4, target_modules="all", seed=1))
    assert model.active_adapter == "default"  # as PEFT: the active adapter stays, the new one is frozen
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        n for n, _ in model.named_parameters() if n.endswith(".default")}
    model.set_adapter("other")
    fill_B(model, seed=6)
    single = {"default": fill_B(lora(tiny, r=4, lora_alpha=8), seed=5),
              "other": fill_B(lora(tiny, r=2, lora_alpha=4, target_modules="all", seed=1), seed=6)}
    return model, single


def test_add_switch_and_remove_named_adapters(tiny):
    model, single = two_adapters(tiny)
    x = ids()
    assert model.active_adapter == "other"  # set_adapter made it the active, trainable one
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(".other") for n in trainable)
    for name in ("default", "other", "default"):  # unmerged switching is exact
        model.set_adapter(name)
        assert torch.equal(model(x), single[name](x))
        assert all(n.endswith("." + name) for n, p in model.named_parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="no adapter named 'nope'"):
        model.set_adapter("nope")
    with pytest.raises(ValueError, match="already has an adapter named 'other'"):
        model.add_adapter("other", LoraConfig())
    model.delete_adapter("default")
    assert list(model.peft_config) == ["other"] and model.active_adapter == "other"
    assert not any(".default" in n for n in model.state_dict())
    assert torch.equal(model(x), single["other"](x))
    with pytest.raises(ValueError, match="only adapter"):
        model.delete_adapter("other")


def test_the_article_s_switch_on_merged_weights(tiny):
    """(W + ΔW) − ΔW + ΔW′ = W + ΔW′: in place to float32 rounding; exactly from an untouched copy."""
    model, single = two_adapters(tiny)
    x = ids()
    model.set_adapter("default")
    model.merge_adapter()
    for name in ("other", "default", "other"):
        model.set_adapter(name)  # in place: W ← W − ΔW + ΔW′
        torch.testing.assert_close(model(x), single[name](x), rtol=1e-5, atol=1e-5)
        for n, layer in lora_layers(model.base).items():
            torch.testing.assert_close(layer.weight, expected_weight(tiny, n, layer, name), rtol=0, atol=1e-6)
    model.unmerge_adapter()
    model.merge_adapter(keep_copy=True)  # the exact way: W ← W_base + ΔW′ from an untouched copy
    for n, layer in lora_layers(model.base).items():  # the copy is of the (once-rounded) unmerged W
        torch.testing.assert_close(layer.w_base, tiny.get_submodule(n).weight, rtol=0, atol=1e-6)
    w_base = {n: layer.w_base.clone() for n, layer in lora_layers(model.base).items()}
    for name in ("default", "other", "default", "other"):
        model.set_adapter(name)
        for n, layer in lora_layers(model.base).items():
            expected = w_base[n] + layer.get_delta_weight(name) if name in layer.lora_A else w_base[n]
            assert torch.equal(layer.weight, expected)
    model.unmerge_adapter()
    assert all(torch.equal(layer.weight, w_base[n]) and layer.w_base is None for n, layer in lora_layers(model.base).items())


def test_in_place_switching_drifts_less_in_float64(tiny):
    """Many in-place switches accumulate rounding; float64 keeps it ~1e9 times smaller."""
    drift = {}
    for dtype in (torch.float32, torch.float64):
        base = tiny.to(dtype)
        model, _ = two_adapters(base)
        model.set_adapter("default")
        model.merge_adapter()
        for i in range(200):
            model.set_adapter(("other", "default")[i % 2])
        drift[dtype] = max((layer.weight - expected_weight(base, n, layer, "default")).abs().max().item()
                           for n, layer in lora_layers(model.base).items())
    tiny.to(torch.float32)
    assert 0 < drift[torch.float32] < 1e-5
    assert drift[torch.float64] < drift[torch.float32] * 1e-6
    model, _ = two_adapters(tiny)  # the exact way: no drift at all, however many switches
    model.set_adapter("default")
    model.merge_adapter(keep_copy=True)
    for i in range(200):
        model.set_adapter(("other", "default")[i % 2])
    assert all(torch.equal(layer.weight, expected_weight(tiny, n, layer, "default"))
               for n, layer in lora_layers(model.base).items())


# ------------------------------------------------------------------ adapter files


def test_save_and_load_an_adapter(tiny, tmp_path):
    model = fill_B(lora(tiny, r=4, lora_alpha=8, target_modules="q_proj,v_proj"), seed=7)
    x = ids()
    path = tmp_path / "classify"
    assert model.save_pretrained(path) == str(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classify"]  # no temporary leftovers
    info = json.loads((path / "adapter_config.json").read_text())
    assert info["method"] == "lora" and info["base_fingerprint"] == fingerprint(tiny)
    assert info["config"]["r"] == 4 and info["config"]["lora_alpha"] == 8
    assert info["config"]["target_modules"] == ["q_proj", "v_proj"]
    tensors = load_file(str(path / "adapter_model.safetensors"))
    names = [f"h.{i}.attn.{t}" for i in (0, 1) for t in ("q_proj", "v_proj")]
    assert sorted(tensors) == sorted(f"{n}.{ab}" for n in names for ab in ("lora_A", "lora_B"))
    assert sum(t.numel() for t in tensors.values()) == count_parameters(model)[0]  # the LoRA tensors only
    loaded = load_adapter(tiny, path)
    assert isinstance(loaded, LoraModel) and torch.equal(loaded(x), model(x))
    assert not lora_layers(tiny)  # the base stays plain
    # into a LoRA model of the same base, as a second named adapter
    other = lora(tiny, r=2)
    other.load_adapter(path, adapter_name="classify")
    assert other.active_adapter == "default" and not other.training  # as PEFT: frozen, eval mode
    assert not any(p.requires_grad for n, p in other.named_parameters() if n.endswith(".classify"))
    other.set_adapter("classify")
    assert torch.equal(other(x), model(x))
    assert other.list_adapters() == ["default", "classify"]


def test_an_adapter_refuses_another_base(tiny, tmp_path):
    lora(tiny, r=4).save_pretrained(tmp_path / "a")
    other = GPT(tiny.config, seed=1)
    with pytest.raises(ValueError, match="trained on the base with fingerprint"):
        PeftModel.from_pretrained(other, tmp_path / "a")
    with pytest.raises(ValueError, match="trained on the base with fingerprint"):
        lora(other, r=4).load_adapter(tmp_path / "a", adapter_name="x")


@pytest.mark.parametrize("tamper", ["missing", "extra", "shape"])
def test_an_adapter_file_with_wrong_tensors_is_refused(tiny, tmp_path, tamper):
    lora(tiny, r=4).save_pretrained(tmp_path / "a")
    st_path, cfg_path = tmp_path / "a" / "adapter_model.safetensors", tmp_path / "a" / "adapter_config.json"
    tensors = load_file(str(st_path))
    if tamper == "missing":
        tensors.pop("h.1.attn.v_proj.lora_B")
    elif tamper == "extra":
        tensors["h.1.attn.k_proj.lora_A"] = torch.zeros(4, 16)
    else:
        tensors["h.1.attn.v_proj.lora_B"] = torch.zeros(16, 5)
    save_file(tensors, str(st_path))
    with pytest.raises(ValueError, match="not written by minituner's save"):  # no record of the save: caught first
        PeftModel.from_pretrained(tiny, tmp_path / "a")
    info = json.loads(cfg_path.read_text())
    st_path.unlink()  # a save refuses to replace files it did not write
    cfg_path.unlink()
    save_folder(tmp_path / "a", {k: info[k] for k in ("method", "config", "base_fingerprint")}, tensors)  # a consistent forgery
    target = lora(tiny, r=2)
    with pytest.raises(ValueError, match="missing tensors|unexpected tensors|has shape"):
        target.load_adapter(tmp_path / "a", adapter_name="b")
    assert target.list_adapters() == ["default"] and target.active_adapter == "default"  # nothing half-added
    with pytest.raises(ValueError, match="missing tensors|unexpected tensors|has shape"):
        PeftModel.from_pretrained(tiny, tmp_path / "a")
