"""load_gpt2 against transformers: the same GPT-2 folder gives the same logits and generations."""

import json

import pytest
import torch

import minituner
from minituner.bpe import train_bpe
from minituner.data import Dataset, corpus_sentences, encode_examples, make_world, task_examples
from minituner.gpt2 import load_gpt2

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """A small random GPT2LMHeadModel saved as a Hugging Face folder (no download)."""
    cfg = transformers.GPT2Config(vocab_size=300, n_positions=64, n_embd=32, n_layer=3, n_head=4,
                                   bos_token_id=299, eos_token_id=299)
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # random LayerNorms and biases too, so a swapped or untransposed tensor shows
        for name, p in hf.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.normal_(0.0 if name.endswith("bias") else 1.0, 0.1)
    folder = tmp_path_factory.mktemp("gpt2")
    hf.save_pretrained(folder, safe_serialization=True)
    return hf, folder


def test_logits_and_greedy_generations_match_transformers(hf_folder):
    hf, folder = hf_folder
    model = load_gpt2(folder)
    assert model.config.block_size == 64 and model.config.vocab_size == 300
    idx = torch.randint(0, 300, (3, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model(idx), hf(idx).logits
    assert (ours - theirs).abs().max().item() <= 1e-4
    gen = model.generate(idx[:, :5], max_new_tokens=12)
    ref = hf.generate(idx[:, :5], max_new_tokens=12, do_sample=False, pad_token_id=0,
                      attention_mask=torch.ones(3, 5, dtype=torch.long))
    assert torch.equal(gen, ref)


def test_c_attn_is_split_in_q_k_v_order_and_conv1d_transposed(hf_folder):
    hf, folder = hf_folder
    model = load_gpt2(folder)
    C = 32
    c_attn = hf.transformer.h[1].attn.c_attn.weight  # (C, 3C), Conv1D (in, out)
    assert torch.equal(model.h[1].attn.k_proj.weight, c_attn[:, C:2 * C].T)
    assert torch.equal(model.h[1].mlp.down_proj.weight, hf.transformer.h[1].mlp.c_proj.weight.T)


def edit_config(folder, tmp_path, **changes):
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "model.safetensors").symlink_to(folder / "model.safetensors")
    return tmp_path


@pytest.mark.parametrize("changes, words", [
    ({"model_type": "llama"}, "model_type"),
    ({"activation_function": "relu"}, "activation_function"),
    ({"layer_norm_epsilon": 1e-6}, "layer_norm_epsilon"),
    ({"n_layer": 4}, "c_attn"),
])
def test_other_architectures_are_refused(hf_folder, tmp_path, changes, words):
    with pytest.raises(ValueError, match=words):
        load_gpt2(edit_config(hf_folder[1], tmp_path, **changes))


def test_missing_files_say_what_is_needed(hf_folder, tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_gpt2(tmp_path)
    (tmp_path / "config.json").write_text((hf_folder[1] / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_gpt2(tmp_path)


def test_the_hubs_layout_loads_the_same(hf_folder, tmp_path):
    """openai-community/gpt2 names tensors without 'transformer.' and keeps the causal-mask buffers."""
    from safetensors.torch import load_file, save_file

    state = {k.removeprefix("transformer."): v for k, v in load_file(hf_folder[1] / "model.safetensors").items()}
    state["h.0.attn.bias"] = torch.tril(torch.ones(1, 1, 48, 48))
    save_file(state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((hf_folder[1] / "config.json").read_text())
    a, b = load_gpt2(hf_folder[1]).state_dict(), load_gpt2(tmp_path).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_lora_and_prompt_tuning_train_on_a_loaded_gpt2_with_a_bpe_tokenizer(hf_folder, tmp_path):
    base = load_gpt2(hf_folder[1])
    world = make_world(0)
    tok = train_bpe(corpus_sentences(world), num_merges=40)  # ids < 300, the checkpoint's vocabulary
    pairs = task_examples(world, "classify")
    data = Dataset("classify", *(encode_examples(split, pairs[split], tok) for split in ("train", "val", "test")),
                   tok, world)
    x = data.test.x[:4]
    for model in (minituner.lora(base, r=2), minituner.prompt_tuning(base, num_virtual_tokens=4)):
        if isinstance(model, minituner.PromptTuningModel):
            assert model(x).shape == base(x).shape
        else:
            assert torch.equal(model(x), base(x))  # a fresh LoRA is its base: lora_B = 0
        before = minituner.evaluate(model, data.train)["loss"]
        minituner.train(model, data, steps=8, lr=1e-2, batch_size=16, seed=0, progress=False)
        assert minituner.evaluate(model, data.train)["loss"] < before
        assert isinstance(minituner.answer(model, tok, "it says meow, so it is the", max_new_tokens=3), str)
        model.save_pretrained(tmp_path / model.config.method)  # the adapter folder, checked against this base
        again = minituner.PeftModel.from_pretrained(base, tmp_path / model.config.method)
        assert torch.equal(again(x), model(x))
