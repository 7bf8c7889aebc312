"""PEFT's own adapter format on a GPT-2 folder, both directions: what minituner saves PEFT loads to the
same logits, and what PEFT saves minituner loads to the same logits (minituner/peft_format.py)."""

import json

import pytest
import torch
from optional import HUGGING_FACE, optional
from tiny_gpt2 import PAIRS, write_tiny_gpt2

import minituner
from minituner import load_adapter
from minituner.cli import main
from minituner.gpt2 import load_any_base
from minituner.peft_format import load_peft_format, save_peft_format

transformers = optional("transformers")
peft = optional("peft")
pytestmark = HUGGING_FACE

TOL = 1e-4
X = torch.tensor([[3, 7, 1, 9, 4]])  # (B, T)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_tiny_gpt2(tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(scope="module")
def base(folder):
    return load_any_base(folder)[0]


@pytest.fixture(scope="module")
def idx(base):
    return torch.randint(0, base.config.vocab_size, (3, 12), generator=torch.Generator().manual_seed(1))


def hf_model(folder):
    return transformers.GPT2LMHeadModel.from_pretrained(folder).eval()


@torch.no_grad()
def randomize(model, seed=0):
    """Every trainable tensor random, so an adapter changes the logits (lora_B starts at zero)."""
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        if p.requires_grad:
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model.eval()


def peft_logits(folder, adapter, idx, k=0):
    model = peft.PeftModel.from_pretrained(hf_model(folder), adapter).eval()
    with torch.no_grad():
        return model(input_ids=idx).logits[:, k:]  # prompt tuning: PEFT returns the virtual rows too


MODELS = {
    "lora q,v": lambda b: minituner.lora(b, r=2, lora_alpha=6, target_modules=("q_proj", "v_proj")),
    "lora all, rslora": lambda b: minituner.lora(b, r=3, lora_alpha=4, target_modules="all", use_rslora=True),
    "lora k, o, one layer": lambda b: minituner.lora(b, r=2, target_modules=("h.1.attn.k_proj", "o_proj")),
    "prompt tuning": lambda b: minituner.prompt_tuning(b, num_virtual_tokens=4),
    "prefix tuning (MLP)": lambda b: minituner.prefix_tuning(b, num_virtual_tokens=3, prefix_projection=True),
    "p-tuning v2": lambda b: minituner.ptuning_v2(b, num_virtual_tokens=3),
}


@pytest.mark.parametrize("kind", MODELS)
def test_peft_loads_what_minituner_saves_and_minituner_reads_it_back(folder, base, idx, tmp_path, kind):
    ours = randomize(MODELS[kind](base))
    save_peft_format(ours, tmp_path / "a", folder)
    k = ours.num_virtual_tokens if kind == "prompt tuning" else 0
    with torch.no_grad():
        expected = ours(idx)
        assert (expected - base(idx)).abs().max() > 1e-2  # the adapter does change the logits
        assert (peft_logits(folder, tmp_path / "a", idx, k) - expected).abs().max() <= TOL
        again = load_peft_format(base, tmp_path / "a")
        assert (again(idx) - expected).abs().max() <= TOL
    if kind.startswith("lora"):  # split back into the very adapters it came from
        assert again.config == ours.config
        assert all(torch.equal(t, ours.adapter_state_dict()[n]) for n, t in again.adapter_state_dict().items())


PEFT_CONFIGS = {
    "lora c_attn": lambda: peft.LoraConfig(r=2, lora_alpha=5, target_modules=["c_attn"], fan_in_fan_out=True,
                                           init_lora_weights=False),
    "lora all four": lambda: peft.LoraConfig(r=2, lora_alpha=3, target_modules=["c_attn", "c_proj", "c_fc"],
                                             fan_in_fan_out=True, init_lora_weights=False, use_rslora=True),
    "prompt tuning": lambda: peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
    "prefix tuning": lambda: peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3),
    "prefix with projection": lambda: peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3,
                                                               prefix_projection=True, encoder_hidden_size=16),
}


@pytest.mark.parametrize("kind", PEFT_CONFIGS)
def test_minituner_loads_what_peft_saves(folder, base, idx, tmp_path, kind):
    torch.manual_seed(2)
    theirs = peft.get_peft_model(hf_model(folder), PEFT_CONFIGS[kind]())
    with torch.no_grad():  # PEFT's prompt init is random already; its LoRA's B random via init_lora_weights
        for name, p in theirs.named_parameters():
            if p.requires_grad and "prompt_encoder" in name:
                p.normal_(0, 0.5)
    theirs.save_pretrained(tmp_path / "a")
    k = 4 if kind == "prompt tuning" else 0
    ours = load_adapter(base, tmp_path / "a")
    with torch.no_grad():
        assert (peft_logits(folder, tmp_path / "a", idx, k) - ours(idx)).abs().max() <= TOL
        assert (ours(idx) - base(idx)).abs().max() > 1e-2


def test_cli_finetunes_a_gpt2_folder_with_lora_and_peft_loads_it(folder, base, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["finetune", "--method", "lora", "--base", str(folder), "--data", str(PAIRS), "--out", str(out),
                 "--steps", "4", "--batch-size", "8", "--eval-every", "2", "--r", "4"]) == 0
    assert json.loads((out / "adapter_config.json").read_text())["peft_type"] == "LORA"
    ours = minituner.PeftModel.from_pretrained(base, out)  # the folder `finetune --base` wrote, as a PEFT user reads it
    assert not ours.training and not any(p.requires_grad for p in ours.parameters())
    assert ours.config.r == 4 and any(t.abs().sum() > 0 for n, t in ours.adapter_state_dict().items() if "lora_B" in n)
    idx = torch.tensor([minituner.BPETokenizer.from_files(folder).encode("who says meow?")])
    with torch.no_grad():
        assert (peft_logits(folder, out, idx) - ours(idx)).abs().max() <= TOL
    capsys.readouterr()
    assert main(["generate", "--base", str(folder), "--adapter", str(out), "--max-new-tokens", "3", "who says meow?"]) == 0
    assert capsys.readouterr().out.startswith("who says meow?" + minituner.answer(ours, load_any_base(folder)[1],
                                                                                   "who says meow?", 3))


def test_what_peft_format_refuses(folder, base, tmp_path, tiny):
    with pytest.raises(ValueError, match="PEFT's format is written for lora, prompt_tuning, prefix_tuning"):
        save_peft_format(minituner.dora(base, r=2), tmp_path / "d", folder)
    with pytest.raises(ValueError, match="not trained on"):
        save_peft_format(minituner.lora(tiny, r=2), tmp_path / "t", folder)
    with pytest.raises(ValueError, match="not a Hugging Face GPT-2 folder"):
        save_peft_format(minituner.lora(base, r=2), tmp_path / "x", tmp_path)
    save_peft_format(minituner.lora(base, r=2), tmp_path / "l", folder)
    with pytest.raises(ValueError, match="fingerprint"):  # minituner's own export remembers its base
        load_peft_format(tiny, tmp_path / "l")
    minituner.lora(base, r=2).save_pretrained(tmp_path / "own")
    with pytest.raises(ValueError, match="no peft_type"):
        load_peft_format(base, tmp_path / "own")


@pytest.mark.parametrize("kind", ["lora c_attn", "prompt tuning"])
def test_from_pretrained_reads_peft_folders_frozen_in_eval_mode_unless_trainable(folder, base, tmp_path, kind):
    """One from_pretrained for both formats, with PEFT's semantics on each (PEFT 0.22: prompt learning
    loads frozen, and refuses is_trainable=True)."""
    theirs = peft.get_peft_model(hf_model(folder), PEFT_CONFIGS[kind]())
    theirs.save_pretrained(tmp_path / "a")
    loaded = minituner.PeftModel.from_pretrained(base, tmp_path / "a")
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    if kind == "lora c_attn":
        again = minituner.PeftModel.from_pretrained(base, tmp_path / "a", is_trainable=True)
        trains = {n for n, p in again.named_parameters() if p.requires_grad}
        assert again.training and trains and all("lora_" in n for n in trains)
    else:
        with pytest.raises(ValueError, match="is_trainable=True is refused for prompt and prefix tuning"):
            minituner.PeftModel.from_pretrained(base, tmp_path / "a", is_trainable=True)
    lora_model = minituner.lora(base, r=2)
    if kind == "lora c_attn":  # a PEFT folder also loads as another adapter, frozen
        lora_model.load_adapter(tmp_path / "a", "b")
        lora_model.set_adapter("b")
        with torch.no_grad():
            assert torch.equal(lora_model.eval()(X), loaded(X))
    else:
        with pytest.raises(ValueError, match="holds a 'prompt_tuning' model, not a LoRA adapter"):
            lora_model.load_adapter(tmp_path / "a", "b")


def test_a_second_adapter_peft_saved_to_its_subfolder_loads(folder, base, idx, tmp_path):
    """PEFT's save_pretrained writes adapter "default" to dir and any other to dir/<name>; both load."""
    theirs = peft.get_peft_model(hf_model(folder), PEFT_CONFIGS["lora c_attn"]())
    theirs.add_adapter("b", PEFT_CONFIGS["lora all four"]())
    randomize(theirs.base_model)
    theirs.save_pretrained(tmp_path / "a")
    ours = minituner.PeftModel.from_pretrained(base, tmp_path / "a")
    ours.load_adapter(tmp_path / "a" / "b", "b")
    ours.set_adapter("b")
    theirs.set_adapter("b")
    with torch.no_grad():
        assert (theirs.eval()(input_ids=idx).logits - ours(idx)).abs().max() <= TOL


def test_a_folder_of_another_program_is_named_as_such_never_damaged(base, tmp_path):
    from safetensors.torch import save_file

    d = tmp_path / "other"
    d.mkdir()
    (d / "adapter_config.json").write_text(json.dumps({"r": 2}))
    save_file({"x": torch.zeros(2)}, str(d / "adapter_model.safetensors"))
    with pytest.raises(ValueError, match="not written by minituner's save") as e:
        minituner.PeftModel.from_pretrained(base, d)
    assert "damaged" not in str(e.value)


BESIDE = {
    "bias all, ln_f and wte saved": dict(bias="all", modules_to_save=["ln_f", "wte"]),
    "bias lora_only on q, v": dict(bias="lora_only"),
    "bias all on o_proj, up_proj": dict(bias="all", target_modules=("o_proj", "up_proj")),
}


@pytest.mark.parametrize("kind", BESIDE)
def test_bias_and_modules_to_save_cross_in_peft_format_both_ways(folder, base, idx, tmp_path, kind):
    """PEFT's key names and config fields for the biases and copies a LoRA trains beside A, B: PEFT loads
    the same model, and a folder PEFT trained so loads into minituner to the same logits."""
    ours = randomize(minituner.lora(base, r=2, **BESIDE[kind]))
    save_peft_format(ours, tmp_path / "a", folder)
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert config["bias"] == ours.config.bias and config["modules_to_save"] == (
        list(ours.config.modules_to_save) if ours.config.modules_to_save else None)
    with torch.no_grad():
        expected = ours(idx)
        assert (peft_logits(folder, tmp_path / "a", idx) - expected).abs().max() <= TOL
        assert (load_peft_format(base, tmp_path / "a")(idx) - expected).abs().max() <= TOL
    torch.manual_seed(3)
    kw = BESIDE[kind]
    for saved in ([], ["wte"], kw.get("modules_to_save") or []):
        theirs = peft.get_peft_model(hf_model(folder), peft.LoraConfig(
            r=2, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True, init_lora_weights=False,
            bias=kw["bias"], modules_to_save=saved or None))
        randomize(theirs)
        theirs.save_pretrained(tmp_path / str(saved))
        if "ln_f" in saved and kw["bias"] == "all":  # PEFT trained the original ln_f's bias too: refused
            with pytest.raises(ValueError, match="bias of a module to save's original"):
                load_adapter(base, tmp_path / str(saved))
            continue
        with torch.no_grad():
            got = load_adapter(base, tmp_path / str(saved))(idx)
            assert (peft_logits(folder, tmp_path / str(saved), idx) - got).abs().max() <= TOL


def test_modules_to_save_of_a_linear_is_refused_in_peft_format(folder, base, tmp_path):
    with pytest.raises(ValueError, match="modules_to_save='h.0.attn.o_proj' is a Linear"):
        save_peft_format(minituner.lora(base, r=2, modules_to_save=["h.0.attn.o_proj"]), tmp_path / "a", folder)


def test_cli_ptuning_v2_on_a_gpt2_folder_starts_from_its_bpe_text_or_at_random(folder, base, tmp_path):
    """P-Tuning v2's default init_text is read by the base's BPE (tests/test_gpt2.py); --init random drops it."""
    ids = torch.tensor(minituner.BPETokenizer.from_files(folder).encode("the animal that is "))
    want = minituner.methods.virtual_tokens.text_keys_values(base, ids)  # (L, 2, n, C)
    assert torch.equal(minituner.ptuning_v2(base, num_virtual_tokens=len(ids), init="text",
                                            init_text="the animal that is ").prefix.detach(), want)
    for init in ([], ["--init", "random"]):
        out = tmp_path / f"run{len(init)}"
        assert main(["finetune", "--method", "ptuning-v2", "--base", str(folder), "--data", str(PAIRS), "--out",
                     str(out), "--steps", "1", "--batch-size", "4", "--eval-every", "1", *init]) == 0
