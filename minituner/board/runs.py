"""The board's runs: each one a folder under the runs folder, its process a `minituner finetune`.

    RUNS/data/classify.jsonl         the data a run reads (a task's pairs, or an uploaded file)
    RUNS/003-lora/settings.json      {"argv": [...], "command": "minituner finetune ...", "steps": N}
    RUNS/003-lora/log.jsonl          what train() did, step by step (worker.py)
    RUNS/003-lora/output.txt         what the command printed
    RUNS/003-lora/status.json        {"status": "finished" | "failed" | "stopped", "returncode": n}
    RUNS/003-lora/adapter/           the command's --out: the fine-tuned result

A run is started by writing its settings and starting `python -m minituner.board.worker FOLDER` (the
command's own main()); stopping ends that process only, so every other run's folder stays as it was.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import threading
from pathlib import Path


def read_log(folder: Path) -> list[dict]:
    path = folder / "log.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.endswith("}")]


def command_line(argv: list[str]) -> str:
    return "minituner " + shlex.join(argv)


class Runs:
    def __init__(self, folder: Path, max_running: int = 1):
        self.folder, self.max_running = Path(folder), max_running
        self.processes: dict[str, subprocess.Popen] = {}
        self.stopped: set[str] = set()
        self.lock = threading.Lock()

    def ids(self) -> list[str]:
        return sorted(p.parent.name for p in self.folder.glob("*/settings.json"))

    def next_id(self, method: str) -> str:
        numbers = [int(i.split("-")[0]) for i in self.ids() if i.split("-")[0].isdigit()]
        return f"{max(numbers, default=0) + 1:03d}-{method}"

    def running(self) -> list[str]:
        return [i for i, p in self.processes.items() if p.poll() is None]

    def ended(self, run: str, code: int) -> str:
        return "stopped" if run in self.stopped else "finished" if code == 0 else "failed"

    def status(self, run: str) -> str:
        """From the run's process while this board has it, else from the status.json it wrote."""
        if run in self.processes:
            code = self.processes[run].poll()
            return "running" if code is None else self.ended(run, code)
        path = self.folder / run / "status.json"
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))["status"]
        return "interrupted"  # its board ended before it did

    def start(self, run: str, argv: list[str], steps: int) -> None:
        """Start `minituner finetune` (argv) as run `run`; a ValueError when max_running runs are going."""
        with self.lock:
            if len(self.running()) >= self.max_running:
                raise ValueError(f"{', '.join(self.running())} is running; stop it first, or start the board "
                                 f"with --max-running {self.max_running + 1}")
            folder = self.folder / run
            folder.mkdir(parents=True)
            settings = {"argv": argv, "command": command_line(argv), "steps": steps}
            (folder / "settings.json").write_text(json.dumps(settings, indent=1), encoding="utf-8")
            with (folder / "output.txt").open("wb") as out:
                process = subprocess.Popen([sys.executable, "-m", "minituner.board.worker", str(folder)],
                                           stdout=out, stderr=subprocess.STDOUT)
            self.processes[run] = process
        threading.Thread(target=self._wait, args=(run, process), daemon=True).start()

    def _wait(self, run: str, process: subprocess.Popen) -> None:
        code = process.wait()
        status = {"status": self.ended(run, code), "returncode": code}
        (self.folder / run / "status.json").write_text(json.dumps(status), encoding="utf-8")

    def stop(self, run: str) -> None:
        if run not in self.running():
            raise ValueError(f"run {run} is not running")
        self.stopped.add(run)
        self.processes[run].terminate()
        self.processes[run].wait()

    def describe(self, run: str) -> dict:
        """A run's settings, status and scores, as the runs table shows them."""
        folder = self.folder / run
        settings = json.loads((folder / "settings.json").read_text(encoding="utf-8"))
        log = read_log(folder)
        evals = [e for e in log if "eval" in e]
        test = next((e["test"] for e in log if "test" in e), None)
        status = self.status(run)
        output = (folder / "output.txt").read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return {"id": run, "command": settings["command"], "steps": settings["steps"], "status": status,
                "done": sum("step" in e for e in log),
                "best_val": max((e["accuracy"] for e in evals), default=None), "test": test,
                "adapter": status == "finished" and (folder / "adapter").is_dir(),
                "error": output[-1] if status == "failed" and output else None}
