"""The package surface: what `import jaxgd` gives and what it must not pull in."""

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
