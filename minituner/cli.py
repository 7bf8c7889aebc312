"""The ``minituner`` command: finetune your own pairs, generate, compare, sweep, pretrain, verify, notebooks.

    minituner finetune --method lora --data pairs.jsonl --out runs/mine
    minituner finetune --method lora --data pairs.jsonl --out runs/mine --nproc 2   # 2 processes, half the batch each
    minituner generate --adapter runs/mine "it says meow, so it is the"

Every number is range-checked and every device checked before any work starts; a bad
input is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import torch.distributed as dist

from . import checkpoint
from .chat import DEFAULT as DEFAULT_TEMPLATE
from .chat import TEMPLATES, parse, render
from .checkpoint import BASE_NAME, check_writable, save_model
from .checks import refuse
from .cli_options import add_method_options, default_lr, flag, method_config, selected
from .data import TASKS
from .dataset import Dataset
from .device import check_device
from .experiments import (
    SELECTED,
    STEPS,
    compare,
    compare_all,
    pm,
    row,
    rows,
    sweep,
)
from .experiments.protocol import EVAL_EVERY, PATIENCE, setting_text
from .experiments.tables import update_readme
from .gpt2 import load_any_base
from .i18n import LANGUAGES, _
from .jobs import default_jobs
from .launch import backend_for, spawn
from .memory import MAX_PARAMS, estimate_memory, llama_factory
from .methods import METHODS, MethodConfig, PeftModel, get_peft_model, ordered
from .model import GPTConfig
from .notebooks import build
from .peft_format import is_peft_folder, save_adapter
from .pretrain import RECIPE, pretrain
from .report import markdown_table
from .tokenizer import CharTokenizer
from .train import answer, check_train_args, evaluate, train
from .verify import run as verify_all
from .version import __version__

PRETRAIN_OUT = Path("runs/pretrain")
ROOT = Path(__file__).resolve().parents[1]  # a clone's root (README.md lives there; not in an installed wheel)


# ---------------------------------------------------------------- argparse type functions
def _number(kind, text: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None


def integer(low: int, high: int):
    """An argparse type: an integer in low..high (the upper bound keeps an absurd value from starting work)."""
    def parse(text: str) -> int:
        n = _number(int, text)
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high:,}, got {text}")
        return n
    return parse


def number(high: float):
    """An argparse type: a finite number > 0 and <= high."""
    def parse(text: str) -> float:
        x = _number(float, text)
        if not (math.isfinite(x) and 0 < x <= high):
            raise argparse.ArgumentTypeError(f"must be a finite number > 0 and <= {high:g}, got {text}")
        return x
    return parse


positive_int = integer(1, 10**7)  # steps, batch sizes, counts
seed = integer(0, 2**32 - 1)  # as every config's seed
learning_rate = number(10.0)  # as train() allows


def fraction(text: str) -> float:
    x = _number(float, text)
    if not 0 < x < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction strictly between 0 and 1, got {text}")
    return x


def existing(text: str, what: str) -> Path:
    """text as a Path to an existing file or folder (what); else why not: missing, a name too long, another kind."""
    from .files import not_a_file, too_long

    path = Path(text)
    if too_long(path):
        raise argparse.ArgumentTypeError(too_long(path))
    if not (path.is_file() if what == "file" else path.is_dir()):
        if not os.path.exists(path):
            raise argparse.ArgumentTypeError(f"no such {what}: {text}")
        raise argparse.ArgumentTypeError(f"{text} is {not_a_file(path) or 'a file'}, not a {what}")
    return path


def existing_file(text: str) -> Path:
    return existing(text, "file")


def existing_dir(text: str) -> Path:
    return existing(text, "folder")


def output_dir(text: str) -> Path:
    """A folder this process can write (checkpoint.check_writable): refused at once, not after training."""
    try:
        return check_writable(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# ---------------------------------------------------------------- commands
@dataclass(frozen=True)
class Run:
    """What `minituner finetune` does, resolved once from its options and checked (``resolve``): rank 0 and
    every other process get this, never the options."""

    method: str
    config: MethodConfig  # the method's, every field checked
    data: Path  # the pairs, JSON lines
    out: Path
    base: Path | None  # None: the shipped base
    val: float
    test: float
    lowercase: bool
    template: str | None  # the chat template conversations are rendered with (minituner.chat); None: pairs
    train_on_prompt: bool
    mask_history: bool
    steps: int
    batch_size: int
    lr: float  # given, or the method's as the sweep chose it
    seed: int
    device: str
    eval_every: int
    patience: int
    nproc: int
    backend: str | None  # torch.distributed's, with nproc > 1


def resolve(args) -> Run:
    """The finetune command's options, defaults filled in once and checked once, before anything is read."""
    device = str(check_device(args.device))
    lr = args.lr if args.lr is not None else default_lr(args.method)
    eval_every, patience = args.eval_every or EVAL_EVERY, args.patience or PATIENCE
    check_train_args(None, args.steps, lr, args.batch_size, eval_every, patience)  # before the data is read
    backend = backend_for(args.nproc, args.batch_size, device) if args.nproc > 1 else None
    return Run(args.method, method_config(args), args.data, args.out, args.base, args.val, args.test, args.lowercase,
               args.template, args.train_on_prompt, args.mask_history, args.steps, args.batch_size, lr, args.seed,
               device, eval_every, patience, args.nproc, backend)


def prepare(run: Run, data: Dataset | None = None):
    """(data, model) of the run: its pairs read and split (unless given), its method on its base (a bad one
    raises here)."""
    base, tok = load_any_base(run.base)  # init_text is encoded by the base's own tokenizer (virtual_tokens.py)
    if data is None:
        data = Dataset.from_jsonl(run.data, val=run.val, test=run.test, seed=run.seed, lowercase=run.lowercase,
                                  tokenizer=tok, template=run.template, train_on_prompt=run.train_on_prompt,
                                  mask_history=run.mask_history)
    model = get_peft_model(base, run.config)
    data.check_context(model.gpt_config.block_size, getattr(model, "num_virtual_tokens", 0))  # refused, not cut
    model.chat_template = data.template  # saved with the adapter; generate renders prompts with it
    return data, model


def finetune(run: Run, data: Dataset | None = None) -> None:
    """The finetune command's work in one process: all of it, or with nproc N > 1 one rank's share
    (train() on 1/N of every batch; rank 0 alone validates, prints and saves); data: the run's, already read."""
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    data, model = prepare(run, data)
    if rank == 0:
        model.print_trainable_parameters()
    device = f"cuda:{rank}" if run.backend == "nccl" else run.device  # nccl: process r on GPU r
    hist = train(model, data, steps=run.steps, lr=run.lr, batch_size=run.batch_size, seed=run.seed,
                 device=device, eval_every=run.eval_every, patience=run.patience)
    how = (f"{world} processes with {run.batch_size // world} rows each, {hist.allreduce_bytes:,} bytes "
           f"all-reduced per step; " if world > 1 else "") + \
        (f"early-stopped at step {len(hist.losses)}, " if hist.stopped_early else "") + \
        f"best validation accuracy (ties: lower loss) at step {hist.best_step}"
    if rank:
        return
    ev = evaluate(model, data.test)
    print(f"trained {len(hist.losses)} steps at lr {run.lr:g} in {hist.seconds:.1f} s ({how}); "
          f"test ({len(data.test)} pairs): loss {ev['loss']:.4f}, accuracy {ev['accuracy']:.3f}")
    save_adapter(model, run.out, run.base)  # PEFT's own format for a GPT-2 folder's LoRA, prompt, prefix
    if data.template and is_peft_folder(run.out):  # PEFT's adapter_config.json has no field for it
        print(f"note: {run.out} is in PEFT's format, which keeps no chat template; generate with "
              f"--template {data.template}")
    base = f" --base {shlex.quote(str(run.base))}" if run.base else ""
    prompt = data.test.examples[0][0]
    if data.template:  # the last user turn of the first test conversation; generate renders it with the template
        prompt = parse(prompt, data.template)[-1]["content"]
    print(f"saved {run.out}; try: minituner generate --adapter {shlex.quote(str(run.out))}{base} "
          f"{shlex.quote(prompt)}")


def cmd_finetune(args) -> int:
    checkpoint.check_folder(args.out)  # a folder holding other files is refused now, not after training
    run = resolve(args)
    if run.nproc == 1:
        finetune(run)
        return 0
    data, _ = prepare(run)  # the data read and the model built here, before any process starts: a bad input is
    spawn(finetune, nproc=run.nproc, args=(run, data), backend=run.backend)  # one line, not N tracebacks
    return 0


def cmd_generate(args) -> int:
    device = check_device(args.device)
    model, tok = load_any_base(args.base)
    if args.adapter is not None:
        model = PeftModel.from_pretrained(model, args.adapter)  # minituner's save_pretrained folder or PEFT's format
    model.to(device)
    template = args.template or getattr(model, "chat_template", None)  # the adapter's, unless told otherwise
    prompt = args.prompt
    if template:
        prompt = render([{"role": "system", "content": args.system}] * bool(args.system)
                        + [{"role": "user", "content": args.prompt}], template)
    elif args.system:
        raise ValueError("--system needs a chat template: give --template, or an adapter trained on conversations")
    print(prompt + answer(model, tok, prompt, max_new_tokens=args.max_new_tokens))
    return 0


def cmd_pretrain(args) -> int:
    assets = checkpoint.ASSETS  # read here: a test points it elsewhere
    out = args.out or (assets if args.overwrite_shipped_base else PRETRAIN_OUT)
    if out.resolve().is_relative_to(assets.resolve()) and not args.overwrite_shipped_base:
        raise ValueError(f"--out {out} is inside the installed package ({assets}), where the shipped base "
                         f"lives; give another folder, or add --overwrite-shipped-base to replace it")
    checkpoint.check_base_folder(out)  # only base.safetensors + base.json that minituner wrote may be there
    device = check_device(args.device)
    tok = CharTokenizer()
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=args.block_size, n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd)
    model, hist, meta = pretrain(steps=args.steps, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                                 config=config, device=str(device), progress=not args.quiet)
    saved = save_model(model, out / BASE_NAME, meta)
    print(f"pretrained {meta['parameters']:,} parameters for {meta['recipe']['steps']} steps "
          f"in {meta['seconds']} s: held-out loss {meta['held_out_loss']}, "
          f"facts answered both ways {meta['fact_accuracy']:.1%}")
    for prompt in ("the cat eats", "the animal that says woof is the"):
        print(f"  {prompt!r} -> {answer(model, tok, prompt)!r}")
    print(f"saved {saved}; use it with --base {out}")
    return 0


def cmd_verify(args) -> int:
    return 0 if verify_all() else 1


def cmd_compare(args) -> int:
    readmes = {"en": ROOT / "README.md", "zh": ROOT / "README.zh-CN.md"}
    if args.update_readme and (args.task != "all" or not all(p.is_file() for p in readmes.values())):
        raise ValueError("--update-readme needs --task all and a clone of the repository (README.md beside minituner/)")
    kw = dict(seeds=args.seeds, seed=args.seed, device=str(check_device(args.device)), out=args.out,
              selected=args.selected or SELECTED, steps=args.steps, jobs=args.jobs)
    results = compare_all(**kw) if args.task == "all" else {args.task: compare(task=args.task, **kw)}
    cols = ["method", "setting", "trainable %", "val acc", "test acc", "test loss", "forgetting"]
    for task, table in results.items():
        print("\n" + _("`{task}` (forgetting: the base's fact-probe accuracy minus the fine-tuned model's):").format(
            task=task))
        print(markdown_table([{c: (pm(r, c, args.seeds) if c + " std" in r else
                                   setting_text(r) if c == "setting" else r.get(c, "—")) for c in cols}
                              for r in table], cols))
    where = _("{out}/<task>/ and {out}/tasks.png").format(out=args.out) if args.task == "all" else f"{args.out}/"
    print("\n" + _("full tables, figures and results.json in {where} (table.md, curves.png, tradeoff.png, "
                   "forgetting.png)").format(where=where))
    if args.update_readme:
        for lang, path in readmes.items():
            update_readme(path, args.out, lang)
        print(_("README.md and README.zh-CN.md: results block rewritten"))
    return 0


def cmd_sweep(args) -> int:
    chosen = sweep(task=args.task, seed=args.seed, device=str(check_device(args.device)), out=args.out,
                   steps=args.steps, methods=args.methods, jobs=args.jobs)
    for key, hp in chosen.items():
        print(f"{key:12s} {hp}")
    print(f"\nsweep table and selected.json in {args.out}/ (sweep_{args.task}.md)")
    return 0


def cmd_notebooks(args) -> int:
    return build(check=args.check, execute=not args.no_execute, only=args.only,
                 langs=LANGUAGES if args.lang == "both" else (args.lang,))


def cmd_check(args) -> int:
    from .exercises import check  # the exercises' checker, only when asked for

    return check(args.exercise, args.file, args.lang)


def cmd_board(args) -> int:
    from .board import serve  # the board extra (flask), only when asked for

    serve(build_parser(), args.host, args.port, args.runs, args.max_running)
    return 0


MEMORY_OPTIONS = {"r": ("lora", "qlora"), "targets": ("lora", "qlora"), "num_virtual_tokens": ("prompt", "prefix"),
                  "trainable_layers": ("freeze",)}  # memory's options, and the layouts that read each


def cmd_memory(args) -> int:
    layout = METHODS[args.method].memory
    given = {name: getattr(args, name) for name in MEMORY_OPTIONS if getattr(args, name) is not None}
    for name in given:
        if layout not in MEMORY_OPTIONS[name]:
            users = [m.key for m in ordered() if m.memory in MEMORY_OPTIONS[name]]
            raise refuse(ValueError, name, f"--method {args.method} does not use {flag(name)} (it sets "
                                           f"{', '.join(users)})")
    if "targets" in given:
        given["targets"] = tuple(given["targets"].split(","))
    est = estimate_memory(args.params, args.method, bits=args.bits, batch_size=args.batch_size, seq_len=args.seq_len,
                          pure=args.pure, checkpointing=args.checkpointing, **given)
    print(markdown_table([est.row()]))
    print(f"\nestimate: {est.total / 1e9:.1f} GB; {llama_factory(args.params, args.method, args.bits, args.pure)} "
          "(see docs/memory.md for where they differ)")
    return 0


# ---------------------------------------------------------------- the parser
# argparse's own words, which help_text looks up in the catalogue like minituner's
ARGPARSE_WORDS = ("usage: ", "positional arguments", "options", "show this help message and exit",
                  "show program's version number and exit")
DEFAULT_SUFFIX = re.compile(r"^(.*) \(default: (.*)\)$", re.S)


def help_text(text: str) -> str:
    """A help text in the run's language (minituner.i18n; Chinese when LANG is a Chinese locale): the
    catalogue's translation, or, for "… (default: X)", its two halves translated (X is often a value)."""
    translated = _(text)
    if translated != text:
        return translated
    split = DEFAULT_SUFFIX.match(text)
    if split:
        return _("{help} (default: {default})").format(help=help_text(split[1]), default=help_text(split[2]))
    return text


def with_default(text: str, value) -> str:
    return f"{text} (default: {value})"


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Shows '(default: X)' after every option's help, unless it is required or its help says its default;
    keeps a description's lines as written; and says all of it in the run's language (help_text), argparse's
    own words ("usage:", "options") included."""

    def _get_help_string(self, action):
        if action.required or "default" in (action.help or ""):
            return help_text(action.help)
        return help_text(super()._get_help_string(action))

    def add_text(self, text):
        super().add_text(help_text(text) if text and text is not argparse.SUPPRESS else text)

    def start_section(self, heading):
        super().start_section(help_text(heading) if heading else heading)

    def add_usage(self, usage, actions, groups, prefix=None):
        super().add_usage(usage, actions, groups, prefix if prefix is not None else _("usage: "))


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): 'minituner finetune: error: argument --r: ...'."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_template_option(p, help: str):
    p.add_argument("--template", choices=list(TEMPLATES), default=None, help=help)


def add_run_options(p, steps: int, batch_size: int):
    p.add_argument("--steps", type=positive_int, default=steps, help="training steps (at most)")
    p.add_argument("--batch-size", type=positive_int, default=batch_size, help="examples per step")
    p.add_argument("--seed", type=seed, default=0, help="seed of the data order and initialisation")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps; checked before any work starts")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="minituner", description=__doc__, formatter_class=Formatter)
    parser.add_argument("--version", action="version", version=f"minituner {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help, fn):
        p = sub.add_parser(name, help=help, description=help, formatter_class=Formatter)
        p.set_defaults(fn=fn)
        return p

    p = command("finetune", "fine-tune the shipped base (or --base) on your own (prompt, answer) pairs", cmd_finetune)
    p.add_argument("--method", required=True, choices=[m.key for m in ordered()], help="the fine-tuning method")
    p.add_argument("--data", required=True, type=existing_file,
                   help='a JSON-lines file, one {"prompt": ..., "answer": ...} per line, or one conversation per '
                        'line: {"messages": [{"role": ..., "content": ...}, ...]} (OpenAI) or {"conversations": '
                        '[{"from": ..., "value": ...}, ...]} (sharegpt)')
    p.add_argument("--out", required=True, type=output_dir, help="folder to save the result in (save_pretrained)")
    p.add_argument("--base", type=existing_dir, default=None,
                   help="a folder written by `minituner pretrain --out`, or a Hugging Face GPT-2 folder "
                        "(config.json, model.safetensors, vocab.json, merges.txt) (default: the shipped base)")
    p.add_argument("--val", type=fraction, default=0.2, help="fraction of the pairs held out for early stopping")
    p.add_argument("--test", type=fraction, default=0.2, help="fraction of the pairs held out for the test score")
    p.add_argument("--lowercase", action="store_true", help="lower-case prompts and answers")
    add_template_option(p, _("the chat template a file of conversations is rendered with, saved with the result "
                             "(default: {template}); with a file of pairs, each becomes a one-turn conversation "
                             "(default: none, the pairs as they are)").format(template=DEFAULT_TEMPLATE))
    p.add_argument("--train-on-prompt", action="store_true",
                   help="conversations: the loss counts the system and user turns too (LLaMA-Factory's switch)")
    p.add_argument("--mask-history", action="store_true",
                   help="conversations: the loss counts the last assistant turn only (LLaMA-Factory's switch)")
    g = p.add_argument_group("training")
    add_run_options(g, steps=300, batch_size=16)
    g.add_argument("--lr", type=learning_rate, default=None,
                   help=with_default("learning rate", _("the method's, as `minituner sweep` chose it on classify: "
                                                         "{rates}").format(rates=", ".join(
                       f"{m.key} {lr:g}" for m in ordered() if (lr := selected(m.key).get("lr"))))))
    g.add_argument("--eval-every", type=positive_int, default=None,
                   help=with_default("steps between validation checks", EVAL_EVERY))
    g.add_argument("--patience", type=positive_int, default=None,
                   help=with_default("stop after this many validation checks without improvement, the best "
                                     "weights kept", PATIENCE))
    g.add_argument("--nproc", type=positive_int, default=1, metavar="N",
                   help="processes training together (data parallel, torch.distributed): each takes "
                        "--batch-size / N rows of every batch; gloo on CPUs (N <= cores), nccl with --device cuda "
                        "(N <= GPUs); rank 0 validates")
    add_method_options(p)

    p = command("generate", "answer a prompt with the base, or with a fine-tuned result (--adapter)", cmd_generate)
    p.add_argument("prompt", help="the text to continue, in the tokenizer's alphabet")
    p.add_argument("--adapter", type=existing_dir, default=None,
                   help="a folder written by `minituner finetune --out` (default: none, the base alone)")
    p.add_argument("--base", type=existing_dir, default=None,
                   help="a folder written by `minituner pretrain --out`, or a Hugging Face GPT-2 folder "
                        "(config.json, model.safetensors, vocab.json, merges.txt) (default: the shipped base)")
    add_template_option(p, "render the prompt as a user turn with this chat template (default: the one the "
                           "adapter was trained with; none for the base alone or an adapter trained on pairs)")
    p.add_argument("--system", default=None, help="a system turn before the prompt (needs a chat template)")
    p.add_argument("--max-new-tokens", type=positive_int, default=None,
                   help="tokens to generate at most (default: the room left in the context; "
                        "generation stops at the end of the answer)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")




    steps_help = _("training steps per run at most (default per task: {steps})").format(steps=STEPS)
    jobs_help = with_default("runs side by side, one thread each", _("one per core, here {n}").format(n=default_jobs()))

    def method_keys(text: str) -> list[str]:
        try:
            return [row(k.strip()).key for k in text.split(",")]
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    p = command("compare", "the main job: every method side by side on the shipped base", cmd_compare)
    p.add_argument("--task", default="classify", choices=(*TASKS, "all"), help="the task, or all of them")
    p.add_argument("--seeds", type=positive_int, default=1, help="runs per method, mean ± std reported")
    p.add_argument("--seed", type=seed, default=0, help="the first seed")
    p.add_argument("--steps", type=positive_int, default=None, help=steps_help)
    p.add_argument("--jobs", type=positive_int, default=None, help=jobs_help)
    p.add_argument("--selected", type=existing_file, default=None,
                   help="settings chosen by `minituner sweep` (default: the shipped selection)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps; checked before any work starts")
    p.add_argument("--out", type=output_dir, default=Path("runs/compare"), help="folder for the tables and figures")
    p.add_argument("--update-readme", action="store_true",
                   help="with --task all: rewrite the results block of README.md and README.zh-CN.md from --out")

    p = command("sweep", "choose each method's settings (lr, k, r) on the validation split", cmd_sweep)
    p.add_argument("--task", default="classify", choices=TASKS, help="the task")
    p.add_argument("--seed", type=seed, default=0, help="the seed of every run")
    p.add_argument("--steps", type=positive_int, default=None, help=steps_help)
    p.add_argument("--jobs", type=positive_int, default=None, help=jobs_help)
    p.add_argument("--methods", type=method_keys, default=None,
                   help=with_default(_("comma-separated subset of {methods}").format(
                       methods=", ".join(m.key for m in rows())), "all"))
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps; checked before any work starts")
    p.add_argument("--out", type=output_dir, default=Path("runs/sweep"),
                   help="folder for sweep_<task>.md and selected.json")

    p = command("pretrain", "train a base model from scratch on the mini-world corpus", cmd_pretrain)
    add_run_options(p, steps=RECIPE["steps"], batch_size=RECIPE["batch_size"])
    p.add_argument("--lr", type=learning_rate, default=RECIPE["lr"], help="peak learning rate")
    p.add_argument("--out", type=output_dir, default=None,
                   help=with_default("folder to save base.safetensors and base.json in", PRETRAIN_OUT))
    p.add_argument("--overwrite-shipped-base", action="store_true",
                   help="allow writing into the installed package (minituner/assets), replacing the shipped base")


    size = GPTConfig()
    p.add_argument("--n-layer", type=positive_int, default=size.n_layer, help="transformer blocks")
    p.add_argument("--n-embd", type=positive_int, default=size.n_embd, help="model width C")
    p.add_argument("--n-head", type=positive_int, default=size.n_head, help="attention heads (must divide --n-embd)")
    p.add_argument("--block-size", type=positive_int, default=size.block_size, help="context length in tokens")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    command("verify", "check every formula of the article numerically", cmd_verify)

    p = command("notebooks", "make notebooks/ (English) and notebooks/zh/ (Chinese) from lessons/ (jupytext) and "
                "execute them", cmd_notebooks)
    p.add_argument("--check", action="store_true", help="only check that the notebooks match the lessons")
    p.add_argument("--no-execute", action="store_true", help="convert without running")
    p.add_argument("--only", default=None, help="only lessons whose file name starts with this, e.g. 08")
    p.add_argument("--lang", choices=(*LANGUAGES, "both"), default="both", help="which notebooks to make")


    p = command("memory", "estimate one training step's memory at any size (weights, grads, AdamW, activations)",
                cmd_memory)
    p.add_argument("--params", type=number(MAX_PARAMS), default=7e9, help="parameters of a LLaMA-shaped model, e.g. 7e9")
    p.add_argument("--method", default="lora", choices=[m.key for m in ordered() if m.memory],
                   help="the fine-tuning method (those whose memory layout minituner.memory knows)")
    p.add_argument("--bits", type=int, default=16, choices=(32, 16, 8, 4),
                   help="bits of the stored weights: 32, 16, or 8/4 with qlora")
    p.add_argument("--pure", action="store_true", help="bits 16 without fp32 master weights (pure bf16)")
    default = {n: q.default for n, q in inspect.signature(estimate_memory).parameters.items()}
    p.add_argument("--r", type=positive_int, default=None, help=with_default("LoRA rank", default["r"]))
    p.add_argument("--targets", default=None,
                   help=with_default("LoRA target matrices, comma-separated", ",".join(default["targets"])))
    p.add_argument("--num-virtual-tokens", type=positive_int, default=None,
                   help=with_default("prompt / prefix length", default["num_virtual_tokens"]))
    p.add_argument("--trainable-layers", type=positive_int, default=None,
                   help=with_default("freeze: the top blocks that train", default["trainable_layers"]))
    p.add_argument("--batch-size", type=positive_int, default=1, help="sequences per step")
    p.add_argument("--seq-len", type=positive_int, default=512, help="tokens per sequence")
    p.add_argument("--checkpointing", action="store_true", help="gradient checkpointing (LLaMA-Factory's default)")

    p = command("check", "grade your solution of a lesson's exercise against minituner's own code "
                "(exercises/NN_name.py)", cmd_check)
    p.add_argument("exercise", help="the exercise, e.g. 06_lora (an unknown name lists them)")
    p.add_argument("file", nargs="?", default=None, help="your file (default: exercises/EXERCISE.py in the clone)")
    p.add_argument("--lang", choices=("en", "zh"), default=None, help="language of the report (default: "
                   "MINITUNER_LANG, else zh when the locale is Chinese, else en)")

    p = command("board", "a local web page: choose a method, run finetune, watch it live, compare runs, ask "
                "the result (needs the board extra; docs/board.md)", cmd_board)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this computer only)")
    p.add_argument("--port", type=integer(0, 65535), default=7860, help="port (0: any free one)")
    p.add_argument("--runs", type=output_dir, default=Path("runs/board"), help="folder that keeps every run")
    p.add_argument("--max-running", type=positive_int, default=1, help="runs allowed at the same time")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, TypeError, OSError) as e:  # bad input, a file that cannot be read: one line, no traceback
        command = parser._subparsers._group_actions[0].choices[args.command]
        options = {a.dest for a in command._actions if a.option_strings}
        message = " ".join(str(e).split())
        field = getattr(e, "field", None)  # the argument the error is about (checks.refuse, ConfigError)
        if field in options and not message.startswith("argument "):
            message = f"argument {flag(field)}: {message}"
        print(f"minituner {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
