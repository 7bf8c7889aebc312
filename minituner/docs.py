"""The pages of docs/ whose numbers are measured or computed, rendered from the code and committed data.

    python -m minituner.docs           rewrite them
    python -m minituner.docs --check   exit 1 if a committed page differs from what the code renders
    python -m minituner.docs --time-lessons   run every lesson once at --smoke, keep the times, rewrite

docs/memory.md is rendered whole from the estimator (minituner/memory.py) and LLaMA-Factory's table as
it holds it (``memory.LLAMA_FACTORY``). In docs/errata.md the numbers of erratum 8 are a block rendered
from the comparison's committed results (docs/compare/classify/results.json), between the markers
``<!-- generated: NAME -->`` and ``<!-- end: NAME -->``. In docs/teaching.md the lesson times come from
the committed notebooks (each code cell's recorded start and end, full preset) and from
docs/lesson_times.json (each lesson run once as a script at --smoke, by
``python -m minituner.docs --time-lessons``). Nothing here is timed when a page is rendered: a time is
measured once by the command that writes its data, and only read here.

Each page is rendered in English and in Chinese by the same code: docs/zh/memory.md whole, and in
docs/zh/teaching.md the block of lesson times (erratum 8's Chinese block is in docs/errata.md itself). The
prose is written in English here and looked up in the message catalogue (minituner.i18n; its Chinese is in
minituner/locale/zh/docs.po), so both languages carry the same numbers. The other pages of docs/zh/ are
written by hand: tests/test_docs.py keeps their headings those of the English page.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from .i18n import _, speaking, translate
from .memory import (
    FACTORY_RUN,
    FACTORY_SETTINGS,
    LLAMA_FACTORY,
    compare_with_llama_factory,
    estimate_memory,
    gpt_shape,
    llama_factory_rule,
    llama_shape,
)
from .model import GPTConfig
from .report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def gb(v: float, digits: int = 1) -> str:
    return f"{v / 1e9:,.{digits}f}"


def memory_page(lang: str = "en") -> str:
    """docs/memory.md (lang "en") or docs/zh/memory.md ("zh"), every number computed here; the prose is
    English in the code and Chinese in the catalogue (minituner/locale/zh/docs.po)."""
    with speaking(lang):
        return _memory_page()


def _memory_page() -> str:
    b7 = llama_shape(7e9)
    rows = compare_with_llama_factory()
    by = {(r["LLaMA-Factory row"], r["size"]): r for r in rows}
    full_row, pure_row, lora_row = list(FACTORY_SETTINGS)[:3]
    peft_rows = [label for label, (kind, _, _) in FACTORY_SETTINGS.items() if kind != "full"]
    rule_rows = [{"LLaMA-Factory row": label, "its rule (x billion parameters)": LLAMA_FACTORY[label]["x B"],
                  **{_("rule at {size}").format(size=size): f"{llama_factory_rule(label, float(size[:-1]) * 1e9):g}"
                     for size in ("7B", "70B")},
                  **{_("table at {size}").format(size=size): LLAMA_FACTORY[label][size] for size in ("7B", "70B")}}
                 for label in FACTORY_SETTINGS]
    lora7 = estimate_memory(7e9, "lora", **FACTORY_RUN)
    adapters = lora7.total - lora7.activations - 2 * b7.n_params()  # all but the frozen 16-bit weights
    full_ckpt = estimate_memory(7e9, "full", **FACTORY_RUN)
    full_no = estimate_memory(7e9, "full", **FACTORY_RUN | {"checkpointing": False})
    freeze_no = estimate_memory(7e9, "freeze", trainable_layers=2, **FACTORY_RUN | {"checkpointing": False})
    block = b7.block_params()
    left = {label: by[label, "7B"]["LLaMA-Factory GB"] - by[label, "7B"]["estimate GB"] for label in peft_rows}
    sizes = {size: llama_shape(float(size[:-1]) * 1e9).n_params() for size in ("7B", "30B", "70B")}
    b6 = llama_shape(6e9)
    article = [("full, mixed precision", "full", {}), ("full, pure bf16", "full", {"pure": True}),
               ("LoRA r=8, 16-bit base", "lora", {}), ("QLoRA, 4-bit base", "qlora", {"bits": 4})]
    est6 = {name: estimate_memory(6e9, method, **FACTORY_RUN | kw) for name, method, kw in article}
    six = [{"6B model": name, "estimate GB": round(e.total / 1e9, 1), "> 20 GB": "yes" if e.total > 20e9 else "no"}
           for name, e in est6.items()]
    mixed = est6["full, mixed precision"]
    run = {"batch": FACTORY_RUN["batch_size"], "seq": FACTORY_RUN["seq_len"], "n_layer": b7.n_layer}
    page = [
        _("# How much memory fine-tuning needs: minituner's estimator beside LLaMA-Factory's table"),
        _("<!-- Rendered by `python -m minituner.docs` from minituner/memory.py; a test fails when this page "
          "differs. -->"),
        _("`minituner memory --params 7e9 --method lora --r 8 --bits 16` (and `minituner.memory.estimate_memory`)\n"
          "counts the four things one AdamW training step holds — weights, gradients, optimizer state,\n"
          "activations — from first principles. The formulas are in the docstring of `minituner/memory.py`;\n"
          "every number on this page is computed by `minituner/docs.py` from it."),
        _("## 1. Checked against a measured step at minituner's size"),
        _("At the shipped base's size ({n_params} parameters, a batch of the `classify`\n"
          "task) the estimate of weights, gradients and AdamW's moments equals the measured bytes exactly, and\n"
          "the activation count (op by op: what autograd saves for each method, a frozen linear keeping nothing\n"
          "for its weight, nothing kept below the lowest trainable tensor) agrees with the bytes the saved-tensor\n"
          "hooks see, for full fine-tuning, freezing, LoRA (q,v and all six matrices), prompt tuning and\n"
          "P-Tuning v2, within the tolerance `tests/test_memory.py` asserts. Lesson 10 makes the same comparison\n"
          "at GPT-2 small's size.").format(n_params=f"{gpt_shape(GPTConfig()).n_params():,}"),
        _("## 2. Beside LLaMA-Factory's table"),
        _("LLaMA-Factory's README (\"Hardware Requirement\", *estimated*; hiyouga/LLaMA-Factory, README.md\n"
          "at commit 00409ff28a30f48d13b808029d37861423673a4a) gives GB per model size, and beside it a rule\n"
          "for x billion parameters. `minituner.memory.LLAMA_FACTORY` holds both, once; `minituner memory`\n"
          "and this page quote them from there. The estimator runs at LLaMA-Factory's usual settings: a\n"
          "LLaMA-shaped model (at 7e9 exactly LLaMA-7B: {n_layer} blocks of width {n_embd}, SwiGLU\n"
          "{mlp_hidden}, {n_params} parameters), batch {batch} × {seq}\n"
          "tokens, gradient checkpointing, AdamW, LoRA r = 8 on q_proj and v_proj. GB = 10⁹ bytes.\n"
          "(`memory.compare_with_llama_factory()`.)").format(
            n_embd=b7.n_embd, mlp_hidden=f"{b7.mlp_hidden:,}", n_params=f"{b7.n_params():,}", **run),
        markdown_table(rows),
        _("The README's rule and its table are two different things: the table's cells are not the rule\n"
          "applied to the name of the size."),
        markdown_table(rule_rows),
        _("Where they agree, and why they differ:"),
        "\n".join([
            _("- **Full fine-tuning: the bytes per parameter agree.** The README's rule is\n"
              "  {rule_full} GB for x billion parameters in mixed precision and\n"
              "  {rule_pure} in pure bf16; the estimator's bytes per trainable parameter are the\n"
              "  same 18 (fp32 weight 4, its 16-bit working copy 2, fp32 gradient 4, AdamW m and v 8) and 8 "
              "(2 + 2 + 4).\n"
              "  The estimator counts a shape, not a name: {p7:.2f}B parameters at 7B,\n"
              "  {p30:.1f}B for the d = 128·L shape nearest 30B, {p70:.1f}B for a 70B shape\n"
              "  without grouped-query attention.").format(
                rule_full=LLAMA_FACTORY[full_row]["x B"], rule_pure=LLAMA_FACTORY[pure_row]["x B"],
                p7=sizes["7B"] / 1e9, p30=sizes["30B"] / 1e9, p70=sizes["70B"] / 1e9),
            _("- **The PEFT rows: the README's rule is the frozen weights alone.** Its\n"
              "  {rules} is the frozen weights at that\n"
              "  precision, for the nominal size; the estimator adds the adapters ({lora_m:.1f}M parameters\n"
              "  for LoRA r=8 on q,v at 7B: {lora_mb:.0f} MB with\n"
              "  their gradients and moments) and the activations ({activations} GB with checkpointing), but\n"
              "  counts {p7:.2f}B, not 7B, and keeps the embeddings and norms at 16 bits under QLoRA.\n"
              "  The table is above both; at 7B it is {left}: what a real run adds that no count of tensors "
              "sees (the\n"
              "  CUDA context, the caching allocator's spare blocks, kernels' workspaces), and longer sequences "
              "or batches.").format(
                rules=_(", ").join(LLAMA_FACTORY[label]["x B"] for label in peft_rows),
                lora_m=lora7.trainable / 1e6, lora_mb=adapters / 1e6, activations=gb(lora7.activations, 2),
                p7=b7.n_params() / 1e9,
                left=_("; ").join(_("{gb:.1f} GB above the estimate ({row})").format(gb=v, row=_(k))
                                  for k, v in left.items())),
            _("- **Activations are small here because of LLaMA-Factory's defaults.** Without gradient "
              "checkpointing,\n"
              "  full fine-tuning of LLaMA-7B at batch {batch} × {seq} keeps\n"
              "  {without} GB of activations (and the count grows with batch × tokens, and with tokens²\n"
              "  for the attention scores an eager implementation keeps); with it, {with_} GB.").format(
                without=gb(full_no.activations, 2), with_=gb(full_ckpt.activations, 2), **run),
            _("- **Freeze shares LoRA's row in LLaMA-Factory**, but its cost depends on how many layers train:\n"
              "  the top 2 of {n_layer} blocks train 2 × {block_m:.0f}M parameters, each holding 16 bytes more "
              "than\n"
              "  a frozen 16-bit weight (an fp32 master copy 4, its gradient 4, m and v 8): {extra} GB at 7B\n"
              "  (`minituner memory --method freeze --trainable-layers 2`: {total} GB without "
              "checkpointing).").format(
                block_m=block / 1e6, extra=gb(2 * block * 16), total=gb(freeze_no.total), **run),
        ]),
        _("## 3. The article's \"more than 20 GB\" (§5.2)"),
        _("The article says fine-tuning a model like ChatGLM-6B or LLaMA needs \"more than 20 GB\" of GPU\n"
          "memory. For a 6B LLaMA-shaped model ({p6:.2f}B parameters), batch\n"
          "{batch} × {seq}, checkpointing:").format(p6=b6.n_params() / 1e9, **run),
        markdown_table(six),
        _("So the claim holds for full fine-tuning, but understates it {fold:.1f}-fold: AdamW's state\n"
          "alone (8 bytes per parameter) is {adamw_state} GB at 6B. The 20 GB the article names is what a\n"
          "*parameter-efficient* method needs on a 16-bit base with room for longer sequences — which is the\n"
          "article's point about why PEFT exists, made with the wrong row.").format(
            fold=mixed.total / 20e9, adamw_state=gb(mixed.optimizer, 0)),
    ]
    return "\n\n".join(page) + "\n"



def erratum_8(lang: str) -> str:
    """Erratum 8's numbers (lang "en" or "zh"): trainable parameters against a step's memory, full fine-tuning
    over each PEFT method, from the committed comparison."""
    res = json.loads((DOCS / "compare" / "classify" / "results.json").read_text())
    rows = {r["key"]: r for r in res["rows"]}
    full = rows["full"]
    peft = [r for key, r in rows.items() if key not in ("full", "scratch")]

    def span(k):
        """(smallest, largest) of full's value over each method's, as "2.1× (freeze) … 204× (prompt)" parts."""
        folds = sorted((full[k] / r[k], translate(r["method"], lang)) for r in peft)
        return folds[0], folds[-1]

    (t_lo, t_lo_m), (t_hi, t_hi_m) = span("trainable params")
    (m_lo, m_lo_m), (m_hi, m_hi_m) = span("step memory bytes")
    return translate(
        "- What they show, in [the classify comparison](compare/classify/table.md) ({seeds} seeds): against full "
        "fine-tuning the trainable count falls {t_lo:.1f}× ({t_lo_m}) to {t_hi:.0f}× ({t_hi_m}), {o_lo:.1f} to "
        "{o_hi:.1f} orders of magnitude, and the optimizer state with it; a step's memory falls only "
        "{m_lo:.1f}× ({m_lo_m}) to {m_hi:.1f}× ({m_hi_m}), because the saved activations and the forward pass "
        "through the whole frozen model remain.", lang).format(
        seeds=res["seeds"], t_lo=t_lo, t_lo_m=t_lo_m, t_hi=t_hi, t_hi_m=t_hi_m, o_lo=math.log10(t_lo),
        o_hi=math.log10(t_hi), m_lo=m_lo, m_lo_m=m_lo_m, m_hi=m_hi, m_hi_m=m_hi_m)


LESSON_TIMES = DOCS / "lesson_times.json"  # {"cores": N, "smoke seconds": {lesson: s}}, by --time-lessons


def notebook_seconds(path: Path) -> float:
    """The seconds a committed notebook's code cells ran (their recorded execute_input .. execute_reply)."""
    cells = json.loads(path.read_text())["cells"]
    stamps = [c["metadata"]["execution"] for c in cells if c["metadata"].get("execution")]
    when = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return sum((when(e["shell.execute_reply"]) - when(e["iopub.execute_input"])).total_seconds() for e in stamps)


def time_lessons() -> None:
    """Run each lesson once as a script at --smoke and keep its wall seconds in docs/lesson_times.json."""
    smoke = {}
    for lesson in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py")):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(lesson), "--smoke"], check=True, capture_output=True,
                       env=os.environ | {"MPLBACKEND": "Agg"}, cwd=ROOT)
        smoke[lesson.stem] = round(time.perf_counter() - t0, 1)
    LESSON_TIMES.write_text(json.dumps({"cores": os.cpu_count(), "smoke seconds": smoke}, indent=1) + "\n")


def lesson_times(lang: str = "en") -> str:
    """Each lesson's time at its full preset (its committed notebook) and at --smoke (lesson_times.json),
    beside its coding exercises, in `lang`."""
    from .exercises import EXERCISES

    data = json.loads(LESSON_TIMES.read_text())
    rows = []
    with speaking(lang):
        for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
            rows.append({"lesson": nb.stem, "full preset, s (notebook)": f"{notebook_seconds(nb):.1f}",
                         "--smoke, s (script)": f"{data['smoke seconds'][nb.stem]:.1f}",
                         "coding exercises": translate(", ", lang).join(
                             f"`{k}`" for k in EXERCISES if k[:2] == nb.stem[:2])})
        table = markdown_table(rows)
    return translate("Measured on a {cores}-core CPU: the full preset is the sum of the committed notebook's "
                     "cell times (`minituner notebooks` records them), --smoke one run of the script "
                     "(`python -m minituner.docs --time-lessons`).", lang).format(cores=data["cores"]) + "\n\n" + table


# Every page of docs/ named here has its Chinese version, docs/zh/ under the same name (tests/test_docs.py).
TRANSLATED = ("memory.md", "peft.md", "distributed.md", "benchmarks.md", "design.md", "teaching.md")
BLOCKS = {"errata.md": {"erratum 8": lambda: erratum_8("en"), "勘误 8": lambda: erratum_8("zh")},
          "teaching.md": {"lesson times": lesson_times},
          "zh/teaching.md": {"每课用时": lambda: lesson_times("zh")}}
PAGES = {"memory.md": memory_page, "zh/memory.md": lambda: memory_page("zh")}


def render_blocks(text: str, blocks: dict) -> str:
    """`text` with each generated block replaced by what its function renders now."""
    for name, fn in blocks.items():
        pattern = re.compile(rf"(<!-- generated: {re.escape(name)} -->\n).*?(<!-- end: {re.escape(name)} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"no block '{name}' (<!-- generated: {name} --> … <!-- end: {name} -->)")
        text = pattern.sub(lambda m, fn=fn: m.group(1) + fn() + "\n" + m.group(2), text)
    return text


def rendered() -> dict[Path, str]:
    """Each generated page (or page with generated blocks) and the text the code renders for it now."""
    out = {DOCS / name: fn() for name, fn in PAGES.items()}
    out |= {DOCS / name: render_blocks((DOCS / name).read_text(), blocks) for name, blocks in BLOCKS.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--time-lessons" in argv:
        time_lessons()
    check = "--check" in argv
    pages = rendered()
    stale = [path for path, text in pages.items() if not path.exists() or path.read_text() != text]
    for path in stale:
        if check:
            print(f"out of date: {path.relative_to(ROOT)} (run `python -m minituner.docs`)")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(pages[path])
            print(f"wrote {path.relative_to(ROOT)}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
