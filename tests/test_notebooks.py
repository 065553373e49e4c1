"""Every notebook in notebooks/ runs top to bottom in a fresh kernel and prints the README's numbers."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# Lines each notebook must print: the numbers the README and `jaxgd run ...` give.
EXPECTED = {
    "01_unit3_gradient_descent": [
        "loss 0.5199  dL/dw -0.4987  dL/db -0.4054",  # jaxgd run autograd
        "mini-batch 10  updates   40  loss 0.3334  accuracy 1.00",  # the README's quick start
        "final loss 0.3536, accuracy 0.95",  # jaxgd run logistic
        "train accuracy 0.9927, validation accuracy 0.9891",  # jaxgd run banknote (synthetic)
    ],
    "02_how_a_neural_net_works": [
        "2.4219 1.4767",
        "accumulated 2.42 2.40 2.36 2.30 2.21 2.11 1.98 1.85 1.72 1.58 1.46",  # jaxgd run quadratic
        "zeroed      2.42 2.40 2.38 2.36 2.34 2.32 2.30 2.28 2.26 2.23 2.21",
        "final MAE 1.0419",  # jaxgd run relu, k = 8
        "compilations: 0",  # moving the learning rate and momentum compiles nothing
        "diverged at epoch 16",
    ],
    "03_mnist_3s_and_7s": [
        "pixel-similarity baseline: 0.9200",  # jaxgd run digits
        "torch  init, linear    : held-out accuracy 0.9900",
        "torch  init, simple_net: held-out accuracy 0.9850",
        "normal init, linear    : held-out accuracy 0.9800",  # jaxgd run digits --init normal
        "normal init, simple_net: held-out accuracy 0.9650",
        "key 0, held-out accuracy per epoch: 0.500",
    ],
    "04_lr_finder_sweeps_noise": [
        "suggestion ",
        "m = 800: measured 0.000e+00, formula 0.000e+00",
    ],
}


def test_every_notebook_has_its_expectations():
    assert sorted(p.stem for p in NOTEBOOKS) == sorted(EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                "clear outputs before committing"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    # The kernel is a subprocess: it finds this checkout's jaxgd through PYTHONPATH.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(book, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})  # fmt: skip
    client.execute()  # raises CellExecutionError, with the cell and traceback, if a cell fails
    printed, stderr = [], []
    for cell in book.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                (stderr if out.name == "stderr" else printed).append(out.text)
    assert not stderr, f"a cell wrote to stderr (a warning?): {''.join(stderr)[:2000]}"
    text = "".join(printed)
    for line in EXPECTED[path.stem]:
        assert line in text, f"{path.name} did not print {line!r}; it printed:\n{text}"
