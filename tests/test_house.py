"""A house without circles: the imports between minituner's modules (at the top of a file or inside a
function, read from the source) never go round, so every module sits above all it imports and a
module never imports one that depends on it.

An edge is an import written in the source: ``from .x import y`` is an edge to x (to x.y where y is a
module). Python also runs a package's __init__ before its submodules; that implicit step is no edge.
"""

import ast
from pathlib import Path

import minituner

PACKAGE = Path(minituner.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The minituner modules that `name` (the file at path) imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in out if m in known and m != name}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_reader_finds_the_imports():
    edges = graph()
    assert "minituner.functional" in edges["minituner.model"]
    assert "minituner.model" in edges["minituner.methods.lora"]
    assert "minituner.methods.registry" in edges["minituner.methods.peft_model"]


def test_no_module_imports_one_that_depends_on_it():
    found = circles(graph())
    assert not found, "import circles (each group imports itself through the others):\n" + "\n".join(
        " ".join(g) for g in found)


def test_rooms_talk_one_way():
    """functional ← model ← methods ← train ← cli: no room imports the one above it."""
    edges = graph()
    below = {"minituner.functional": "minituner.model", "minituner.model": "minituner.methods",
             "minituner.methods": "minituner.train", "minituner.train": "minituner.cli"}
    for low, high in below.items():
        for name, targets in edges.items():
            if name == low or name.startswith(low + "."):
                assert not any(t == high or t.startswith(high + ".") for t in targets), (name, high)
