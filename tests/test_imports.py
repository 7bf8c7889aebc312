"""Every third-party import is declared (issue 33). A brand-new environment holds only what
pyproject.toml asks for, so a module that this machine happens to have (scipy, once) passes here
and fails on a user's. Each file's imports are read from its syntax tree (module level, inside
functions, and importlib.import_module / tests' optional("...") with a constant name; not those
under `try: ... except ImportError` whose handler goes on without them, which are probes) and each third-party one must be declared
where the files that import it are installed:

    minituner/ at module level      the core dependencies (`pip install -e .`)
    minituner/ inside a function    the core or an extra (a feature that says which extra it needs)
    lessons/                        the core (a student runs a lesson after `pip install -e .`)
    tests/                          the core, the dev and board extras (the README's test command)
    benchmarks/                     the core and the bench extra
    exercises/                      the core (a student's skeletons and the solutions)
"""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"minituner": ("core",), "lessons": ("core",), "tests": ("core", "dev", "board"), "benchmarks": ("core", "bench"),
           "exercises": ("core",)}
DYNAMIC = {"import_module", "optional", "__import__", "importorskip"}  # calls whose constant argument is imported


def normalise(name: str) -> str:
    """A distribution's name as PEP 503 compares them: 'Jupyter_Client' -> 'jupyter-client'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> dict[str, set[str]]:
    """{'core' | extra: the distributions pyproject.toml names there}."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"core": project["dependencies"], **project.get("optional-dependencies", {})}
    return {g: {normalise(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in reqs} for g, reqs in groups.items()}


def imports(source: str) -> list[tuple[str, bool]]:
    """(top-level module, imported inside a function) for every import in source."""
    out = []

    def visit(node, in_function):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            names = [node.args[0].value] if func in DYNAMIC else []
        out.extend((n.split(".")[0], in_function) for n in names)
        inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        probe = isinstance(node, ast.Try) and any(  # `try: import x / except ImportError: pass`: works without x
            getattr(h.type, "id", None) in ("ImportError", "ModuleNotFoundError")
            and not any(isinstance(n, ast.Raise) for n in ast.walk(h)) for h in node.handlers)
        guarded = node.body if probe else []  # a handler that raises ("needs the extra …") marks a need
        for child in ast.iter_child_nodes(node):
            if child not in guarded:
                visit(child, inside)

    visit(ast.parse(source), False)
    return out


def undeclared(folder: str, files: dict[str, str], groups: dict[str, set[str]]) -> list[str]:
    """'file: module (distribution) is not declared in core/dev' for each import no allowed group declares.
    files: {name: source}; modules defined by the files themselves (and minituner) are the project's own."""
    own = {"minituner"} | {Path(name).stem for name in files}
    dists = packages_distributions()
    problems = []
    for name, source in files.items():
        for module, in_function in imports(source):
            if module in own or module in sys.stdlib_module_names:
                continue
            allowed = FOLDERS[folder] if not (folder == "minituner" and in_function) else tuple(groups)
            wanted = {normalise(d) for d in dists.get(module, [module])}
            if not any(wanted & groups.get(g, set()) for g in allowed):
                problems.append(f"{name}: {module} ({', '.join(sorted(wanted))}) is not declared in "
                                f"{' or '.join(allowed)} (pyproject.toml)")
    return sorted(set(problems))


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_third_party_import_is_declared_in_the_extra_that_installs_it(folder):
    files = {str(f.relative_to(ROOT)): f.read_text(encoding="utf-8") for f in sorted((ROOT / folder).rglob("*.py"))}
    assert files, f"no Python files under {folder}/"
    assert undeclared(folder, files, declared()) == []


def test_an_undeclared_import_is_found_wherever_it_hides():
    groups = declared()
    code = ("import torch\nimport scipy.linalg\n"
            "def f():\n    import jupytext\n    from hypothesis import given\n"
            "g = lambda: importlib.import_module('sympy')\n"
            "try:\n    import ipywidgets\nexcept ImportError:\n    pass\n"
            "try:\n    import werkzeug\nexcept ImportError:\n    raise ValueError('needs the extra')\n")
    found = undeclared("lessons", {"lessons/99_x.py": code}, groups)
    assert [p.split(": ")[1].split(" ")[0] for p in found] == ["hypothesis", "jupytext", "scipy", "sympy", "werkzeug"]
    assert undeclared("tests", {"tests/t.py": code}, groups)[0].startswith("tests/t.py: scipy (scipy)")
    # a function-level import in the package may come from any extra; a module-level one only from the core
    assert undeclared("minituner", {"minituner/m.py": "def f():\n    import jupytext\n"}, groups) == []
    assert undeclared("minituner", {"minituner/m.py": "import jupytext\n"}, groups) != []


def test_the_oracles_are_pinned_installed_and_named_by_docs_peft():
    """transformers and peft, which the differential tests compare against, are pinned to one release each;
    that release is the one installed, and docs/peft.md names it."""
    from importlib.metadata import version

    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    pins = dict(re.fullmatch(r"(transformers|peft)==([\w.]+)", r).groups() for r in dev
                if re.fullmatch(r"(transformers|peft)==([\w.]+)", r))
    assert set(pins) == {"transformers", "peft"}, f"the dev extra must pin transformers and peft exactly: {dev}"
    assert {name: version(name) for name in pins} == pins
    assert f"PEFT {pins['peft']} with transformers {pins['transformers']}" in (ROOT / "docs" / "peft.md").read_text()
