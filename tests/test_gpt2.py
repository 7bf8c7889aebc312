"""load_gpt2 against transformers: the same GPT-2 folder gives the same logits and generations."""

import json

import pytest
import torch
from optional import HUGGING_FACE, optional
from tiny_gpt2 import PAIRS

import minituner
from minituner.bpe import BPETokenizer, train_bpe
from minituner.checkpoint import fingerprint, save_model
from minituner.data import Dataset, corpus_sentences, encode_examples, make_world, task_examples
from minituner.gpt2 import load_any_base, load_gpt2
from minituner.tokenizer import CharTokenizer

transformers = optional("transformers")
pytestmark = HUGGING_FACE


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


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A GPT-2 folder with its own vocab.json + merges.txt (tests/tiny_gpt2.py)."""
    from tiny_gpt2 import write_tiny_gpt2

    return write_tiny_gpt2(tmp_path_factory.mktemp("tiny_gpt2"))


def test_load_any_base_takes_each_kind_of_base_with_its_tokenizer(tiny_folder, tmp_path):
    model, tok = load_any_base(tiny_folder)
    assert isinstance(tok, BPETokenizer) and tok.stoi == BPETokenizer.from_files(tiny_folder).stoi
    assert fingerprint(model) == fingerprint(load_gpt2(tiny_folder))
    shipped, char = load_any_base(None)
    assert isinstance(char, CharTokenizer) and fingerprint(shipped) == fingerprint(minituner.load_base())
    save_model(shipped, tmp_path / "pre" / "base")  # what `minituner pretrain --out pre` writes
    for path in (tmp_path / "pre", tmp_path / "pre" / "base"):
        model, tok = load_any_base(path)
        assert isinstance(tok, CharTokenizer) and fingerprint(model) == fingerprint(shipped)
    with pytest.raises(FileNotFoundError, match="not a base: give a Hugging Face GPT-2 folder"):
        load_any_base(tmp_path)
    other = tmp_path / "other"  # a vocabulary larger than the model's: another model's tokenizer
    other.mkdir()
    for name in ("config.json", "model.safetensors"):
        (other / name).symlink_to(tiny_folder / name)
    train_bpe(corpus_sentences(make_world(0)), num_merges=200).save(other)
    with pytest.raises(ValueError, match="the tokenizer is not this model's"):
        load_any_base(other)


def test_pairs_encode_with_gpt2s_tokenizer_the_end_marker_one_token(tiny_folder):
    _, tok = load_any_base(tiny_folder)
    data = Dataset.from_jsonl(PAIRS, tokenizer=tok)
    (end,) = tok.encode("\n")
    for split in (data.train, data.val, data.test):
        for row, (prompt, answer) in enumerate(split.examples):
            ids = tok.encode(prompt) + tok.encode(answer) + [end]  # the marker a token of its own
            n = len(ids) - 1
            assert split.x[row, :n].tolist() == ids[:-1] and split.y[row, :n].tolist() == ids[1:]
            want = torch.zeros(split.x.size(1))
            want[len(tok.encode(prompt)) - 1:n] = 1.0  # the answer's tokens and the marker count, pad never
            assert torch.equal(split.mask[row], want)
            assert split.y[row, n:].eq(tok.pad_id).all()  # pad = GPT-2's <|endoftext|>, masked out
    with pytest.raises(ValueError, match="newline"):
        Dataset.from_pairs([("a", "b\nc")] * 3, tokenizer=tok)


@pytest.mark.parametrize("method", list(minituner.METHODS))
def test_every_method_trains_on_a_gpt2_folder_and_answers(tiny_folder, tmp_path, method):
    base, tok = load_any_base(tiny_folder)
    data = Dataset.from_jsonl(PAIRS, tokenizer=tok)
    entry = minituner.METHODS[method]  # the config's own defaults (random init: no character text on BPE), its fixed fields
    small = {"r": 2} if "r" in entry.config.__dataclass_fields__ else {}
    model = minituner.get_peft_model(base, entry.config(**entry.fixed, **small))
    before = minituner.evaluate(model, data.train)["loss"]
    minituner.train(model, data, steps=4, lr=1e-2, batch_size=8, seed=0, progress=False)
    assert minituner.evaluate(model, data.train)["loss"] < before
    reply = minituner.answer(model, tok, data.test.examples[0][0], max_new_tokens=4)
    ids = model.generate(torch.tensor([tok.encode(data.test.examples[0][0])]), 4, stop_id=tok.encode("\n")[0])
    assert reply == tok.decode(ids[0, len(tok.encode(data.test.examples[0][0])):]).split("\n")[0]
    model.save_pretrained(tmp_path / method)
    again = minituner.PeftModel.from_pretrained(base, tmp_path / method)
    assert torch.equal(again(data.test.x), model(data.test.x))


def test_init_text_on_a_gpt2_base_is_read_by_its_bpe(tiny_folder, tmp_path):
    """init_text is encoded by the base's own tokenizer (methods/virtual_tokens.py): on a GPT-2 folder's
    base its BPE, so the prompt starts as the phrase's token embeddings; the command line takes it too."""
    from minituner.cli import main

    base = minituner.gpt2.load_any_base(tiny_folder)[0]
    ids = minituner.BPETokenizer.from_files(tiny_folder).encode("the cat")
    model = minituner.prompt_tuning(base, num_virtual_tokens=len(ids), init="text", init_text="the cat")
    assert torch.equal(model.prompt.detach(), base.wte.weight[ids])
    assert main(["finetune", "--method", "prompt", "--base", str(tiny_folder), "--data", str(PAIRS), "--out",
                 str(tmp_path / "o"), "--init", "text", "--init-text", "the cat", "--num-virtual-tokens", "7",
                 "--steps", "1", "--batch-size", "4", "--eval-every", "1"]) == 0
