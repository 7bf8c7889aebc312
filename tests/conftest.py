import os

os.environ.setdefault("MPLBACKEND", "Agg")
# The suite's processes share the cores: pytest-xdist's workers (one per core), the notebooks'
# kernels, the processes tests start. Each worker computes on one thread (a test that needs two
# says so), and a thread that waits for a core another process holds sleeps instead of spinning.
# Set before torch is imported, which reads them; the processes a test starts inherit them.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"

# The suite speaks English unless a test chooses (minituner.i18n): a machine whose locale is Chinese
# runs the same tests; the lessons the suite executes in Chinese say so with --lang.
os.environ["MINITUNER_LANG"] = "en"

import json
import tempfile
from pathlib import Path

import pytest

NOTEBOOKS = pytest.StashKey[Path]()  # the folder the lessons are executed into (tests/notebook_runs.py)
STARTED = pytest.StashKey[bool]()


def pytest_configure(config):
    if hasattr(config, "workerinput"):  # an xdist worker: the controller executes the lessons, into its folder
        config.stash[NOTEBOOKS] = Path(config.workerinput["minituner_notebooks"])
    else:
        folder = tempfile.TemporaryDirectory(prefix="minituner-notebooks-")
        config.add_cleanup(folder.cleanup)
        config.stash[NOTEBOOKS] = Path(folder.name)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """-n auto: one worker per core."""
    return cores()


def cores() -> int:
    """The cores this process may use (as minituner.jobs.default_jobs, which imports torch)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist's controller, starting a worker: tell it the folder."""
    node.workerinput["minituner_notebooks"] = str(node.config.stash[NOTEBOOKS])


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected
def pytest_collection_modifyitems(config, items):
    """The tests that read an executed lesson (fixture `lesson_notebook`) run last, and their lessons start
    executing now, in background kernels (tests/notebook_runs.py), while the other tests run. Under
    pytest-xdist every worker collects, and the controller executes the lessons: a worker names them in
    lessons.json, which the controller reads when the first worker has collected (the hook below)."""
    reading = [item for item in items if "lesson_notebook" in getattr(item, "fixturenames", ())]
    if not reading or config.option.collectonly:
        return
    items[:] = [item for item in items if item not in reading] + reading
    lessons = list(dict.fromkeys(str(item.callspec.params["path"]) for item in reading))
    folder = config.stash[NOTEBOOKS]
    if hasattr(config, "workerinput"):
        tmp = folder / f".lessons-{config.workerinput['workerid']}.json"
        tmp.write_text(json.dumps(lessons))
        os.replace(tmp, folder / "lessons.json")  # every worker writes the same list, whole
        return
    # the kernels take the cores: this process and the ones it starts compute on one thread each, as the kernels do
    import torch

    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    start_lessons(folder, lessons)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    """pytest-xdist's controller, as each worker reports its collection: the first starts the lessons."""
    folder, config = node.config.stash[NOTEBOOKS], node.config
    if (folder / "lessons.json").exists() and not config.stash.get(STARTED, False):
        config.stash[STARTED] = True
        start_lessons(folder, json.loads((folder / "lessons.json").read_text()))


def start_lessons(folder: Path, lessons: list[str]) -> None:
    from notebook_runs import start

    start([Path(p) for p in lessons], folder, cores())


@pytest.fixture
def lesson_notebook(request, path):
    """The lesson `path` (a parameter of the test) executed as a notebook in its smoke preset: (notebook, --out folder)."""
    from notebook_runs import result

    return result(request.config.stash[NOTEBOOKS], path.stem)


# torch and minituner are imported where they are used: pytest-xdist's controller, which runs no test, never does

@pytest.fixture
def tiny():
    """A small random GPT for fast structural tests (vocabulary of the real tokenizer)."""
    import torch

    import minituner
    from minituner.model import GPT, GPTConfig

    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=minituner.CharTokenizer().vocab_size, block_size=96, n_layer=2, n_head=2, n_embd=16), seed=0)


@pytest.fixture(scope="session")
def base():
    """The shipped pretrained base (tests must not modify it: methods copy it)."""
    import minituner

    return minituner.load_base()


@pytest.fixture(scope="session")
def classify():
    import minituner

    return minituner.make_task("classify")


def pytest_collection_finish(session):
    """What collecting made (modules, test functions, parameters) lives until the end: gc.freeze() takes it out of
    every later collection. A large heap made each full collection cost ~0.4 s, and pytest runs five at the end."""
    import gc

    gc.freeze()


@pytest.fixture(autouse=True)
def _language_back_to_the_environment():
    """A test that chose a language (a lesson's --lang, i18n.set_language) leaves the next one English."""
    yield
    from minituner.i18n import set_language

    set_language(None)
