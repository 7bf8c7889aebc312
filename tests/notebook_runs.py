"""Every lesson executed once, as a notebook in a Jupyter kernel, in its smoke preset, beside the rest of the suite.

A lesson becomes a notebook in one language (language_of), as `minituner notebooks` makes it, and runs in a
kernel whose MINITUNER_LESSON_ARGS is "--smoke --out <folder>/<lesson> --lang <language>":
minituner.lesson.options reads it there,
as in a notebook someone opened. kernels() kernels of one thread each take the lessons in turn; a kernel
is reused (starting one and importing torch costs seconds), so before each lesson the names the previous
one defined are deleted, and after a failure the kernel is restarted. Each result lands in the folder:
<lesson>.ipynb, the executed notebook, or <lesson>.error, why it failed; result() waits for one. So the
process that executes (the only pytest process, or pytest-xdist's controller: conftest.py) need not be
the one whose test reads it, and on a 2-core machine the notebooks execute while the other tests run.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shlex
import threading
import time
import traceback
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from minituner.lesson import LESSON_ARGS
from minituner.notebooks import ROOT, notebook

CELL_TIMEOUT = 300  # seconds; a smoke cell takes a few

# Run before each lesson, in its kernel: forget the previous lesson's names (IPython's %reset would also
# drop __spec__, which multiprocessing needs to start workers from a kernel), then set the lesson's preset.
SETUP = """\
[get_ipython().user_ns.pop(name) for name in [n for n in get_ipython().user_ns
                                             if n not in get_ipython().user_ns_hidden and not n.startswith("__")]];
__import__("os").environ[{var!r}] = {value!r}
"""


def language_of(lesson: Path) -> str:
    """The one language the suite executes a lesson in: the even-numbered lessons as their Chinese notebook,
    the odd ones as their English one (both notebooks share every code cell; tests/test_i18n.py checks that
    the committed pair holds the same code and the same numbers)."""
    return "zh" if int(lesson.name[:2]) % 2 == 0 else "en"


def kernels(cores: int) -> int:
    """2 on a 2-core machine, beside its 2 test workers (measured: the lessons are done before the other tests);
    a quarter of the cores on a larger machine, whose workers finish the other tests sooner."""
    return max(2, cores // 4)


def start(lessons: list[Path], folder: Path, cores: int) -> None:
    """Start executing `lessons` now, in a background thread, each into `folder` (see result)."""
    runs = NotebookRuns(lessons, folder)
    threading.Thread(target=runs.run, args=(min(kernels(cores), len(lessons)),), daemon=True).start()


def result(folder: Path, name: str, timeout: float = 1800) -> tuple[nbformat.NotebookNode, Path]:
    """Wait for lesson `name` to be executed into `folder`: (its executed notebook, its --out folder)."""
    done, failed = folder / f"{name}.ipynb", folder / f"{name}.error"
    for _ in range(int(timeout / 0.2)):
        if done.exists():
            return nbformat.read(done, as_version=4), folder / name
        if failed.exists():
            raise RuntimeError(f"{name} did not execute:\n{failed.read_text()}")
        time.sleep(0.2)
    raise TimeoutError(f"{name} was not executed within {timeout} s")


class NotebookRuns:
    def __init__(self, lessons: list[Path], folder: Path):
        self._lessons, self._queue, self._folder = list(lessons), list(lessons), folder

    def _write(self, name: str, text: str, suffix: str) -> None:
        """Whole or not at all: a reader polling the folder never sees half a file."""
        tmp = self._folder / f".{name}{suffix}"
        tmp.write_text(text)
        os.replace(tmp, self._folder / f"{name}{suffix}")

    def run(self, kernels: int):
        async def all_kernels():
            await asyncio.gather(*(self._kernel() for _ in range(kernels)))

        try:
            asyncio.run(all_kernels())
            why = "no kernel took it"
        except Exception:  # e.g. a kernel that would not start
            why = f"the kernels stopped:\n{traceback.format_exc()}"
        for path in self._lessons:  # those not taken, and those a stopped kernel was executing
            if not any((self._folder / f"{path.stem}{suffix}").exists() for suffix in (".ipynb", ".error")):
                self._write(path.stem, why, ".error")

    async def _kernel(self):
        km = AsyncKernelManager(kernel_name="python3")
        log = self._folder / f".kernel-{id(km)}.log"  # what the kernel itself prints, shown with a failure
        out = open(log, "w")  # also a restarted kernel's
        await km.start_kernel(cwd=str(ROOT), env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=out, stderr=out)
        try:
            while self._queue:
                path = self._queue.pop(0)
                try:
                    self._write(path.stem, nbformat.writes(await self._execute(km, path)), ".ipynb")
                except Exception:  # the test of this lesson raises it
                    said = log.read_text()[-4000:]
                    self._write(path.stem, f"{traceback.format_exc()}\nthe kernel's own output:\n{said}", ".error")
                    await km.restart_kernel(now=True)
        finally:
            await km.shutdown_kernel(now=True)
            out.close()

    async def _execute(self, km, path: Path) -> nbformat.NotebookNode:
        lang = language_of(path)
        nb = notebook(path, lang)
        value = shlex.join(["--smoke", "--out", str(self._folder / path.stem), "--lang", lang])
        nb.cells.insert(0, nbformat.v4.new_code_cell(SETUP.format(var=LESSON_ARGS, value=value)))
        client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, kernel_name="python3", coalesce_streams=True)
        try:
            await client.async_execute()
        finally:
            atexit.unregister(client._cleanup_kernel)  # the kernel is ours to shut down, not each client's
            if client.kc is not None:
                client.kc.stop_channels()
        nb.cells.pop(0)
        return nb
