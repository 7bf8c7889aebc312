"""Many independent training runs on a few cores: one single-threaded process per core.

On a 2-core CPU one run of the comparison is faster with PyTorch's 2 threads than with 1,
but two 1-thread runs side by side finish both sooner than two runs one after the other at
2 threads; and two runs of 2 threads each side by side take several times as long: the
threads of one process spin while they wait for a core the other holds
(`python benchmarks/bench_methods.py` and docs/benchmarks.md say how to measure it). So a sweep or a
comparison runs its runs in ``jobs`` worker processes of one thread each, never in more
threads than cores. The losses are the same bits with 1 thread as with 2 (checked in
tests/test_jobs.py), so the number of workers does not change any result.

Workers start from a fork server (``_context``): one process that imports torch and minituner
once, then forks a copy of itself for each worker, so a worker costs a fork instead of a fresh
interpreter importing torch (seconds each on a small machine). The server never runs a torch op,
so no OpenMP thread pool is forked half-started (the reason a training process must not fork).
A worker sees the environment, and writes to the stdout and stderr, that the server started with
(the first run_all's): workers return their results, they print nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_all_start_methods, get_context

import torch


def default_jobs() -> int:
    """One worker per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


PRELOAD = ["minituner.experiments"]  # what the fork server imports, once (torch with it)


def _context():
    """The fork server's context, its server importing PRELOAD; spawn's where there is none (Windows)."""
    if "forkserver" not in get_all_start_methods():
        return get_context("spawn")
    context = get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)  # read when the server starts (at the first run_all)
    return context


def _one_thread() -> None:
    torch.set_num_threads(1)


def run_all(fn, calls: list[tuple], jobs: int, on_result=None) -> list:
    """[fn(*args) for args in calls], in `jobs` single-thread processes (in this process if jobs == 1);
    on_result(i, result) is called as each finishes. fn must be a module-level function."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1 (worker processes, one thread each), got {jobs!r}")
    results = [None] * len(calls)
    if jobs == 1 or len(calls) == 1:
        for i, args in enumerate(calls):
            results[i] = fn(*args)
            if on_result:
                on_result(i, results[i])
        return results
    # not a fork of this process: a forked child of a process whose OpenMP threads have run can hang
    with _main_stays_home(fn), ProcessPoolExecutor(min(jobs, len(calls)), mp_context=_context(),
                                                 initializer=_one_thread) as pool:
        futures = {pool.submit(fn, *args): i for i, args in enumerate(calls)}
        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            if on_result:
                on_result(i, results[i])
    return results


@contextlib.contextmanager
def _main_stays_home(fn):
    """A worker runs the parent's main script again (as __mp_main__) when that script was
    started by path. A lesson that calls run_all with one of minituner's functions does not want
    that (its top-level code would run in every worker), so while the workers start the script's
    path is hidden from them. A script that defines fn itself (a benchmark) needs it: the workers
    find fn by importing the script, whose top level must then sit under `if __name__ == "__main__":`."""
    main = sys.modules["__main__"]
    path = getattr(main, "__file__", None) if getattr(main, "__spec__", None) is None else None
    hide = path is not None and getattr(fn, "__module__", None) != "__main__"
    if hide:
        del main.__file__
    try:
        yield
    finally:
        if hide:
            main.__file__ = path
