"""run_all's workers, when the caller is a script started by path (a lesson, a benchmark): one run of a
script (each process it starts pays for an import of torch, so every test here reads the one run)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from minituner.experiments import job
from minituner.jobs import run_all

pytestmark = pytest.mark.xdist_group("jobs-script")  # one worker runs the script, once

SCRIPT = textwrap.dedent('''
    import json
    import os

    import torch
    from minituner.experiments import job
    from minituner.jobs import run_all

    print("top level ran", flush=True)

    def square(x):
        return x * x

    if __name__ == "__main__":
        call = ("classify", "lora", {"r": 2, "lr": 3e-3}, 0, 3, "cpu", False)
        torch.set_num_threads(2)
        here = job(*call)  # this process, two threads
        # two workers of one thread each; a minituner function: the workers must not run this script
        there = run_all(job, [call, call[:3] + (1,) + call[4:]], 2)
        print("between", flush=True)
        squares = run_all(square, [(2,), (3,)], 2)  # defined here: the workers import the script to find it
        parents = run_all(os.getppid, [(), ()], 2) + run_all(os.getppid, [(), ()], 2)
        print(json.dumps({"here": here, "there": there, "squares": squares, "parents": parents, "pid": os.getpid()}))
''')


@pytest.fixture(scope="module")
def script_run(tmp_path_factory) -> str:
    """What the script prints, run by path in a fresh process."""
    script = tmp_path_factory.mktemp("script") / "script.py"
    script.write_text(SCRIPT)
    root = str(Path(__file__).resolve().parents[1])
    threads = {k: v for k, v in os.environ.items() if k.startswith("OMP_")}  # how the suite's threads wait
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin", **threads}, check=True).stdout


def test_workers_run_the_script_only_when_the_function_lives_in_it(script_run):
    before, after = script_run.split("between")
    assert before.count("top level ran") == 1  # a lesson's top level is not run again in its workers
    assert json.loads(after.splitlines()[-1])["squares"] == [4, 9]


def test_runs_in_one_thread_workers_give_the_same_bits_as_in_this_process(script_run):
    got = json.loads(script_run.splitlines()[-1])
    here, there = got["here"], got["there"]
    assert there[0]["curve"] == here["curve"] and there[0]["val loss"] == here["val loss"]
    assert there[1]["curve"] != here["curve"]  # the seed is honoured
    with pytest.raises(ValueError, match="jobs must be an int >= 1"):
        run_all(job, [()], jobs=0)


def test_workers_are_forks_of_one_server_not_of_this_process(script_run):
    """Each worker is a fork of the fork server (which imported torch once), never of the calling process,
    whose OpenMP threads may have run; later calls share the server."""
    got = json.loads(script_run.splitlines()[-1])
    assert len(set(got["parents"])) == 1 and got["parents"][0] != got["pid"]
