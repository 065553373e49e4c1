"""Tests for jaxgd.experiments: every registered experiment at toy size, their key numbers,
their options (`_options`), and the result folder (`_output`): complete or absent whatever stops
the run, the umask's modes, one writer at a time, a full disk."""

import dataclasses
import errno
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxgd import experiments
from jaxgd.experiments import _common, _options, _output

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


# ------------------------------------------------------------------------------ options


@pytest.mark.parametrize("name", experiments.names())
def test_every_option_is_written_once_with_its_help(name, tmp_path_factory):
    module = experiments.get(name)
    specs = _options.specs(module.Options)
    assert specs and all(s.help and "\n" not in s.help for s in specs), specs
    results = _quick(name, tmp_path_factory)[0]
    quick = {s.name: s.quick for s in specs}
    if name == "schedules":  # it also records the examples it trained on
        quick["n"] = results["options"]["n"]
    assert results["options"] == _common.to_json(quick)  # derived from Options, quick values
    with pytest.raises(TypeError, match="unknown option `nope`; this experiment's options: "):
        module.run(nope=1)


def test_quick_changes_only_the_options_not_given():
    from jaxgd.experiments import quadratic

    given = quadratic.run(quick=True, epochs=5)
    assert given["options"] == {"lr": 0.01, "epochs": 5, "start": 1.1}
    assert len(given["fits"]["zeroed"]["losses"]) == 5
    assert _options.resolve(quadratic.Options, {}, quick=True).epochs == 3
    assert _options.resolve(quadratic.Options, {}, quick=False).epochs == 10


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epochs": "3"}, "`epochs` must be int, got str '3'."),
        ({"epochs": 2.0}, "`epochs` must be int, got float 2.0."),
        ({"epochs": True}, "`epochs` must be int, got bool True."),
        ({"lr": "0.1"}, "`lr` must be float, got str '0.1'."),
        ({"start": None}, "`start` must be float, got NoneType None."),
    ],
)
def test_options_of_the_wrong_type_are_refused_by_name(options, message):
    from jaxgd.experiments import quadratic

    with pytest.raises(TypeError, match=f"^{message.replace('(', '[(]').replace(')', '[)]')}$"):
        quadratic.run(**options)


def test_options_convert_what_they_can():
    from jaxgd.experiments import banknote, relu

    o = _options.resolve(relu.Options, {"ks": [1, np.int64(3)], "lr": 1, "epochs": np.int32(4)})
    assert (o.ks, o.lr, o.epochs) == ((1, 3), 1.0, 4) and type(o.lr) is float
    assert _options.resolve(banknote.Options, {"data": Path("a.csv")}).data == "a.csv"
    with pytest.raises(TypeError, match="`ks` must be a sequence of ints, got str '12'"):
        _options.resolve(relu.Options, {"ks": "12"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.lr = 2.0
    message = f"`seed` must be in int64's range [-2**63, 2**63 - 1], got {2**63}."
    with pytest.raises(ValueError, match=re.escape(message)):
        _options.resolve(relu.Options, {"seed": 2**63})
    assert _options.resolve(relu.Options, {"seed": 2**63 - 1}).seed == 2**63 - 1


def test_an_option_of_an_unsupported_type_is_refused_when_declared():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Options:
        z: complex = _options.option(1j, "no command line writes it")

    with pytest.raises(TypeError, match="option `z` has type <class 'complex'>; use int, float"):
        _options.specs(Options)


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
    one_row = tmp_path / "one.csv"
    one_row.write_text("3.6216,8.6661,-2.8073,-0.44699,0\n")
    with pytest.raises(ValueError, match=r"has 1 example; the split needs at least 2, one to "
                       "train and one to validate"):  # fmt: skip
        banknote.run(data=str(one_row), out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ the result folder


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
    monkeypatch.setattr(_common, "close_figure", lambda fig: None)


def _listing(folder: Path) -> dict:
    """Every entry of `folder` and its parent: what a run leaves behind."""
    return {p.name: sorted(os.listdir(p)) if p.is_dir() else p.read_bytes()
            for p in sorted(folder.parent.iterdir())}  # fmt: skip


def _earlier_set(out: Path) -> dict:
    _output.save(out, {"run": "earlier"}, {"a": _FakeFigure(), "old": _FakeFigure()})
    return _listing(out)


def test_save_writes_json_and_pngs_with_the_umask_modes(tmp_path, no_close):
    previous = os.umask(0o027)
    try:
        out = _output.save(tmp_path / "new" / "out", {"x": np.float32(1.5), "v": np.arange(3)},
                           {"a": _FakeFigure(), "b": _FakeFigure()})  # fmt: skip
    finally:
        os.umask(previous)
    folder = tmp_path / "new" / "out"
    assert out["files"] == ["a.png", "b.png", "results.json"]
    assert sorted(os.listdir(folder)) == ["a.png", "b.png", "results.json"]
    assert os.listdir(tmp_path / "new") == ["out"]  # no lock, no temporary folder left
    assert json.loads((folder / "results.json").read_text())["v"] == [0, 1, 2]
    assert {(folder / f).stat().st_mode & 0o777 for f in os.listdir(folder)} == {0o640}
    assert folder.stat().st_mode & 0o777 == 0o750  # not mkstemp's 0o600, not mkdtemp's 0o700


def test_save_replaces_the_earlier_result_set_whole(tmp_path, no_close):
    out = tmp_path / "out"
    _earlier_set(out)
    _output.save(out, {"run": "new"}, {"a": _FakeFigure()})
    assert sorted(os.listdir(out)) == ["a.png", "results.json"]  # old.png went with its set
    assert json.loads((out / "results.json").read_text())["run"] == "new"
    assert os.listdir(tmp_path) == ["out"]


def test_save_interrupted_while_rendering_keeps_the_earlier_set(tmp_path, no_close):
    out = tmp_path / "out"
    before = _earlier_set(out)
    figures = {"a": _FakeFigure(), "b": _FakeFigure(KeyboardInterrupt())}
    with pytest.raises(KeyboardInterrupt):
        _output.save(out, {"x": 1}, figures)
    assert _listing(out) == before
    with pytest.raises(KeyboardInterrupt):
        _output.save(tmp_path / "first", {"x": 1}, figures)
    assert not (tmp_path / "first").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_swap_is_delivered_after_it(tmp_path, no_close, monkeypatch, signum):
    out = tmp_path / "out"
    _earlier_set(out)
    rename, sent = os.rename, []

    def rename_then_signal(src, dst):
        rename(src, dst)
        if not sent:  # between the two renames: the folder is briefly absent
            sent.append(True)
            os.kill(os.getpid(), signum)

    class Stopped(Exception):
        pass

    def stop(s, frame):
        raise Stopped

    monkeypatch.setattr(_output.os, "rename", rename_then_signal)
    previous = signal.signal(signum, stop)
    try:
        with pytest.raises(Stopped):
            _output.save(out, {"run": "new"}, {"a": _FakeFigure()})
        assert signal.getsignal(signum) is stop
    finally:
        signal.signal(signum, previous)
    assert sorted(os.listdir(out)) == ["a.png", "results.json"]
    assert json.loads((out / "results.json").read_text())["run"] == "new"
    assert os.listdir(tmp_path) == ["out"]


def test_a_full_disk_gives_one_line_and_keeps_the_earlier_set(tmp_path, no_close, monkeypatch):
    out = tmp_path / "out"
    before = _earlier_set(out)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_output.os, "fsync", full)
    with pytest.raises(_output.ResultsError) as err:
        _output.save(out, {"run": "new"}, {"a": _FakeFigure()})
    assert str(err.value).count("\n") == 0 and err.value.errno == errno.ENOSPC
    assert f"cannot write results to {str(out)!r} (No space left on device); the earlier " \
           "results there are kept" in str(err.value)  # fmt: skip
    assert _listing(out) == before


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(tmp_path):
    out = tmp_path / "out"
    with _output.results_folder(out):
        assert (tmp_path / ".out.lock").read_text() == f"{os.getpid()}\n"
        with pytest.raises(_output.ResultsError, match=f"another run is writing to "
                           f"{str(out)!r} \\(process {os.getpid()}\\); wait for it"):  # fmt: skip
            with _output.results_folder(out):
                pass
        with _output.results_folder(tmp_path / "other"):  # another folder is free
            pass
    with _output.results_folder(out) as folder:  # released
        folder.save({"x": 1})
    assert os.listdir(tmp_path) == ["out"]


_KILLED_MID_SWAP = """
import os, signal, sys
from jaxgd.experiments import _output
rename = os.rename
def rename_then_die(src, dst):
    rename(src, dst)
    os.kill(os.getpid(), signal.SIGKILL)  # no handler, no cleanup: as a power cut
_output.os.rename = rename_then_die
_output.save(sys.argv[1], {"run": "killed"})
"""


def test_a_run_killed_mid_swap_leaves_no_mixed_set_and_the_next_run_restores_it(tmp_path,
                                                                              no_close):  # fmt: skip
    out = tmp_path / "out"
    before = _earlier_set(out)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", _KILLED_MID_SWAP, str(out)], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert not out.exists()  # absent: the earlier set is aside, the new one beside it
    left = sorted(p.split("-")[0] for p in os.listdir(tmp_path))
    assert left == [".out.lock", ".out.new", ".out.old"]  # the lock file: no lock, no holder
    with _output.results_folder(out):  # the next run puts the earlier set back
        assert _listing(out) == {**before, ".out.lock": f"{os.getpid()}\n".encode()}
    assert _listing(out) == before


def test_folders_that_cannot_take_a_result_set_are_refused(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="`out_dir` is empty \\(an unset shell variable\\?\\)"):
        _output.check_out_dir("")
    monkeypatch.chdir(tmp_path)
    for here in (".", str(tmp_path), str(tmp_path.parent)):
        with pytest.raises(ValueError, match="is the working folder or above it"):
            _output.check_out_dir(here)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match=r"holds files that are not an earlier result set "
                       r"\(notes.txt\); new results replace the whole folder"):  # fmt: skip
        _output.save(mine, {"x": 1})
    assert os.listdir(mine) == ["notes.txt"]
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot write results to .*a-file/sub"):
        _output.check_out_dir(blocker / "sub")
    with pytest.raises(ValueError, match="is a file or a link, not a folder"):
        _output.check_out_dir(blocker)
    assert _output.check_out_dir(tmp_path / "x" / "y").parent.is_dir()


def test_an_experiment_refuses_a_busy_folder_before_training(tmp_path, monkeypatch):
    from jaxgd.experiments import quadratic

    monkeypatch.setattr(quadratic, "_run", lambda o: pytest.fail("trained into a busy folder"))
    with _output.results_folder(tmp_path / "out"):
        with pytest.raises(_output.ResultsError, match="another run is writing"):
            quadratic.run(out_dir=tmp_path / "out")


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
