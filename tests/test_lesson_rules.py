"""The rules every lesson (lessons/NN_*.py, those added later too) keeps, read from its source:

1. It chooses on validation, never on test: no row, setting or name is picked by a test score.
   A pick is max/min/sorted/nlargest/nsmallest/.sort with a `key=`, max/min over tuples (the first
   element ranks, the rest is carried along), or argmax/argmin/topk; it is flagged when what ranks
   mentions the test split: a name, attribute or string containing "test" (`r["test acc"]`,
   `task.test`, `test_acc`). Reporting a range of test scores (`max(r["test acc"] for r in rows)`,
   no key) picks nothing and passes.
2. Its markdown types no measured number: a decimal (0.66), a percentage (23.5%, 77%) or a number with
   thousands separators (208,448) is printed by code, never typed into a markdown cell. Section
   numbers (§3.2) and formulas with small integers (12C² + 13C, N(0, 1)) are not such numbers.
3. Its smoke run changes presets only: the code never reads args.smoke.
4. A lesson that runs several seeds (a `seeds` preset) runs at least minituner.verdict.MIN_SEEDS of them at
   its full preset, and draws its verdicts over them through minituner.verdict (compare or trend), the one
   rule for verdicts.
"""

import ast
import functools
import re

import jupytext
import pytest

from minituner.notebooks import lessons
from minituner.verdict import MIN_SEEDS

LESSONS = lessons()
RANKERS = {"max", "min", "sorted", "nlargest", "nsmallest", "sort"}
ARG_PICKERS = {"argmax", "argmin", "topk", "idxmax", "idxmin"}


def mentions_test(node: ast.AST) -> bool:
    """Does this expression read something named for the test split?"""
    for n in ast.walk(node):
        text = (n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute)
                else n.value if isinstance(n, ast.Constant) and isinstance(n.value, str) else "")
        if re.search(r"test", text, re.IGNORECASE):
            return True
    return False


def _name(func: ast.AST) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _ranked_tuples(arg: ast.AST) -> ast.AST | None:
    """max((score, name) for …) ranks by the tuple's first element: that element, else None."""
    elt = arg.elt if isinstance(arg, (ast.GeneratorExp, ast.ListComp)) else None
    if isinstance(elt, ast.Tuple) and len(elt.elts) > 1:
        return elt.elts[0]
    if isinstance(arg, (ast.List, ast.Tuple)) and arg.elts and all(isinstance(e, ast.Tuple) and len(e.elts) > 1
                                                                   for e in arg.elts):
        return ast.Tuple(elts=[e.elts[0] for e in arg.elts])
    return None


def picks_by_test(source: str) -> list[tuple[int, str]]:
    """(line, code) of every pick by a test score in this Python source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        key = next((kw.value for kw in node.keywords if kw.arg == "key"), None)
        if name in RANKERS:
            ranked = key if key is not None else (_ranked_tuples(node.args[0]) if node.args else None)
            if ranked is None and name in ("sorted", "sort"):
                ranked = node.args[0] if node.args else None  # sorted(test scores) orders by them
                ranked = ranked if ranked is not None and mentions_test(ranked) and not isinstance(
                    ranked, (ast.GeneratorExp, ast.ListComp)) else None
            if ranked is not None and mentions_test(ranked):
                found.append((node.lineno, ast.unparse(node)))
        elif name in ARG_PICKERS and mentions_test(node):
            found.append((node.lineno, ast.unparse(node)))
    return found


@functools.cache
def cells_of(path) -> list:
    """The lesson's cells, read once for all the rules (jupytext takes ~0.1 s a lesson)."""
    return jupytext.read(path).cells


def code_of(path) -> str:
    """The lesson's code cells, joined (line numbers are the joined source's)."""
    return "\n".join(c.source for c in cells_of(path) if c.cell_type == "code")


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_chooses_on_validation_not_on_test(path):
    picks = picks_by_test(code_of(path))
    assert not picks, f"{path.name} picks by a test score (choose on data.val, report test beside it): {picks}"


@pytest.mark.parametrize("code", [
    'best = max(rows, key=lambda r: r["test acc"])',
    'best = max(rows[2:], key=lambda r: (r["test acc"], -r["test loss"]))["run"]',
    'order = sorted(models, key=lambda m: evaluate(m, task.test)["accuracy"])',
    "rows.sort(key=lambda r: r['test_acc'])",
    "acc, k = max((evaluate(m, data.test)['accuracy'], k) for k, m in models.items())",
    "k = ks[torch.tensor(test_accs).argmax()]",
    "order = sorted(test_scores)",
])
def test_a_pick_by_test_is_found(code):
    assert picks_by_test(code), code


@pytest.mark.parametrize("code", [
    'best = max(rows, key=lambda r: (r["val acc"], -r["val loss"]))',
    'lo, hi = min(r["test acc"] for r in rows), max(r["test acc"] for r in rows)',
    "low = min(curve, key=lambda e: e[1])",
    'names = sorted(r["run"] for r in rows)',
    'spread = max(accs) - min(accs)',
])
def test_a_choice_on_validation_or_a_reported_range_passes(code):
    assert not picks_by_test(code), code


# a measured-looking number: a decimal (0.66, .5), a percentage (77%, 23.5 %), thousands separators (208,448);
# not a section number (§3.2) nor part of a name (Phi-1.5, v2.0)
NUMBER = re.compile(r"(?<![\w.§])(?<!§ )(?<![A-Za-z]-)(\d*\.?\d+\s?%|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d*\.\d+)(?![\w.]*\d)")


def typed_numbers(markdown: str) -> list[str]:
    """The measured-looking numbers typed in a markdown text, section numbers (§3.2) left out."""
    return NUMBER.findall(markdown)


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_markdown_types_no_measured_number(path):
    typed = [(i, n) for i, c in enumerate(cells_of(path)) if c.cell_type == "markdown"
             for n in typed_numbers(c.source)]
    assert not typed, f"{path.name}: numbers typed in markdown (cell, number); print them from code: {typed}"


@pytest.mark.parametrize("text, numbers", [
    ("validation accuracy within 0.02 (0.66 vs 0.64)", ["0.02", "0.66", "0.64"]),
    ("they take 77% of the attention, 23.5 % at the first", ["77%", "23.5 %"]),
    ("the base has 208,448 parameters; lr .5", ["208,448", ".5"]),
    ("article §3.2 and § 4.1; steps 1. choose, 2. prepare; 12C² + 13C; N(0, 1); W is (out, in)", []),
    ("GPT-2 has 12 layers; h.0.attn; `lora_A`; x1, …, xm; Phi-1.5, GPT-3.5, v2.0", []),
    ("a rate of -0.5 or (0.5)", ["0.5", "0.5"]),
])
def test_typed_numbers_are_found_and_section_numbers_are_not(text, numbers):
    assert typed_numbers(text) == numbers


FIGURES = {"save_figure", "plot_losses", "plot_curves", "plot_tradeoff"}  # minituner.report's: each returns a path


def display_faults(cell_source: str) -> list[str]:
    """What a notebook would show wrongly for this code cell: a figure cell that echoes the path its
    last call returns (no ';'), a Markdown table printed as raw pipes instead of shown."""
    tree, faults = ast.parse(cell_source), []
    last = tree.body[-1] if tree.body else None
    if (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) and _name(last.value.func) in FIGURES
            and not cell_source.rstrip().endswith(";")):
        faults.append(f"ends with {_name(last.value.func)}(...) without ';' (the notebook echoes its path)")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) == "print" and any(
                isinstance(a, ast.Call) and _name(a.func) in ("markdown_table", "parameter_table") for a in node.args):
            faults.append(f"line {node.lineno}: print(markdown_table(...)) shows raw pipes; use show(...)")
    return faults


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_shows_tables_as_tables_and_figures_without_their_path(path):
    faults = [f for c in cells_of(path) if c.cell_type == "code" for f in display_faults(c.source)]
    assert not faults, f"{path.name}: {faults}"


def test_display_faults_are_found():
    assert display_faults("fig = 1\nsave_figure(fig, out / 'a.png')")
    assert display_faults("print(markdown_table(rows))")
    assert not display_faults("fig = 1\nsave_figure(fig, out / 'a.png');")
    assert not display_faults("show(markdown_table(rows))\npath = plot_curves(h, 't', 'p')")


def reads_smoke(code: str) -> list[int]:
    """Lines where the code reads the --smoke switch itself (`args.smoke`, `getattr(args, "smoke")`)."""
    tree = ast.parse(code)
    return sorted({n.lineno for n in ast.walk(tree) if (isinstance(n, ast.Attribute) and n.attr == "smoke") or (
        isinstance(n, ast.Call) and _name(n.func) == "getattr" and any(
            isinstance(a, ast.Constant) and a.value == "smoke" for a in n.args))})


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_the_smoke_run_changes_presets_only(path):
    """What the quick run changes is a preset, set in options(smoke=...) at the top and shown by --help; the
    code never branches on --smoke, so the smoke run executes every line the full lesson does."""
    lines = reads_smoke(code_of(path))
    assert not lines, f"{path.name} reads args.smoke at lines {lines} of its code: make that value a preset"


def test_reading_the_smoke_switch_is_found():
    assert reads_smoke("RANKS = (1, 4) if args.smoke else (1, 2, 4)") == [1]
    assert reads_smoke("x = 1\nif getattr(args, 'smoke'):\n    x = 2") == [2]
    assert not reads_smoke("args = options('t', smoke=dict(steps=3), out='o', steps=10)\nn = args.steps")


def seed_rule_faults(code: str) -> list[str]:
    """How a lesson's code breaks rule 4: too few seeds at the full preset, or seeds judged without the rule."""
    tree = ast.parse(code)
    presets = next((n for n in ast.walk(tree) if isinstance(n, ast.Call) and _name(n.func) == "options"), None)
    seeds = next((k.value for k in presets.keywords if k.arg == "seeds"), None) if presets else None
    if seeds is None:
        return []
    faults = []
    if not isinstance(seeds, ast.Tuple) or len(seeds.elts) < MIN_SEEDS:
        faults.append(f"the full preset's seeds {ast.unparse(seeds)} are fewer than {MIN_SEEDS}")
    if not any(isinstance(n, ast.ImportFrom) and n.module == "minituner.verdict" and
               {a.name for a in n.names} & {"compare", "trend"} for n in ast.walk(tree)):
        faults.append("its seeds are judged without minituner.verdict (compare or trend)")
    return faults


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_a_lesson_with_seeds_judges_them_by_the_one_rule(path):
    assert not seed_rule_faults(code_of(path)), f"{path.name}: {seed_rule_faults(code_of(path))}"


def test_seed_rule_faults_are_found():
    ok = "from minituner.verdict import compare\nargs = options('t', smoke=dict(seeds=(0,)), out='o', seeds=(0, 1, 2))"
    assert seed_rule_faults(ok) == []
    assert seed_rule_faults("args = options('t', smoke={}, out='o', steps=3)") == []  # one seed: no verdicts over seeds
    two = "args = options('t', smoke={}, out='o', seeds=(0, 1))"
    assert seed_rule_faults(two) == [f"the full preset's seeds (0, 1) are fewer than {MIN_SEEDS}",
                                     "its seeds are judged without minituner.verdict (compare or trend)"]
