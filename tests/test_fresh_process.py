"""What a fresh Python process sees: one script, run twice, reports each fact as JSON (each run pays for
an import of torch, so the facts share the runs), and a test asserts each fact.

- Same seed, same bits (issue 12 item 6): full fine-tuning on 2 threads ends in the same losses and
  weights in both runs. Full fine-tuning trains wte, whose gradient adds up the rows of every repeated
  token id; with torch's own indexing backward that sum could come out in a different order on two
  threads. model.Embedding's backward (functional.embedding) adds them deterministically.
- `import minituner` imports no matplotlib (it is checked first, before anything else is imported).
- The same five lines train and save an adapter of every kind here, and reload it there: the same
  class, the same generations.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import minituner
from minituner import GPT, GPTConfig, get_peft_model
from minituner.methods import MODELS

pytestmark = pytest.mark.xdist_group("fresh-process")  # one worker runs the script, twice

TINY = "GPT(GPTConfig(vocab_size=35, block_size=96, n_layer=2, n_head=2, n_embd=16), seed=0)"
CONFIGS = {
    "full": "FullConfig()",
    "freeze": "FreezeConfig(trainable_layers=1)",
    "prompt": "PromptTuningConfig(num_virtual_tokens=4, init='vocab')",
    "prefix": "PrefixTuningConfig(num_virtual_tokens=4, prefix_projection=True, encoder_hidden_size=8)",
    "ptuning_v2": "PrefixTuningConfig(num_virtual_tokens=4)",
    "lora": "LoraConfig(r=2, lora_alpha=4, target_modules='all')",
}

SCRIPT = f"""
import sys, minituner
facts = {{"matplotlib": "matplotlib" in sys.modules}}
import hashlib, json, torch
from minituner import GPT, GPTConfig

torch.set_num_threads(2)
model = minituner.full(minituner.load_base())
h = minituner.train(model, minituner.make_task("classify"), steps=4, batch_size=32, lr=1e-3, seed=0, progress=False)
facts["losses"] = h.losses
facts["weights"] = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()

base, idx = {TINY}, torch.tensor(json.loads(sys.argv[2]))
facts["reloaded"] = {{}}
for name in {list(CONFIGS)}:
    again = minituner.PeftModel.from_pretrained(base, sys.argv[1] + "/" + name)
    facts["reloaded"][name] = [type(again).__name__, again.generate(idx, 6).tolist()]
print(json.dumps(facts))
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory, classify) -> tuple[Path, list, dict]:
    """Every kind of adapter trained 2 steps and saved, here: (folder, prompt ids, each one's generation)."""
    folder = tmp_path_factory.mktemp("saved")
    base, idx = eval(TINY, {"GPT": GPT, "GPTConfig": GPTConfig}), classify.test.x[:2, :10]
    expected = {}
    for name, cfg in CONFIGS.items():
        model = get_peft_model(base, eval(cfg, vars(minituner)))
        minituner.train(model, classify, steps=2, lr=1e-2, batch_size=4, seed=0, progress=False)
        model.save_pretrained(folder / name)
        expected[name] = model.generate(idx, 6).tolist()
    return folder, idx.tolist(), expected


@pytest.fixture(scope="module")
def runs(saved) -> list[dict]:
    """The facts of the script's two runs, one after the other."""
    folder, idx, _ = saved
    env = {**os.environ, "PYTHONPATH": str(Path(minituner.__file__).resolve().parents[1])}
    done = [subprocess.run([sys.executable, "-c", SCRIPT, str(folder), json.dumps(idx)], env=env, capture_output=True,
                           text=True) for _ in range(2)]
    assert [d.returncode for d in done] == [0, 0], [d.stderr for d in done]
    return [json.loads(d.stdout) for d in done]


def test_full_finetuning_is_bit_identical_in_two_fresh_processes(runs):
    losses = runs[0]["losses"]
    assert len(losses) == 4 and len(set(losses)) > 1  # four losses, and they moved
    assert (runs[0]["losses"], runs[0]["weights"]) == (runs[1]["losses"], runs[1]["weights"])


def test_import_minituner_imports_no_matplotlib(runs):
    assert [r["matplotlib"] for r in runs] == [False, False]


def test_the_same_five_lines_train_save_reload_in_a_fresh_process_and_generate(saved, runs):
    _, _, expected = saved
    got = runs[0]["reloaded"]
    for name, cfg in CONFIGS.items():
        assert got[name][1] == expected[name], name
        assert got[name][0] == MODELS[type(eval(cfg, vars(minituner)))].__name__
