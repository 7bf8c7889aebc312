"""Same seed, same bits (issue 12 item 6): full fine-tuning in two fresh processes on 2 threads.

Full fine-tuning trains wte, whose gradient adds up the rows of every repeated token id;
with torch's own indexing backward that sum could come out in a different order on two
threads. model.Embedding's backward (functional.embedding) adds them deterministically.
"""

import os
import subprocess
import sys
from pathlib import Path

import minituner

RUN = """
import hashlib, torch, minituner
torch.set_num_threads(2)
model = minituner.full(minituner.load_base())
h = minituner.train(model, minituner.make_task("classify"), steps=4, batch_size=32, lr=1e-3, seed=0, progress=False)
print(h.losses)
print(hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest())
"""


def test_full_finetuning_is_bit_identical_in_two_fresh_processes():
    env = {**os.environ, "PYTHONPATH": str(Path(minituner.__file__).resolve().parents[1])}
    runs = [subprocess.run([sys.executable, "-c", RUN], env=env, capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    losses = runs[0].splitlines()[0]
    assert losses.startswith("[") and len(set(losses.split(","))) > 1  # four losses, and they moved
    assert runs[0] == runs[1]
