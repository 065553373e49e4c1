"""The package surface: what `import jaxgd` gives and what it must not pull in."""

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import jaxgd


def test_import_does_not_pull_in_the_extras():
    code = (
        "import sys, jaxgd, jaxgd.loop, jaxgd.compare, jaxgd.experiments, jaxgd.cli; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'sklearn', 'tqdm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_surface():
    assert jaxgd.__version__.count(".") == 2
    for name in jaxgd.__all__:
        assert hasattr(jaxgd, name), name
    assert (Path(jaxgd.__file__).parent / "py.typed").exists()


def test_no_public_function_shadows_a_module_of_the_same_name():
    """`jaxgd.sweep` is a function: its module must have another name, or the module is lost."""
    for name in jaxgd.__all__:
        if callable(getattr(jaxgd, name)) and not isinstance(getattr(jaxgd, name), type):
            assert importlib.util.find_spec(f"jaxgd.{name}") is None, name


def test_no_import_cycles_between_jaxgd_modules():
    """The modules' imports (at any depth in a file) form no cycle."""
    root = Path(jaxgd.__file__).parent
    files = {}
    for path in root.rglob("*.py"):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        files[module.removesuffix(".__init__")] = path
    graph = {}
    for module, path in files.items():
        graph[module] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jaxgd"):
                # `from P import N` needs the module P.N when there is one, else P itself.
                for alias in node.names:
                    name = f"{node.module}.{alias.name}"
                    graph[module].add(name if name in files else node.module)
            elif isinstance(node, ast.Import):
                graph[module] |= {a.name for a in node.names if a.name.startswith("jaxgd")}
    graph = {m: {d for d in deps if d in files and d != m} for m, deps in graph.items()}
    state = {}

    def visit(m, path):
        state[m] = "open"
        for d in graph[m]:
            assert state.get(d) != "open", f"import cycle: {' -> '.join(path + [m, d])}"
            if d not in state:
                visit(d, path + [m])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [])
