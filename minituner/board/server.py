"""The board's web server (Flask): the page, and a small JSON API behind it.

    GET  /                       the page (static/: every script and style served from here)
    GET  /api/setup              tasks, methods with their options (from the registry), training options
                                 (from `minituner finetune`'s parser), presets, the labels in en and zh
    POST /api/data               a task's pairs ({"task": ...}) or an uploaded JSON-lines file (form field
                                 "file"), written to RUNS/data/ and checked as `finetune --data` reads it
    POST /api/check              the form -> the exact command, split sizes, trainable parameters, step memory
    GET  /api/runs               every run in the runs folder: settings, status, scores
    POST /api/runs               start a run of the form
    POST /api/runs/ID/stop       stop it
    GET  /api/runs/ID/log        what it did so far (JSON)
    GET  /api/runs/ID/events     the same as server-sent events, then new ones as they come, to its end
    POST /api/answer             {"run": ID or "", "prompt": ...} -> a finished run's answer (or the base's)

Every check is the command's own: the form becomes the finetune command's argv, parsed by
minituner.cli's parser, its method config built by cli_options.method_config, its data read by
Dataset.from_jsonl; an error is a 400 with that one line.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import re
import threading
import time
from pathlib import Path

import torch

import minituner as mt
from minituner.cli_options import default_lr, defaults, flag, method_config, owners, selected, words
from minituner.data import TASKS
from minituner.memory import measure_step
from minituner.methods import METHODS, PeftModel, ordered
from minituner.methods.options import annotation_of, domain, kinds

from .locales import LABELS
from .runs import Runs, command_line, read_log

UPLOAD_LIMIT = 1 << 20  # bytes of one uploaded file
MEASURED_ROWS = 256  # a step's memory is measured for batches up to this many rows (a bigger one is not run here)
TRAINING = ("steps", "batch_size", "lr", "eval_every", "patience", "seed", "val", "test", "lowercase")
PRESETS = {"full": {}, "smoke": {"steps": 30, "eval_every": 5}}  # smoke: a few steps, a point every 5


def subcommand(parser, name: str = "finetune"):
    return parser._subparsers._group_actions[0].choices[name]


def text(value) -> str:
    """A default as the page's field holds it: as the command line writes it, empty for None."""
    return "" if value is None else words(value)


def training_options(parser) -> list[dict]:
    """The finetune command's training options the page shows: flag, help and default from its parser."""
    actions = {a.dest: a for a in subcommand(parser)._actions}
    return [{"name": n, "flag": actions[n].option_strings[0], "help": actions[n].help,
             "default": text(actions[n].default), "switch": actions[n].nargs == 0} for n in TRAINING]


def method_options(key: str) -> list[dict]:
    """Method `key`'s options, from its config's fields: help, domain (type and bounds), default, choices."""
    entry, values, cli = METHODS[key], defaults(key), owners()
    out = []
    for f in entry.fields():
        if f.name not in cli:
            continue
        annotation = annotation_of(entry.config, f.name)
        m = f.metadata
        out.append({"name": f.name, "flag": flag(f.name), "help": m["help"], "domain": domain(f, annotation),
                    "default": text(values[f.name]), "switch": "bool" in kinds(annotation),
                    "choices": [words(c) for c in m["choices"]] if m.get("choices") else None})
    return out


def argv_of(parser, form: dict, out: str) -> list[str]:
    """The finetune command's words for the page's form: the method, the data, the run's folder, and
    every option whose value differs from its default."""
    key = form.get("method")
    if key not in METHODS:
        raise ValueError(f"unknown method {key!r}; the methods are {', '.join(m.key for m in ordered())}")
    argv = ["finetune", "--method", key, "--data", str(form.get("data") or ""), "--out", out]
    given = {**form.get("training", {}), **form.get("options", {})}
    for option in training_options(parser) + method_options(key):  # in the order the page shows them
        value = given.get(option["name"])
        if value in (None, ""):
            continue
        if option["switch"]:
            if bool(value) != (option["default"] == "True"):
                argv.append(option["flag"] if value else "--no-" + option["flag"][2:])
        elif str(value).strip() != option["default"]:
            argv += [option["flag"], str(value).strip()]
    return argv


def parse(parser, argv: list[str]):
    """argv parsed by the command's own parser, its method config built; a ValueError with its one line."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit:
        raise ValueError(err.getvalue().strip().removesuffix(" (see minituner finetune --help)")) from None
    return args, method_config(args)


@functools.cache
def read_data(path: str, val: float, test: float, seed: int, lowercase: bool, mtime: float) -> mt.Dataset:
    return mt.Dataset.from_jsonl(path, val=val, test=test, seed=seed, lowercase=lowercase)


def create_app(parser, runs_folder: Path, max_running: int = 1):
    """The board for the command line `parser` (minituner.cli's: the board checks and runs its finetune):
    a Flask app (the board extra's; `import minituner` never imports it)."""
    from flask import Flask, Response, jsonify, request

    torch.set_num_threads(1)  # the page's small computations; the cores are the run's
    runs = Runs(runs_folder, max_running)
    data_folder = runs.folder / "data"
    base, tokenizer = mt.load_base(), mt.CharTokenizer()
    adapters: dict[str, PeftModel] = {}  # run -> its adapter on the base, loaded once
    work = threading.Lock()  # one model computation at a time (the CPU is shared with the run)
    app = Flask(__name__, static_folder="static", static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = UPLOAD_LIMIT

    @app.errorhandler(ValueError)
    @app.errorhandler(TypeError)
    def bad_input(e):
        return jsonify(error=str(e)), 400

    @app.errorhandler(413)
    def too_large(e):
        return jsonify(error=f"the file is larger than {UPLOAD_LIMIT // 1024} KiB, the board's limit; "
                             f"train on it with `minituner finetune --data FILE`"), 413

    @app.get("/")
    def page():
        return app.send_static_file("index.html")

    @app.get("/api/setup")
    def setup():
        methods = [{"key": m.key, "label": m.label, "options": method_options(m.key),
                    "lr": selected(m.key).get("lr")} for m in ordered()]
        return jsonify(tasks=TASKS, methods=methods, training=training_options(parser), presets=PRESETS,
                       labels=LABELS, running=runs.running(), upload_limit=UPLOAD_LIMIT)

    @app.post("/api/data")
    def data():
        data_folder.mkdir(parents=True, exist_ok=True)
        if "file" in request.files:
            upload = request.files["file"]
            content = upload.read()
            stem = re.sub(r"[^\w.-]", "_", Path(upload.filename or "pairs").stem)[:40]
            path = data_folder / f"{stem}-{hashlib.sha256(content).hexdigest()[:8]}.jsonl"
            path.write_bytes(content)
            try:
                read_data(str(path), 0.2, 0.2, 0, False, path.stat().st_mtime)
            except ValueError as e:  # the line and the reason, under the name it was uploaded as
                path.unlink()
                raise ValueError(str(e).replace(str(path), upload.filename or "the file")) from None
        else:
            task = request.json.get("task")
            if task not in TASKS:
                raise ValueError(f"unknown task {task!r}; the tasks are {', '.join(TASKS)}")
            path = data_folder / f"{task}.jsonl"
            if not path.is_file():
                made = mt.make_task(task)
                pairs = made.train.examples + made.val.examples + made.test.examples
                path.write_text("".join(json.dumps({"prompt": p, "answer": a}) + "\n" for p, a in pairs),
                                encoding="utf-8")
        return jsonify(path=str(path))

    @app.post("/api/check")
    def check():
        form = request.json
        argv = argv_of(parser, form, str(runs.folder / runs.next_id(form.get("method", "")) / "adapter"))
        with work:
            args, config = parse(parser, argv)
            path = Path(args.data)
            data = read_data(str(path), args.val, args.test, args.seed, args.lowercase, path.stat().st_mtime)
            model = mt.get_peft_model(base, config)
            data.check_context(model.gpt_config.block_size, getattr(model, "num_virtual_tokens", 0))
            trainable, total = mt.count_parameters(model)
            batch = data.train.batch(min(args.batch_size, MEASURED_ROWS), torch.Generator().manual_seed(args.seed))
            memory = measure_step(model, batch) if args.batch_size <= MEASURED_ROWS else None
        return jsonify(command=command_line(argv), argv=argv, trainable=trainable, total=total,
                       memory=memory, lr=args.lr if args.lr is not None else default_lr(args.method),
                       sizes={s: len(getattr(data, s)) for s in ("train", "val", "test")},
                       preview=data.train.examples[:5])

    @app.get("/api/runs")
    def listing():
        return jsonify(runs=[runs.describe(r) for r in runs.ids()])

    @app.post("/api/runs")
    def start():
        form = request.json
        run = runs.next_id(form.get("method", ""))
        argv = argv_of(parser, form, str(runs.folder / run / "adapter"))
        with work:
            args, _ = parse(parser, argv)
        runs.start(run, argv, args.steps)
        return jsonify(runs.describe(run))

    def known(run: str) -> Path:
        if run not in runs.ids():
            raise ValueError(f"no run {run!r} in {runs.folder}")
        return runs.folder / run

    @app.post("/api/runs/<run>/stop")
    def stop(run):
        known(run)
        runs.stop(run)
        return jsonify(runs.describe(run))

    @app.get("/api/runs/<run>/log")
    def log(run):
        return jsonify(log=read_log(known(run)), run=runs.describe(run))

    @app.get("/api/runs/<run>/events")
    def events(run):
        path = known(run) / "log.jsonl"

        def stream():
            done, sent = False, 0
            while not done:
                done = runs.status(run) != "running"  # read before the log: its last lines are in
                lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
                for line in lines[sent:]:
                    if line.endswith("}"):  # a whole line (the writer may be in the middle of one)
                        yield f"data: {line}\n\n"
                        sent += 1
                if not done:
                    time.sleep(0.25)
            yield f"event: end\ndata: {json.dumps(runs.describe(run))}\n\n"

        return Response(stream(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/api/answer")
    def answer():
        run, prompt = request.json.get("run") or "", request.json.get("prompt", "")
        if run and not (known(run) and runs.describe(run)["adapter"]):
            raise ValueError(f"run {run} has no adapter: it did not finish")
        with work:
            if run and run not in adapters:  # every adapter on the one base, loaded at its first question
                adapters[run] = PeftModel.from_pretrained(base, runs.folder / run / "adapter")
            return jsonify(answer=mt.answer(adapters[run] if run else base, tokenizer, prompt))

    return app
