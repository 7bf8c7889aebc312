"""A tiny GPT-2 folder as transformers writes one (random weights), with a BPE vocabulary learned from
docs/examples/pairs.jsonl: config.json, model.safetensors, vocab.json, merges.txt. Nothing downloaded."""

import json
from pathlib import Path

import torch

from minituner.bpe import train_bpe

PAIRS = Path(__file__).resolve().parents[1] / "docs" / "examples" / "pairs.jsonl"


def write_tiny_gpt2(folder: Path, seed: int = 0) -> Path:
    """GPT2Config(n_layer=2, n_head=2, n_embd=32), random LayerNorms and biases too (a swapped tensor shows)."""
    import transformers

    rows = [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]
    tok = train_bpe([r["prompt"] + r["answer"] for r in rows], num_merges=60)
    cfg = transformers.GPT2Config(vocab_size=tok.vocab_size, n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                  bos_token_id=tok.eos_id, eos_token_id=tok.eos_id)
    torch.manual_seed(seed)
    hf = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.normal_(0.0 if name.endswith("bias") else 1.0, 0.1)
    hf.save_pretrained(folder, safe_serialization=True)
    tok.save(folder)
    return folder
