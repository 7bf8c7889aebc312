"""Every lesson executed once, as a notebook in a Jupyter kernel, in its smoke preset, beside the rest of the suite.

A lesson becomes a notebook with jupytext, as `minituner notebooks` makes it, and runs in a kernel whose
MINITUNER_LESSON_ARGS is "--smoke --out <a folder of its own>": minituner.lesson.options reads it there,
as in a notebook someone opened. KERNELS kernels of one thread each take the lessons in turn; a kernel
is reused (starting one and importing torch costs seconds), so before each lesson the names the previous
one defined are deleted, and after a failure the kernel is restarted. conftest.py starts this in a
background thread as soon as the tests that read it are collected, and runs those tests last, so on a
2-core machine the notebooks execute while the other tests run.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shlex
import threading
from concurrent.futures import Future
from pathlib import Path

import jupytext
import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from minituner.lesson import LESSON_ARGS
from minituner.notebooks import ROOT

KERNELS = 2  # one per core
CELL_TIMEOUT = 300  # seconds; a smoke cell takes a few

# Run before each lesson, in its kernel: forget the previous lesson's names (IPython's %reset would also
# drop __spec__, which multiprocessing needs to start workers from a kernel), then set the lesson's preset.
SETUP = """\
[get_ipython().user_ns.pop(name) for name in [n for n in get_ipython().user_ns
                                             if n not in get_ipython().user_ns_hidden and not n.startswith("__")]];
__import__("os").environ[{var!r}] = {value!r}
"""

class NotebookRuns:
    """Start executing `lessons` now; result(name) waits for one: (its executed notebook, its --out folder)."""

    def __init__(self, lessons: list[Path], out: Path, kernels: int = KERNELS):
        self._futures = {path.stem: Future() for path in lessons}
        self._queue, self._out = list(lessons), out
        threading.Thread(target=self._run, args=(min(kernels, len(lessons)),), daemon=True).start()

    def result(self, name: str, timeout: float = 1800) -> tuple[nbformat.NotebookNode, Path]:
        return self._futures[name].result(timeout)

    def _run(self, kernels: int):
        async def all_kernels():
            await asyncio.gather(*(self._kernel() for _ in range(kernels)))

        try:
            asyncio.run(all_kernels())
            why = "no kernel took it"
        except Exception as e:  # e.g. a kernel that would not start
            why = f"the kernels stopped: {e!r}"
        for future in self._futures.values():
            if not future.done():
                future.set_exception(RuntimeError(why))

    async def _kernel(self):
        km = AsyncKernelManager(kernel_name="python3")
        await km.start_kernel(cwd=str(ROOT), env={**os.environ, "OMP_NUM_THREADS": "1"})
        try:
            while self._queue:
                path = self._queue.pop(0)
                try:
                    self._futures[path.stem].set_result(await self._execute(km, path))
                except Exception as e:  # the test of this lesson raises it
                    self._futures[path.stem].set_exception(e)
                    await km.restart_kernel(now=True)
        finally:
            await km.shutdown_kernel(now=True)

    async def _execute(self, km, path: Path):
        out = self._out / path.stem
        nb = jupytext.read(path)
        value = shlex.join(["--smoke", "--out", str(out)])
        nb.cells.insert(0, nbformat.v4.new_code_cell(SETUP.format(var=LESSON_ARGS, value=value)))
        client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, kernel_name="python3", coalesce_streams=True)
        try:
            await client.async_execute()
        finally:
            atexit.unregister(client._cleanup_kernel)  # the kernel is ours to shut down, not each client's
            if client.kc is not None:
                client.kc.stop_channels()
        nb.cells.pop(0)
        return nb, out
