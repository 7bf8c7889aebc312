"""One base, many adapters in one batch: each row's logits are those of its own adapter run alone."""

import pytest
import torch

import minituner
from minituner.serving import BASE, Server, lora_rows


def trained_like(model, seed):
    """Fill every trainable tensor with random values, as training would move them (LoRA's B leaves 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model


@pytest.fixture
def adapters(tiny):
    return {"p4": trained_like(minituner.prompt_tuning(tiny, num_virtual_tokens=4, seed=1), 1),
            "p4b": trained_like(minituner.prompt_tuning(tiny, num_virtual_tokens=4, seed=2), 2),
            "p2": trained_like(minituner.prompt_tuning(tiny, num_virtual_tokens=2, seed=3), 3),
            "f3": trained_like(minituner.prefix_tuning(tiny, num_virtual_tokens=3, seed=4), 4),
            "f3b": trained_like(minituner.ptuning_v2(tiny, num_virtual_tokens=3, seed=5), 5),
            "lq": trained_like(minituner.lora(tiny, r=2, target_modules=["q_proj", "v_proj"], seed=6), 6),
            "lall": trained_like(minituner.lora(tiny, r=4, target_modules="all", seed=7), 7)}


def test_a_mixed_batch_gives_each_row_its_own_adapters_logits(tiny, adapters):
    server = Server(tiny)
    for name, model in adapters.items():
        server.add(name, model)
    names = ["lq", "p4", BASE, "f3", "lall", "p4b", "f3b", "p2", "lq", "lall", "p4"]
    idx = torch.randint(2, tiny.config.vocab_size, (len(names), 9), generator=torch.Generator().manual_seed(0))
    mixed = server(idx, names)  # (B, T, V)
    with torch.no_grad():
        alone = torch.cat([(adapters[n] if n != BASE else tiny)(idx[b:b + 1]) for b, n in enumerate(names)])
    assert mixed.shape == alone.shape
    torch.testing.assert_close(mixed, alone, rtol=0, atol=1e-6)  # 0 exactly on a CPU; rounding elsewhere
    # and the rows really differ by adapter: the same input under two adapters gives other logits
    same = idx[:1].repeat(3, 1)
    out = server(same, ["lq", "lall", BASE])
    assert (out[0] - out[1]).abs().max() > 1e-3 and (out[0] - out[2]).abs().max() > 1e-3


def test_lora_rows_leaves_the_model_as_it_was(tiny, adapters):
    server = Server(tiny)
    server.add("lq", adapters["lq"])
    server.add("lall", adapters["lall"])
    x = torch.randint(2, tiny.config.vocab_size, (2, 5), generator=torch.Generator().manual_seed(1))
    before = server.lora(x)
    with lora_rows(server.lora, ["lq", BASE]):
        pass
    torch.testing.assert_close(server.lora(x), before, rtol=0, atol=0)  # no hook left, the adapter enabled


def test_a_per_row_prompt_of_equal_rows_is_the_shared_prompt(tiny):
    P = torch.randn(3, tiny.config.n_embd)  # (k, C)
    x = torch.randint(2, tiny.config.vocab_size, (2, 6))
    torch.testing.assert_close(tiny(x, prompt=P.expand(2, -1, -1)), tiny(x, prompt=P), rtol=0, atol=0)


def test_bad_requests_and_adapters_are_refused(tiny, adapters):
    server = Server(tiny)
    server.add("lq", adapters["lq"])
    x = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="one adapter name per row"):
        server(x, ["lq"])
    with pytest.raises(ValueError, match="no adapter named"):
        server(x, ["lq", "qa"])
    with pytest.raises(ValueError, match="taken"):
        server.add("lq", adapters["lall"])
    with pytest.raises(ValueError, match="another base"):
        server.add("other", minituner.lora(minituner.GPT(tiny.config, seed=1), r=2))
    with pytest.raises(TypeError, match="serves prompt tuning"):
        server.add("bias", minituner.bitfit(tiny))
    with pytest.raises(TypeError, match="plain GPT"):
        Server(adapters["lq"])
