"""The ``minituner`` command: compare (the main job), pretrain, verify, notebooks."""

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
    from .compare import compare
    from .report import markdown_table

    rows = compare(task=args.task, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                   device=args.device, out=args.out)
    cols = ["method", "trainable params", "trainable %", "test loss", "test acc", "train s"]
    print(markdown_table(rows, cols))
    print(f"\nfull table, loss curves and trade-off plot in {args.out}/ (table.md, losses.png, tradeoff.png)")
    return 0


def cmd_notebooks(args) -> int:
    from .notebooks import build

    return build(check=args.check, execute=not args.no_execute, only=args.only)


def cmd_memory(args) -> int:
    from .memory import estimate_memory, llama_factory_gb
    from .report import markdown_table

    est = estimate_memory(args.params, args.method, bits=args.bits, r=args.r, targets=tuple(args.targets.split(",")),
                          num_virtual_tokens=args.num_virtual_tokens, trainable_layers=args.trainable_layers,
                          batch_size=args.batch_size, seq_len=args.seq_len, pure=args.pure,
                          checkpointing=args.checkpointing)
    print(markdown_table([est.row()]))
    theirs = llama_factory_gb(args.params, args.method, args.bits, args.pure)
    print(f"\nestimate: {est.total / 1e9:.1f} GB; LLaMA-Factory's README table: "
          + (f"{theirs:.1f} GB" if theirs is not None else "no row for this setting")
          + " (see docs/memory.md for where the two differ)")
    return 0


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

    p = sub.add_parser("compare", help="the main job: every method side by side on the shipped base")
    p.add_argument("--task", default="classify", help="classify, relabel or qa")
    p.add_argument("--steps", type=int, default=250)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/compare")
    p.set_defaults(fn=cmd_compare)

    p = sub.add_parser("verify", help="check every formula of the article numerically")
    p.set_defaults(fn=cmd_verify)

    p = sub.add_parser("notebooks", help="make notebooks/ from lessons/ (jupytext) and execute them")
    p.add_argument("--check", action="store_true", help="only check that the notebooks match the lessons")
    p.add_argument("--no-execute", action="store_true", help="convert without running")
    p.add_argument("--only", default=None, help="only lessons whose file name starts with this, e.g. 08")
    p.set_defaults(fn=cmd_notebooks)

    p = sub.add_parser("memory", help="estimate one training step's memory at any size (weights, grads, AdamW, activations)")
    p.add_argument("--params", type=float, default=7e9, help="parameters of a LLaMA-shaped model, e.g. 7e9")
    p.add_argument("--method", default="lora", help="full, freeze, lora, qlora, prompt or prefix")
    p.add_argument("--bits", type=int, default=16, help="bits of the stored weights: 32, 16, or 8/4 with qlora")
    p.add_argument("--pure", action="store_true", help="bits 16 without fp32 master weights (pure bf16)")
    p.add_argument("--r", type=int, default=8, help="LoRA rank")
    p.add_argument("--targets", default="q_proj,v_proj", help="LoRA target matrices, comma-separated")
    p.add_argument("--num-virtual-tokens", type=int, default=20, help="prompt / prefix length")
    p.add_argument("--trainable-layers", type=int, default=2, help="freeze: the top blocks that train")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--checkpointing", action="store_true", help="gradient checkpointing (LLaMA-Factory's default)")
    p.set_defaults(fn=cmd_memory)

    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
