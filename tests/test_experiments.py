"""Tests for jaxgd.experiments: every registered experiment at toy size, their key numbers,
and the atomic, interrupt-safe result files of `_common.save`."""

import json
import os
import signal

import numpy as np
import pytest

from jaxgd import experiments
from jaxgd.experiments import _common

BANKNOTE = "data_banknote_authentication.txt"
TOY = "perceptron_toydata-truncated.txt"

_quick_results = {}  # name -> results of run(quick=True): each experiment compiles once here


def _quick(name, tmp_path_factory):
    if name not in _quick_results:
        out = tmp_path_factory.mktemp(name)
        _quick_results[name] = (experiments.get(name).run(out_dir=out, quick=True), out)
    return _quick_results[name]


# ------------------------------------------------------------------------------ every experiment


@pytest.mark.parametrize("name", experiments.names())
def test_experiment_runs_at_toy_size_and_writes_results_and_a_plot(name, tmp_path_factory):
    module = experiments.get(name)
    assert isinstance(module.DESCRIPTION, str) and module.DESCRIPTION.strip()
    assert "\n" not in module.DESCRIPTION
    results, out = _quick(name, tmp_path_factory)
    files = sorted(os.listdir(out))
    assert "results.json" in files
    assert any(f.endswith(".png") for f in files), files
    assert not [f for f in files if f.startswith(".")], "temporary files left behind"
    on_disk = json.loads((out / "results.json").read_text())
    assert isinstance(results, dict) and on_disk.keys() == results.keys()
    for png in (f for f in files if f.endswith(".png")):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_registry_lists_every_experiment_of_this_issue():
    mine = {"autograd", "quadratic", "relu", "logistic", "schedules", "digits",
            "learning_rate", "banknote"}  # fmt: skip
    assert mine <= set(experiments.names())
    with pytest.raises(ValueError, match="unknown experiment 'nope'; choose one of: autograd"):
        experiments.get("nope")


# ------------------------------------------------------------------------------ key numbers


def test_autograd_numbers(tmp_path_factory):
    s = _quick("autograd", tmp_path_factory)[0]["summary"]
    assert round(s["z"], 4) == 0.3829 and round(s["a"], 4) == 0.5946
    assert round(s["loss"], 4) == 0.5199 and round(s["loss_from_logits"], 4) == 0.5199
    assert round(s["dL/dw"], 4) == -0.4987 and round(s["dL/db"], 4) == -0.4054
    assert s["d(x^2)/dx at 3"] == 6.0
    assert np.allclose(s["grad mean(2x)"], [2 / 3] * 3)
    assert s["sum(x^2) at [3,4,10]"] == 125.0 and s["grad sum(x^2)"] == [6.0, 8.0, 20.0]
    assert s["per-example grads"] == "20 x (2,)"
    assert s["max |mean per-example - batch grad|"] < 1e-6


def test_quadratic_first_loss_and_the_notebooks_accumulated_gradients(tmp_path_factory):
    r = _quick("quadratic", tmp_path_factory)[0]
    assert round(r["first_loss"], 4) == 2.4219
    accumulated = r["fits"]["accumulated"]["losses"]  # the notebook prints 2.42, 2.40, 2.36
    assert [round(v, 2) for v in accumulated] == [2.42, 2.40, 2.36]
    zeroed = r["fits"]["zeroed"]["losses"]  # plain GD: the same first step, then slower
    assert round(zeroed[1], 4) == round(accumulated[1], 4) and zeroed[2] > accumulated[2]


def test_relu_loss_falls_with_k(tmp_path_factory):
    r = _quick("relu", tmp_path_factory)[0]
    assert [row["k"] for row in r["table"]] == [1, 2]
    assert r["falls_with_k"] is True


def test_learning_rate_divergence_is_reported_not_raised(tmp_path_factory):
    rows = {row["run"]: row for row in _quick("learning_rate", tmp_path_factory)[0]["table"]}
    assert not rows["too small"]["diverged"] and not rows["good"]["diverged"]
    assert rows["too large"]["diverged"] and rows["too large"]["at epoch"] == 34
    assert rows["good"]["last finite loss"] < rows["too small"]["last finite loss"]


def test_schedules_counts_updates_per_epoch(tmp_path_factory):
    rows = _quick("schedules", tmp_path_factory)[0]["table"]  # quick: 200 examples, 2 epochs
    assert [r["updates/epoch"] for r in rows] == [1, 200, 7]  # full batch, SGD, ceil(200/32)
    assert [r["updates"] for r in rows] == [2, 400, 14]
    assert all(r["wall s"] > 0 and 0 <= r["accuracy"] <= 1 for r in rows)


def test_digits_baseline_and_models(tmp_path_factory):
    r = _quick("digits", tmp_path_factory)[0]  # real MNIST by default
    assert round(r["baseline_accuracy"], 4) == 0.92  # 184 of the 200 held-out images
    assert r["summary"]["train / test images"] == "800 / 200"
    assert [row["model"] for row in r["table"]] == [
        "pixel-mean baseline", "linear + mnist_loss", "simple_net + mnist_loss",
    ]  # fmt: skip


def test_digits_on_the_8x8_digits_and_bad_names():
    from jaxgd.experiments import digits

    r = digits.run(quick=True, dataset="digits8x8", init="normal")
    assert round(r["baseline_accuracy"], 4) == 0.9863  # 72 of the 73 held-out images
    with pytest.raises(
        ValueError, match=r"`dataset` must be one of \['digits8x8', 'mnist'\]; got 'mnist_full'"
    ):
        digits.run(quick=True, dataset="mnist_full")
    with pytest.raises(ValueError, match="`init` must be one of .*; got 'zeros'"):
        digits.run(quick=True, init="zeros")


def test_logistic_reads_the_lecture_file(shared_data, tmp_path):
    from jaxgd.experiments import logistic

    r = logistic.run(data=str(shared_data / TOY), quick=True)
    assert r["summary"]["examples"] == 20 and r["summary"]["updates"] == 6
    assert np.allclose(r["standardization"]["mean"], [0.7375, 0.3975])
    assert np.allclose(r["standardization"]["std"], [1.06256706, 2.4824139])


def test_banknote_reaches_about_98_percent_on_the_real_file(shared_data):
    from jaxgd.experiments import banknote

    r = banknote.run(data=str(shared_data / BANKNOTE))  # the exercise: 2 epochs, lr 0.5, batch 10
    assert r["summary"]["train / validation"] == "1097 / 275"
    assert r["summary"]["updates"] == 2 * 110
    assert r["train_accuracy"] > 0.96 and r["val_accuracy"] > 0.96


def test_bad_options_raise_clear_errors(tmp_path):
    from jaxgd.experiments import banknote, logistic

    with pytest.raises(FileNotFoundError, match="toy file not found"):
        logistic.run(data=str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="`train_size` must be between 1 and 1371"):
        banknote.run(train_size=1372)


# ------------------------------------------------------------------------------ _common


class _FakeFigure:
    """Stands in for a matplotlib figure: writes some bytes, or raises on `savefig`."""

    def __init__(self, error=None):
        self.error = error

    def savefig(self, buffer, **kwargs):
        if self.error is not None:
            raise self.error
        buffer.write(b"\x89PNG fake")


@pytest.fixture
def no_close(monkeypatch):
    monkeypatch.setattr(_common, "_close", lambda fig: None)


def test_save_writes_json_and_pngs(tmp_path, no_close):
    out = _common.save(tmp_path / "new", {"x": np.float32(1.5), "v": np.arange(3)},
                       {"a": _FakeFigure(), "b": _FakeFigure()})  # fmt: skip
    assert out["files"] == ["a.png", "b.png", "results.json"]
    assert sorted(os.listdir(tmp_path / "new")) == ["a.png", "b.png", "results.json"]
    assert json.loads((tmp_path / "new" / "results.json").read_text())["v"] == [0, 1, 2]


def test_save_interrupted_while_rendering_writes_nothing(tmp_path, no_close):
    figures = {"a": _FakeFigure(), "b": _FakeFigure(KeyboardInterrupt())}
    with pytest.raises(KeyboardInterrupt):
        _common.save(tmp_path, {"x": 1}, figures)
    assert os.listdir(tmp_path) == []


def test_save_holds_sigint_until_every_file_is_written(tmp_path, no_close, monkeypatch):
    write = _common.atomic_write_bytes
    sent = []

    def write_then_interrupt(path, data):
        write(path, data)
        if not sent:  # Ctrl-C after the first file: the others must still be written
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(_common, "atomic_write_bytes", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _common.save(tmp_path, {"x": 1}, {"a": _FakeFigure(), "b": _FakeFigure()})
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png", "results.json"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_prepare_out_dir_refuses_an_unwritable_folder(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot write results to .*a-file/sub"):
        _common.prepare_out_dir(blocker / "sub")
    assert _common.prepare_out_dir(tmp_path / "x" / "y").is_dir()
    assert _common.prepare_out_dir(None) is None


def test_fit_with_a_progress_reporter_gives_the_same_numbers(monkeypatch):
    import jax.numpy as jnp

    import jaxgd

    monkeypatch.setattr(_common, "CHUNKS", 2)  # few chunks: each new chunk count compiles
    sq = lambda w, x, y: (w * x - y) ** 2
    data = (jnp.arange(1.0, 9.0), 2 * jnp.arange(1.0, 9.0))
    kw = dict(epochs=5, optimizer=0.002, batch_size=3)
    calls = []

    def factory(label, total):
        calls.append(("open", label, total))
        return (lambda done: calls.append(done)), (lambda: calls.append("close"))

    with _common.reporting(factory):
        reported = _common.fit(sq, 0.0, data, label="sq", **kw)
    plain = jaxgd.fit(sq, 0.0, data, **kw)
    np.testing.assert_array_equal(reported.losses, plain.losses)
    np.testing.assert_array_equal(reported.params, plain.params)
    assert calls == [("open", "sq", 5), 3, 5, "close"]  # chunks of ceil(5 / 2) epochs
