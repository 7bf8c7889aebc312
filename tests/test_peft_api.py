"""The one API of every method: configs, get_peft_model, save_pretrained / from_pretrained folders."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import minituner
from minituner import GPT, PeftModel, get_peft_model
from minituner.methods import (
    MODELS,
    FullConfig,
    LoraConfig,
    PrefixTuningConfig,
    PromptTuningConfig,
)


def test_configs_have_peft_defaults_round_trip_and_reject_unknown_names():
    assert (LoraConfig().r, LoraConfig().lora_alpha, LoraConfig().lora_dropout) == (8, 8, 0.0)
    assert PrefixTuningConfig().prefix_projection is False  # PEFT's default: that is P-Tuning v2
    for config_cls in MODELS:
        c = config_cls()
        assert config_cls.from_dict(json.loads(json.dumps(c.to_dict()))) == c
        with pytest.raises(ValueError, match="unknown argument.*alpha.*accepted: "):
            config_cls(alpha=16)
    with pytest.raises(ValueError, match="accepted: r, lora_alpha, target_modules"):
        LoraConfig(targets=("q_proj",))


@pytest.mark.parametrize("kwargs,match", [
    (dict(r=0), r"LoraConfig\.r "), (dict(r=2.0), r"LoraConfig\.r "), (dict(lora_dropout=1.0), "lora_dropout"),
    (dict(lora_alpha=0), "lora_alpha"), (dict(lora_alpha=float("nan")), "lora_alpha"),
    (dict(target_modules=()), "at least one module"),
])
def test_lora_config_values_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LoraConfig(**kwargs)


def test_get_peft_model_refuses_what_it_cannot_build(tiny):
    with pytest.raises(TypeError, match="config must be one of"):
        get_peft_model(tiny, {"method": "lora"})
    with pytest.raises(TypeError, match="needs a GPT"):
        get_peft_model(torch.nn.Linear(2, 2), FullConfig())
    with pytest.raises(ValueError, match="methods do not stack"):
        minituner.full(minituner.lora(tiny))


def test_a_module_is_never_shadowed_by_a_function():
    import minituner.methods.lora as lora_module

    assert callable(lora_module.lora_layers) and callable(minituner.lora)


def test_one_method_one_file():
    """Each method's config and model (and its layer) live in one file of minituner/methods/."""
    for m in minituner.METHODS.values():
        assert m.config.__module__ == m.model.__module__, (m.key, m.config.__module__, m.model.__module__)


MAX_METHOD_FILE = 500  # lines: a method file reads in one sitting (LoRA, with its layer and verbs, is the longest)


def test_a_method_file_reads_in_one_sitting():
    for f in Path(minituner.methods.__file__).parent.glob("*.py"):
        assert len(f.read_text().splitlines()) <= MAX_METHOD_FILE, f.name


def test_a_folded_prefix_saves_2Lnd_numbers_and_loads_as_a_direct_prefix(tiny, tmp_path):
    model = minituner.prefix_tuning(tiny, 4, encoder_hidden_size=8).fold()
    model.save_pretrained(tmp_path / "p")
    tensors = load_file(str(tmp_path / "p" / "adapter_model.safetensors"))
    assert sum(t.numel() for t in tensors.values()) == 2 * 2 * 4 * 16  # 2·L·n·d
    again = PeftModel.from_pretrained(tiny, tmp_path / "p")
    x = torch.randint(2, 35, (2, 5))
    assert not again.reparameterized and torch.equal(again(x), model(x))


def test_a_full_save_holds_every_tensor(tiny, tmp_path):
    minituner.full(tiny).save_pretrained(tmp_path / "f")
    tensors = load_file(str(tmp_path / "f" / "adapter_model.safetensors"))
    assert tensors.keys() == tiny.state_dict().keys()


def test_flipped_bytes_another_method_and_a_torn_pair_are_refused(tiny, tmp_path):
    minituner.prompt_tuning(tiny, 4).save_pretrained(tmp_path / "a")
    st = tmp_path / "a" / "adapter_model.safetensors"
    raw = bytearray(st.read_bytes())
    raw[-3] ^= 0x01  # one bit of the last tensor
    st.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="sha256 differs"):
        PeftModel.from_pretrained(tiny, tmp_path / "a")
    minituner.prompt_tuning(tiny, 4).save_pretrained(tmp_path / "b")
    with pytest.raises(ValueError, match="holds a 'prompt_tuning' model, not a LoraModel"):
        minituner.LoraModel.from_pretrained(tiny, tmp_path / "b")
    minituner.lora(tiny).save_pretrained(tmp_path / "c")
    (tmp_path / "b" / "adapter_config.json").write_bytes((tmp_path / "c" / "adapter_config.json").read_bytes())
    with pytest.raises(ValueError, match="sha256 differs"):  # a json of one save with the tensors of another
        PeftModel.from_pretrained(tiny, tmp_path / "b")
    (tmp_path / "c" / "adapter_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="adapter_config.json: not valid JSON"):
        PeftModel.from_pretrained(tiny, tmp_path / "c")
    with pytest.raises(ValueError, match="adapter_config.json is missing"):
        PeftModel.from_pretrained(tiny, tmp_path / "nothing")


def test_save_paths_dotted_names_a_file_and_a_crash(tiny, tmp_path, monkeypatch):
    x = torch.randint(2, 35, (1, 4))
    one, two = minituner.prompt_tuning(tiny, 4, seed=1), minituner.prompt_tuning(tiny, 4, seed=2)
    one.save_pretrained(tmp_path / "adapter.v1")
    two.save_pretrained(tmp_path / "adapter.v2")  # dots are part of the name, not a suffix
    assert torch.equal(PeftModel.from_pretrained(tiny, tmp_path / "adapter.v1")(x), one(x))
    assert torch.equal(PeftModel.from_pretrained(tiny, tmp_path / "adapter.v2")(x), two(x))
    two.save_pretrained(tmp_path / "adapter.v1")  # an existing save is replaced as a whole
    assert torch.equal(PeftModel.from_pretrained(tiny, tmp_path / "adapter.v1")(x), two(x))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is an existing file"):
        one.save_pretrained(tmp_path / "file")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("minituner.checkpoint.save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        one.save_pretrained(tmp_path / "adapter.v1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter.v1", "adapter.v2", "file"]  # no *.tmp
    assert torch.equal(PeftModel.from_pretrained(tiny, tmp_path / "adapter.v1")(x), two(x))  # the old pair intact


def test_from_pretrained_refuses_another_base(tiny, tmp_path):
    minituner.freeze(tiny).save_pretrained(tmp_path / "f")
    with pytest.raises(ValueError, match="trained on the base with fingerprint"):
        PeftModel.from_pretrained(GPT(tiny.config, seed=1), tmp_path / "f")


def test_prompt_config_checks(tiny):
    with pytest.raises(ValueError, match="num_virtual_tokens must be an integer in 1..95"):
        get_peft_model(tiny, PromptTuningConfig(num_virtual_tokens=96))
    with pytest.raises(ValueError, match="tensor 'prompt' has shape"):
        minituner.prompt_tuning(tiny, 4).load_adapter_state_dict({"prompt": torch.zeros(3, 16)})
