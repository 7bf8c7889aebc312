"""minituner against Hugging Face transformers + PEFT on the same weights (issue 9, item 6).

The shipped base is copied into transformers' GPT2LMHeadModel (q, k, v stacked into the
fused ``c_attn``; Conv1D keeps weights as (in, out), the transpose of our Linear), and
each method's tensors into the matching PEFT config. Equal logits pin down what PEFT
computes, positions included: with k virtual tokens first, the real tokens are numbered
from k, and prompt tuning's virtual tokens get wpe[0..k-1] added (GPT-2 adds wpe to
inputs_embeds).
"""

import pytest
import torch
from optional import HUGGING_FACE, optional

import minituner

transformers = optional("transformers")
peft = optional("peft")
pytestmark = HUGGING_FACE

TOL = 1e-4


@pytest.fixture(scope="module")
def base():
    return minituner.load_base()


@pytest.fixture(scope="module")
def idx(base):
    return minituner.make_task("classify").val.x[:6, :40]  # (B, T) real prompts


def to_gpt2(base) -> "transformers.GPT2LMHeadModel":
    """Our GPT's weights in a GPT2LMHeadModel (eval mode, no dropout, eager attention)."""
    c = base.config
    cfg = transformers.GPT2Config(vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd,
                                  n_layer=c.n_layer, n_head=c.n_head, activation_function="gelu_new",
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
                                  tie_word_embeddings=True)
    hf = transformers.GPT2LMHeadModel(cfg)
    sd = {"transformer.wte.weight": base.wte.weight, "transformer.wpe.weight": base.wpe.weight,
          "transformer.ln_f.weight": base.ln_f.weight, "transformer.ln_f.bias": base.ln_f.bias}
    for i, b in enumerate(base.h):
        a, p = b.attn, f"transformer.h.{i}."
        sd[p + "attn.c_attn.weight"] = torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]).T  # (C, 3C)
        sd[p + "attn.c_attn.bias"] = torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias])
        sd[p + "attn.c_proj.weight"], sd[p + "attn.c_proj.bias"] = a.o_proj.weight.T, a.o_proj.bias
        sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"] = b.mlp.up_proj.weight.T, b.mlp.up_proj.bias
        sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"] = b.mlp.down_proj.weight.T, b.mlp.down_proj.bias
        for ln in ("ln_1", "ln_2"):
            sd[p + f"{ln}.weight"], sd[p + f"{ln}.bias"] = getattr(b, ln).weight, getattr(b, ln).bias
    missing, unexpected = hf.load_state_dict({k: v.detach().clone() for k, v in sd.items()}, strict=False)
    assert not unexpected and all(k == "lm_head.weight" or "attn.bias" in k or "masked_bias" in k for k in missing)
    hf.tie_weights()
    return hf.eval()


@torch.no_grad()
def test_base_logits_equal_gpt2(base, idx):
    assert (to_gpt2(base)(idx).logits - base(idx)).abs().max() < TOL


@torch.no_grad()
def test_lora_qv_equals_peft_lora_on_c_attn_before_and_after_merge(base, idx):
    r, alpha = 4, 16
    ours = minituner.lora(base, r=r, lora_alpha=alpha, target_modules=("q_proj", "v_proj"), seed=3)
    g = torch.Generator().manual_seed(0)
    for name, p in ours.named_parameters():
        if "lora_B" in name:  # B = 0 at init; give it values so ΔW is not zero
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    # One PEFT LoRA of rank 2r on the fused c_attn holds both: A = [A_q; A_v] (2r, C) and
    # B (3C, 2r) with B_q in the q rows' first r columns, B_v in the v rows' last r columns,
    # so B·A = [B_q A_q; 0; B_v A_v]. PEFT's scale α'/(2r) equals ours α/r when α' = 2α.
    hf = peft.get_peft_model(to_gpt2(base), peft.LoraConfig(r=2 * r, lora_alpha=2 * alpha, target_modules=["c_attn"],
                                                             fan_in_fan_out=True, lora_dropout=0.0))
    C = base.config.n_embd
    for i, blk in enumerate(ours.base.h):
        q, v = blk.attn.q_proj, blk.attn.v_proj
        A_q, B_q = q.lora_A["default"], q.lora_B["default"]
        A_v, B_v = v.lora_A["default"], v.lora_B["default"]
        layer = hf.base_model.model.transformer.h[i].attn.c_attn
        B = torch.zeros(3 * C, 2 * r)
        B[:C, :r], B[2 * C:, r:] = B_q, B_v
        layer.lora_A["default"].weight.copy_(torch.cat([A_q, A_v]))  # (2r, C)
        layer.lora_B["default"].weight.copy_(B)  # (3C, 2r)
    hf.eval()
    assert (hf(idx).logits - ours(idx)).abs().max() < TOL
    assert (hf(idx).logits - base(idx)).abs().max() > 1e-2  # the adapters do change the logits
    merged_ours, merged_hf = ours.merge_and_unload(), hf.merge_and_unload()
    assert (merged_hf(idx).logits - merged_ours(idx)).abs().max() < TOL


@torch.no_grad()
def test_prompt_tuning_equals_peft_prompt_tuning(base, idx):
    k = 5
    P = torch.randn(k, base.config.n_embd, generator=torch.Generator().manual_seed(1)) * 0.5  # (k, C)
    hf = peft.get_peft_model(to_gpt2(base), peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=k))
    hf.prompt_encoder["default"].embedding.weight.copy_(P)
    hf.eval()
    theirs = hf(input_ids=idx).logits[:, k:]  # (B, T, V): PEFT returns the virtual rows too
    ours = minituner.prompt_tuning(base, num_virtual_tokens=k)
    ours.prompt.copy_(P)
    assert (theirs - ours(idx)).abs().max() < TOL


@torch.no_grad()
def test_prefix_tuning_equals_peft_prefix_tuning(base, idx):
    k, c = 6, base.config
    P = torch.randn(c.n_layer, 2, k, c.n_embd, generator=torch.Generator().manual_seed(2)) * 0.5  # (L, 2, k, C)
    hf = peft.get_peft_model(to_gpt2(base), peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=k,
                                                                     prefix_projection=False))
    # PEFT's row t is [P_k(layer 0), P_v(layer 0), P_k(layer 1), ...] of virtual token t.
    hf.prompt_encoder["default"].embedding.weight.copy_(P.permute(2, 0, 1, 3).reshape(k, -1))
    hf.eval()
    ours = minituner.prefix_tuning(base, num_virtual_tokens=k, prefix_projection=False)
    ours.prefix.copy_(P)
    assert (hf(input_ids=idx).logits - ours(idx)).abs().max() < TOL
