"""The package's layering, checked: every import points down the layer list, and no two modules
import each other, directly or through others (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import rtseg

SRC = Path(rtseg.__file__).parent

# lowest first; a module may import from its own layer or any layer below
LAYERS = [
    ["errors", "timing", "utils", "metrics"],
    ["data", "models"],
    ["tracking", "checkpoints"],
    ["training"],
    ["infer"],
    ["bench", "realtime"],
    ["api", "__init__"],
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        mods[".".join(["rtseg", *parts])] = path
    return mods


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """rtseg modules imported anywhere in ``path`` (``from rtseg.x import y`` counts y when it is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n in modules and n != "rtseg"}
    return found


def _layer(module: str) -> int:
    top = module.split(".")[1] if module != "rtseg" else "__init__"
    assert top in RANK, f"{module}: add its top-level name to LAYERS in {__file__}"
    return RANK[top]


def test_every_import_points_down():
    modules = _modules()
    upward = [
        f"{m} (layer {_layer(m)}) imports {dep} (layer {_layer(dep)})"
        for m, path in modules.items()
        if m != "rtseg"
        for dep in sorted(_imports(path, modules))
        if _layer(dep) > _layer(m)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    modules = _modules()
    graph = {m: _imports(p, modules) - {m} for m, p in modules.items() if m != "rtseg"}
    # a package's __init__ importing its own submodules is not a cycle of behaviour
    for m in graph:
        graph[m] = {d for d in graph[m] if not d.startswith(m + ".")}
    cycles, state, stack = [], {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for dep in sorted(graph.get(m, ())):
            if state.get(dep) == "open":
                cycles.append(" -> ".join(stack[stack.index(dep) :] + [dep]))
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "\n".join(cycles)
