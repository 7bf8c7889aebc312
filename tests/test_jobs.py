"""run_all's workers, when the caller is a script started by path (a lesson, a benchmark)."""

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent('''
    from minituner.jobs import default_jobs, run_all

    print("top level ran", flush=True)

    def square(x):
        return x * x

    if __name__ == "__main__":
        run_all(default_jobs, [(), ()], 2)  # a minituner function: the workers must not run this script
        print("between", flush=True)
        print(run_all(square, [(2,), (3,)], 2))  # defined here: the workers import the script to find it
''')


def test_workers_run_the_script_only_when_the_function_lives_in_it(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"}, check=True).stdout
    before, after = out.split("between")
    assert before.count("top level ran") == 1  # a lesson's top level is not run again in its workers
    assert after.strip().endswith("[4, 9]")
