"""minituner board (docs/board.md), through its API: the page's options are the registry's, its checks
are the command's, a run is `minituner finetune` (the same test score, the same saved adapter), a run
can be followed, stopped and listed, and a finished run's adapter answers as `minituner generate` does.
The page itself, in a browser: tests/test_board_browser.py."""

import hashlib
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("flask", reason='the board extra is not installed (pip install -e ".[board]")')

from minituner import cli  # noqa: E402
from minituner.board.server import create_app  # noqa: E402
from minituner.cli_options import defaults, owners, words  # noqa: E402
from minituner.methods import METHODS, ordered  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.xdist_group("board")  # one worker: the runs' processes share the cores
QUICK = {"steps": "6", "eval_every": "3"}


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    folder = tmp_path_factory.mktemp("board") / "runs"
    return create_app(cli.build_parser(), folder).test_client(), folder


def post(client, path, body, status=200):
    r = client.post(path, json=body)
    assert r.status_code == status, r.json
    return r.json


def form(client, method="lora", training=QUICK, **options):
    data = post(client, "/api/data", {"task": "classify"})["path"]
    return {"method": method, "data": data, "training": training, "options": options}


def finished(client, run: str) -> dict:
    for _ in range(1200):
        described = next(r for r in client.get("/api/runs").json["runs"] if r["id"] == run)
        if described["status"] != "running":
            return described
        time.sleep(0.1)
    raise AssertionError(f"run {run} still running after 2 minutes")


@pytest.fixture(scope="module")
def done(board):
    """One finished LoRA run of 6 steps on classify."""
    client, folder = board
    run = post(client, "/api/runs", form(client, r="4"))
    return finished(client, run["id"])


def test_import_minituner_imports_no_server_library():
    code = "import sys, minituner; print([m for m in ('flask', 'werkzeug', 'selenium') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_page_offers_every_registered_method_with_the_registrys_options_and_defaults(board):
    client, _ = board
    setup = client.get("/api/setup").json
    assert [m["key"] for m in setup["methods"]] == [m.key for m in ordered()]
    cli_fields = owners()
    for m in setup["methods"]:
        fields = {f.name: f for f in METHODS[m["key"]].fields() if f.name in cli_fields}
        assert [o["name"] for o in m["options"]] == list(fields)
        assert [o["help"] for o in m["options"]] == [f.metadata["help"] for f in fields.values()]
        assert {o["name"]: o["default"] for o in m["options"]} == \
            {n: "" if v is None else words(v) for n, v in defaults(m["key"]).items() if n in fields}
    finetune = cli.build_parser()._subparsers._group_actions[0].choices["finetune"]
    flags = {s for a in finetune._actions for s in a.option_strings}
    assert {o["flag"] for o in setup["training"]} <= flags
    assert set(setup["labels"]["start"]) == {"en", "zh"}


def test_the_command_and_the_trainable_count_follow_the_options(board):
    client, folder = board
    four, eight = (post(client, "/api/check", form(client, r=r)) for r in ("4", "8"))
    per_rank = 2 * (64 + 64) * 4  # r · (in + out) · 2 targets (q, v) · 4 blocks
    assert (four["trainable"], eight["trainable"]) == (4 * per_rank, 8 * per_rank)
    assert four["command"].startswith("minituner finetune --method lora --data ")
    assert four["argv"][-6:] == ["--steps", "6", "--eval-every", "3", "--r", "4"]
    assert "--r" not in eight["argv"]  # 8 is the default: the command says only what differs
    assert four["memory"]["gradients"] == 4 * four["trainable"]
    assert sum(four["sizes"].values()) == sum(1 for _ in open(four["argv"][4]))


def test_a_bad_option_is_the_commands_own_one_line_error_before_any_work(board):
    client, folder = board
    bad_r = form(client, r="0")
    before = sorted(p.name for p in folder.iterdir())
    for path in ("/api/check", "/api/runs"):
        error = post(client, path, bad_r, status=400)["error"]
        assert error == "argument --r: LoraConfig.r must be an integer >= 1 and <= 4096, got 0"
        error = post(client, path, form(client, training={"steps": "0"}), status=400)["error"]
        assert error == "minituner finetune: error: argument --steps: must be an integer from 1 to 10,000,000, got 0"
    assert sorted(p.name for p in folder.iterdir()) == before  # no run folder was made


def test_an_upload_is_read_as_finetune_reads_it_bad_rows_named_by_line_and_size_limited(board):
    client, _ = board
    good = (ROOT / "docs" / "examples" / "pairs.jsonl").read_text()  # the README's example pairs
    r = client.post("/api/data", data={"file": (io.BytesIO(good.encode()), "sums.jsonl")})
    assert r.status_code == 200 and r.json["path"].endswith(".jsonl")
    bad = good.splitlines()[0] + '\n{"prompt": "who is it?", "answer": 3}\n'
    r = client.post("/api/data", data={"file": (io.BytesIO(bad.encode()), "sums.jsonl")})
    assert r.status_code == 400
    assert r.json["error"].startswith('sums.jsonl, line 2: each line must be an object with string fields')
    r = client.post("/api/data", data={"file": (io.BytesIO(b"x" * (2 << 20)), "big.jsonl")})
    assert r.status_code == 413 and "limit" in r.json["error"]


def test_a_run_is_the_finetune_command_step_by_step(board, done, tmp_path, capsys):
    client, folder = board
    assert done["status"] == "finished" and done["done"] == 6 and done["adapter"]
    log = client.get(f"/api/runs/{done['id']}/log").json["log"]
    assert [e["step"] for e in log if "step" in e] == [1, 2, 3, 4, 5, 6]
    evals = [e for e in log if "eval" in e]
    assert [e["eval"] for e in evals] == [3, 6] and all(len(e["samples"]) == 3 for e in evals)
    test = next(e["test"] for e in log if "test" in e)
    # the same command, run here: the same test score
    argv = json.loads((folder / done["id"] / "settings.json").read_text())["argv"]
    argv[argv.index("--out") + 1] = str(tmp_path / "again")
    capsys.readouterr()
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert f"loss {test['loss']:.4f}, accuracy {test['accuracy']:.3f}" in printed
    # the events replay the log, then the end
    stream = client.get(f"/api/runs/{done['id']}/events").get_data(as_text=True)
    assert [json.loads(d) for d in re.findall(r"^data: (\{.*\})$", stream, re.M)][:-1] == log
    assert "event: end" in stream and json.loads(stream.rsplit("data: ", 1)[1])["status"] == "finished"


def test_a_finished_runs_adapter_answers_as_generate_does(board, done, capsys):
    client, folder = board
    prompt = "it says meow, so it is the"
    ours = post(client, "/api/answer", {"run": done["id"], "prompt": prompt})["answer"]
    base = post(client, "/api/answer", {"run": "", "prompt": prompt})["answer"]
    capsys.readouterr()
    cli.main(["generate", "--adapter", str(folder / done["id"] / "adapter"), prompt])
    assert capsys.readouterr().out == prompt + ours + "\n"
    cli.main(["generate", prompt])
    assert capsys.readouterr().out == prompt + base + "\n"


def test_stopping_a_run_leaves_every_earlier_run_intact_and_one_runs_at_a_time(board, done):
    client, folder = board
    files = sorted(p for p in (folder / done["id"]).rglob("*") if p.is_file())
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    long = post(client, "/api/runs", form(client, training={"steps": "100000", "eval_every": "1000"}))
    assert long["status"] == "running"
    error = post(client, "/api/runs", form(client), status=400)["error"]
    assert error.startswith(f"{long['id']} is running; stop it first")
    events = client.get(f"/api/runs/{long['id']}/events", buffered=False).response
    first = next(chunk for chunk in events if b'"step"' in chunk)  # the run is going: its first step came
    assert json.loads(first.decode().removeprefix("data: "))["step"] == 1
    assert post(client, f"/api/runs/{long['id']}/stop", {})["status"] == "stopped"
    listed = {r["id"]: r for r in client.get("/api/runs").json["runs"]}
    assert (listed[long["id"]]["status"], listed[done["id"]]["status"]) == ("stopped", "finished")
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files} == before
    error = post(client, "/api/answer", {"run": long["id"], "prompt": "the cat"}, status=400)["error"]
    assert error == f"run {long['id']} has no adapter: it did not finish"


def test_a_run_the_command_refuses_is_listed_failed_with_its_one_line(board):
    client, folder = board
    run = post(client, "/api/runs", form(client, training={"batch_size": "100000"}))  # train() allows 65,536
    failed = finished(client, run["id"])
    assert (failed["status"], failed["adapter"]) == ("failed", False)
    assert failed["error"].startswith("minituner finetune: error: argument --batch-size: batch_size must be")
    assert post(client, "/api/check", form(client, training={"batch_size": "100000"}))["memory"] is None
