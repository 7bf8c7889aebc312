import os

os.environ.setdefault("MPLBACKEND", "Agg")

import tempfile
from pathlib import Path

import pytest
import torch

import minituner
from minituner.model import GPT, GPTConfig

NOTEBOOK_RUNS = pytest.StashKey()


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected
def pytest_collection_modifyitems(config, items):
    """The tests that read an executed lesson (fixture `lesson_notebook`) run last, and their lessons start
    executing now, in background kernels (tests/notebook_runs.py), while the other tests run."""
    reading = [item for item in items if "lesson_notebook" in getattr(item, "fixturenames", ())]
    if not reading or config.option.collectonly:
        return
    from notebook_runs import NotebookRuns

    items[:] = [item for item in items if item not in reading] + reading
    # the kernels take the cores: this process and the ones it starts compute on one thread each, as the kernels
    # do (a thread that waits for a core another process holds spins, and everything slows down many times)
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    folder = tempfile.TemporaryDirectory(prefix="minituner-notebooks-")
    config.add_cleanup(folder.cleanup)
    config.stash[NOTEBOOK_RUNS] = NotebookRuns(list(dict.fromkeys(item.callspec.params["path"] for item in reading)),
                                                Path(folder.name))


@pytest.fixture
def lesson_notebook(request, path):
    """The lesson `path` (a parameter of the test) executed as a notebook in its smoke preset: (notebook, --out folder)."""
    return request.config.stash[NOTEBOOK_RUNS].result(path.stem)


@pytest.fixture
def tiny():
    """A small random GPT for fast structural tests (vocabulary of the real tokenizer)."""
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=minituner.CharTokenizer().vocab_size, block_size=96, n_layer=2, n_head=2, n_embd=16), seed=0)


@pytest.fixture(scope="session")
def base():
    """The shipped pretrained base (tests must not modify it: methods copy it)."""
    return minituner.load_base()


@pytest.fixture(scope="session")
def classify():
    return minituner.make_task("classify")
