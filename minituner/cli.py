"""The ``minituner`` command: compare (the main job), sweep, pretrain, verify, notebooks."""

from __future__ import annotations

import argparse
import sys


def cmd_pretrain(args) -> int:
    from .checkpoint import ASSETS, BASE_NAME, save_model
    from .pretrain import pretrain
    from .train import answer

    model, hist, meta = pretrain(steps=args.steps, lr=args.lr, seed=args.seed, device=args.device,
                                 progress=not args.quiet)
    out = save_model(model, args.out or ASSETS / BASE_NAME, meta)
    print(f"pretrained {meta['parameters']:,} parameters for {meta['recipe']['steps']} steps "
          f"in {meta['seconds']} s: held-out loss {meta['held_out_loss']}, "
          f"facts answered both ways {meta['fact_accuracy']:.1%}")
    from .tokenizer import CharTokenizer

    tok = CharTokenizer()
    for prompt in ("the cat eats", "the animal that says woof is the"):
        print(f"  {prompt!r} -> {answer(model, tok, prompt)!r}")
    print(f"saved {out}")
    return 0


def cmd_verify(args) -> int:
    from .verify import run

    return 0 if run() else 1


def cmd_compare(args) -> int:
    from .compare import compare, compare_all
    from .report import markdown_table

    kw = dict(seeds=args.seeds, seed=args.seed, device=args.device, out=args.out, selected=args.selected,
              steps=args.steps)
    results = compare_all(**kw) if args.task == "all" else {args.task: compare(task=args.task, **kw)}
    cols = ["method", "setting", "trainable %", "val acc", "test acc", "test loss"]
    for task, rows in results.items():
        print(f"\n`{task}`:")
        print(markdown_table([{c: (f"{r[c]:.3f} ± {r[c + ' std']:.3f}" if c + " std" in r else r[c]) for c in cols}
                              for r in rows], cols))
    where = f"{args.out}/<task>/ and {args.out}/tasks.png" if args.task == "all" else f"{args.out}/"
    print(f"\nfull tables, figures and results.json in {where} (table.md, curves.png, tradeoff.png)")
    return 0


def cmd_sweep(args) -> int:
    from .compare import sweep

    chosen = sweep(task=args.task, seed=args.seed, device=args.device, out=args.out, steps=args.steps,
                   methods=args.methods.split(",") if args.methods else None)
    for key, hp in chosen.items():
        print(f"{key:12s} {hp}")
    print(f"\nsweep table and selected.json in {args.out}/ (sweep_{args.task}.md)")
    return 0


def cmd_notebooks(args) -> int:
    from .notebooks import build

    return build(check=args.check, execute=not args.no_execute, only=args.only)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="minituner", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pretrain", help="train the base model from scratch on the mini-world corpus")
    from .pretrain import RECIPE

    p.add_argument("--steps", type=int, default=RECIPE["steps"])
    p.add_argument("--lr", type=float, default=RECIPE["lr"])
    p.add_argument("--seed", type=int, default=RECIPE["seed"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="where to save (default: the shipped minituner/assets/base)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_pretrain)

    from .compare import BY_KEY, SELECTED, STEPS
    from .data import TASKS

    p = sub.add_parser("compare", help="the main job: every method side by side on the shipped base")
    p.add_argument("--task", default="classify", choices=(*TASKS, "all"),
                   help="the task, or all of them (default: classify)")
    p.add_argument("--seeds", type=int, default=1, help="runs per method, mean ± std reported (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="the first seed (default: 0)")
    p.add_argument("--steps", type=int, default=STEPS, help=f"training steps per run (default: {STEPS})")
    p.add_argument("--selected", default=str(SELECTED),
                   help="settings chosen by `minituner sweep` (default: the shipped assets/selected.json)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/compare", help="folder for the table and figures (default: runs/compare)")
    p.set_defaults(fn=cmd_compare)

    p = sub.add_parser("sweep", help="choose each method's settings (lr, k, r) on the validation split")
    p.add_argument("--task", default="classify", choices=TASKS, help="the task (default: classify)")
    p.add_argument("--seed", type=int, default=0, help="the seed of every run (default: 0)")
    p.add_argument("--steps", type=int, default=STEPS, help=f"training steps per run (default: {STEPS})")
    p.add_argument("--methods", default=None,
                   help=f"comma-separated subset of {','.join(BY_KEY)} (default: all)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/sweep", help="folder for sweep_<task>.md and selected.json (default: runs/sweep)")
    p.set_defaults(fn=cmd_sweep)

    p = sub.add_parser("verify", help="check every formula of the article numerically")
    p.set_defaults(fn=cmd_verify)

    p = sub.add_parser("notebooks", help="make notebooks/ from lessons/ (jupytext) and execute them")
    p.add_argument("--check", action="store_true", help="only check that the notebooks match the lessons")
    p.add_argument("--no-execute", action="store_true", help="convert without running")
    p.add_argument("--only", default=None, help="only lessons whose file name starts with this, e.g. 08")
    p.set_defaults(fn=cmd_notebooks)

    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
