"""Tests for the `jaxgd` command (jaxgd.cli): in-process `main([...])` calls where possible,
subprocesses for `jaxgd demo` end to end and for Ctrl-C."""

import gc
import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from jaxgd import cli, experiments


def _errors(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()


# ------------------------------------------------------------------------------ list and help


def test_list_prints_every_experiment_with_its_description(capsys):
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == experiments.names()
    autograd = next(line for line in lines if line.startswith("autograd "))
    assert "0.5199" in autograd


@pytest.mark.parametrize("argv", [["--help"], ["list", "--help"], ["compare", "--help"]])
def test_argparse_help_has_examples(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 0
    assert "examples:" in capsys.readouterr().out or argv == ["list", "--help"]


@pytest.mark.parametrize("argv", [["run", "--help"], ["demo", "--help"], ["run", "relu", "--help"]])
def test_run_and_demo_help(argv, capsys):
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    if argv[1:] == ["relu", "--help"]:  # built from relu.Options: name, type, help, defaults
        lines = out.splitlines()
        at = next(i for i, line in enumerate(lines) if line.strip().startswith("--ks"))
        assert " ".join(" ".join(lines[at : at + 2]).split()) == (
            "--ks INT,... numbers of rectified linear terms to compare (default: 1,2,4,8,16,32; "
            "--quick: 1,2)"
        )
        assert "--lr FLOAT" in out and "(default: 0.01)" in out
    else:
        assert "examples:" in out


# ------------------------------------------------------------------------------ run


def test_run_prints_a_table_and_writes_results(tmp_path, capsys):
    assert cli.main(["run", "autograd", "--out", str(tmp_path), "--quick"]) == 0
    captured = capsys.readouterr()
    assert "loss" in captured.out and "0.5199" in captured.out and "-0.4987" in captured.out
    assert f"jaxgd: running autograd (results to {tmp_path}/)" in captured.err
    assert sorted(os.listdir(tmp_path)) == ["autograd.png", "results.json"]


def test_run_json_prints_the_results_as_json(tmp_path, capsys):
    argv = ["run", "quadratic", "--out", str(tmp_path), "--json", "--quiet", "--epochs", "2"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert round(results["first_loss"], 4) == 2.4219
    assert results["options"]["epochs"] == 2
    assert results == json.loads((tmp_path / "results.json").read_text())
    assert captured.err == ""  # --quiet: nothing on stderr


def test_options_are_converted_from_the_experiments_options(capsys):
    from jaxgd.experiments import banknote, learning_rate, relu

    parse = lambda module, tokens: cli._parse_options(cli._specs(module), tokens, prog="p")
    assert parse(relu, ["--ks", "1,3", "--lr=0.5", "--epochs", "7"]) == {
        "ks": (1, 3), "lr": 0.5, "epochs": 7,
    }  # fmt: skip
    assert parse(learning_rate, ["--lrs", "0.1"]) == {"lrs": (0.1,)}
    assert parse(banknote, ["--data", "x.csv", "--train-size", "10"]) == {
        "data": "x.csv", "train_size": 10,
    }  # fmt: skip
    assert parse(banknote, ["--data", "none"]) == {"data": None}


def test_quick_keeps_the_options_given(tmp_path, capsys):
    argv = ["run", "quadratic", "--quick", "--epochs", "5", "--json", "--quiet",
            "--out", str(tmp_path / "q")]  # fmt: skip
    assert cli.main(argv) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["options"]["epochs"] == 5 and len(results["fits"]["zeroed"]["losses"]) == 5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "nope"], "jaxgd run: error: unknown experiment 'nope'; choose one of: autograd"),
        (
            ["run", "quadratic", "--bogus", "1"],
            "unknown option --bogus; this experiment's options: --lr, --epochs, --start",
        ),  # fmt: skip
        (["run", "quadratic", "--epochs", "ten"], "--epochs expects an integer, got 'ten'"),
        (["run", "quadratic", "--epochs"], "option --epochs needs a value"),
        (["run", "quadratic", "stray"], "unexpected argument 'stray'"),
        (["run", "relu", "--ks", "1,x"], "--ks expects an integer, got 'x'"),
        (["run"], "which experiment?"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["compare", "--batch-size", "x"], "expected a positive integer or 'full'"),
        (["compare", "--lr", "nan"], "argument --lr: expected a finite number, got 'nan'"),
        (["compare", "--tolerance", "inf"], "argument --tolerance: expected a finite number"),
        (["compare", "--lr", "-1"], "jaxgd: error: `lr` must be a finite number >= 0, got -1.0."),
        (["compare", "--momentum", "-0.5"], "`momentum` must be a finite number >= 0, got -0.5"),
        (["compare", "--seed", "-1"], "jaxgd: error: `seed` must be an integer >= 0, got -1."),
        (
            ["compare", "--seed", str(2**64)],
            f"`seed` must be at most 2**64 - 1 (torch.manual_seed's range), got {2**64}.",
        ),
        (
            ["run", "quadratic", "--out", ""],
            "--out is empty (an unset shell variable?); give a "
            "folder, e.g. --out jaxgd-results/quadratic",
        ),  # fmt: skip
        (["demo", "--out", ""], "jaxgd demo: error: --out is empty"),
        (
            ["run", "logistic", "--seed", str(2**64)],
            f"jaxgd run logistic: error: `seed` must be in int64's range [-2**63, 2**63 - 1], got "
            f"{2**64}.",
        ),
        (["run", "quadratic", "--out", "."], "is the working folder or above it"),
    ],
)
def test_bad_command_lines_give_one_line_and_exit_2(argv, message, capsys):
    assert cli.main(argv) == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and message in errors[0], errors


def test_values_the_library_rejects_give_one_line_and_exit_2(tmp_path, capsys):
    argv = ["run", "quadratic", "--epochs", "-1", "--out", str(tmp_path), "--quiet"]
    assert cli.main(argv) == 2
    assert _errors(capsys) == ["jaxgd: error: `epochs` must be an integer >= 0, got -1."]
    argv = ["run", "logistic", "--data", str(tmp_path / "no.txt"), "--out", str(tmp_path),
            "--quiet"]  # fmt: skip
    assert cli.main(argv) == 2
    (line,) = _errors(capsys)
    assert line.startswith("jaxgd: error: toy file not found:")


def test_unwritable_out_fails_before_any_training(tmp_path, capsys, monkeypatch):
    from jaxgd.experiments import autograd

    def run(*, out_dir=None, quick=False):
        raise AssertionError("the experiment must not start")

    monkeypatch.setattr(autograd, "run", run)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert cli.main(["run", "autograd", "--out", str(blocker / "out")]) == 2
    (line,) = _errors(capsys)
    assert "cannot write results to" in line and "a-file/out" in line


def test_progress_bar_only_on_a_terminal(monkeypatch):
    assert cli._progress_factory(False)("x", 10)[0](5) is None  # silent: no tqdm at all
    calls = []
    fake_tqdm = types.ModuleType("tqdm")

    class Bar:
        def __init__(self, total, desc, **kwargs):
            self.n, self.total = 0, total
            calls.append(("bar", desc, total, kwargs["unit"]))

        def update(self, k):
            self.n += k
            calls.append(self.n)

        def close(self):
            calls.append("close")

    fake_tqdm.tqdm = Bar
    monkeypatch.setitem(sys.modules, "tqdm", fake_tqdm)
    update, close = cli._progress_factory(True)("relu: k=1", 100)
    update(10), update(100), close()
    assert calls == [("bar", "relu: k=1", 100, "epoch"), 10, 100, "close"]


def test_a_signal_whose_raise_python_swallowed_stops_the_run_at_the_next_chunk(monkeypatch):
    """A raise inside a garbage-collector callback (JAX has one) is swallowed by Python: the
    signal must still stop the run, at the next chunk boundary, and its swallowed raise is not
    printed (other unraisable errors still are)."""
    swallowed, sent = [], []
    monkeypatch.setattr(sys, "unraisablehook", swallowed.append)

    def callback(phase, info):
        if phase == "start" and not sent:
            sent.append(signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)

    with cli._signals_as_interrupts():
        gc.callbacks.append(callback)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(callback)
        assert sent and swallowed == []  # swallowed quietly: raised again below
        other = types.SimpleNamespace(exc_value=RuntimeError("another unraisable error"))
        sys.unraisablehook(other)
        assert swallowed == [other]
        update, close = cli._progress_factory(False)("relu: k=1", 10)
        with pytest.raises(cli._Terminated):
            update(5)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


# ------------------------------------------------------------------------------ compare, bench


def test_compare_prints_the_report_and_exits_0_when_within_tolerance(capsys):
    argv = ["compare", "--problem", "quadratic", "--batch-size", "full", "--epochs", "3"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("jaxgd vs PyTorch: quadratic, sgd (lr=0.01), full batch, 3 epochs")
    assert "PASS" in out


def test_compare_exits_1_when_a_difference_exceeds_the_tolerance(monkeypatch, capsys):
    import jaxgd.compare

    seen = {}

    def compare(**options):
        seen.update(options)
        return types.SimpleNamespace(ok=False)

    monkeypatch.setattr(jaxgd.compare, "compare", compare)
    monkeypatch.setattr(jaxgd.compare, "format_report", lambda report: "FAIL")
    argv = ["compare", "--problem", "mlp", "--optimizer", "adam", "--lr", "0.01",
            "--batch-size", "full", "--no-shuffle", "--tolerance", "1e-9"]  # fmt: skip
    assert cli.main(argv) == 1
    assert capsys.readouterr().out.strip() == "FAIL"
    assert seen == {"problem": "mlp", "optimizer": "adam", "lr": 0.01, "batch_size": None,
                    "shuffle": False, "tolerance": 1e-9}  # fmt: skip


def test_compare_bad_problem_exits_2(capsys):
    assert cli.main(["compare", "--problem", "nope"]) == 2
    (line,) = _errors(capsys)
    assert line.startswith("jaxgd: error: `problem` must be one of")


def test_bench_says_where_the_harness_is_and_exits_2(capsys):
    assert cli.main(["bench", "--quick"]) == 2
    assert _errors(capsys) == [
        "jaxgd: the benchmarks are `python -m benchmarks`, run from a checkout of the repository"
    ]


# ------------------------------------------------------------------------------ subprocesses


ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # the subprocesses run this checkout's jaxgd


def _jaxgd(*args):
    return [sys.executable, "-m", "jaxgd.cli", *args]


def _start(*args, **kwargs):
    """`jaxgd ARGS` in the background, once it says it is running (JAX imported, training next)."""
    proc = subprocess.Popen(_jaxgd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV, **kwargs)  # fmt: skip
    line = proc.stderr.readline()
    assert line.startswith("jaxgd: running"), line
    return proc


def _wait_for(path: Path, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _earlier_results(out: Path) -> dict:
    """A complete earlier result set in `out` (quadratic, 2 steps): {file: bytes}."""
    assert cli.main(["run", "quadratic", "--epochs", "2", "--quiet", "--out", str(out)]) == 0
    return {name: (out / name).read_bytes() for name in sorted(os.listdir(out))}


def test_demo_end_to_end(tmp_path):
    done = subprocess.run(_jaxgd("demo", "--out", str(tmp_path)), capture_output=True,
                          text=True, timeout=300, env=ENV)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for schedule in ("full batch", "SGD", "mini-batch 32"):
        assert schedule in done.stdout
    assert "final loss" in done.stdout and "accuracy" in done.stdout and "wall s" in done.stdout
    assert sorted(os.listdir(tmp_path)) == ["loss.png", "results.json"]
    rows = json.loads((tmp_path / "results.json").read_text())["table"]
    assert [r["updates"] for r in rows] == [20, 20 * 1372, 20 * 43]


@pytest.mark.parametrize(
    ("signum", "status", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["ctrl-c", "sigterm"],
)
def test_a_signal_stops_the_run_and_leaves_the_earlier_results(tmp_path, signum, status, word):
    out = tmp_path / "out"
    before = _earlier_results(out)
    proc = _start("run", "relu", "--out", str(out))  # relu trains for 10+ s
    try:
        _wait_for(tmp_path / ".out.lock")  # the folder is reserved: training has started
        time.sleep(0.5)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr and f"jaxgd: {word}; no partial result files" in stderr
    assert {name: (out / name).read_bytes() for name in sorted(os.listdir(out))} == before
    assert os.listdir(tmp_path) == ["out"]  # no temporary folder, the lock file removed


def test_a_signal_before_any_results_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    proc = _start("run", "relu", "--out", str(out))
    try:
        _wait_for(tmp_path / ".out.lock")
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr
    assert os.listdir(tmp_path) == []  # absent: the folder is made only with complete results


def test_a_second_run_into_the_same_out_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    proc = _start("run", "relu", "--out", str(out))
    try:
        _wait_for(tmp_path / ".out.lock")
        assert cli.main(["run", "quadratic", "--quiet", "--out", str(out)]) == 1
        (line,) = _errors(capsys)
        assert line == (f"jaxgd: error: another run is writing to {str(out)!r} (process "
                        f"{proc.pid}); wait for it, or choose another folder")  # fmt: skip
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    assert not out.exists()


# Runs argv[2:] with writes past argv[1] bytes failing with EFBIG, as on a full disk.
_FILE_SIZE_LIMIT = """
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing the process
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]),) * 2)
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


def test_a_full_disk_gives_one_line_and_keeps_the_earlier_results(tmp_path):
    out = tmp_path / "out"
    before = _earlier_results(out)
    limited = [sys.executable, "-c", _FILE_SIZE_LIMIT, "4000"]  # the plot is larger
    done = subprocess.run(limited + _jaxgd("run", "quadratic", "--quiet", "--out", str(out))[1:],
                          env=ENV, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"jaxgd: error: cannot write results to {str(out)!r} (File too large); the earlier "
        "results there are kept"
    ]
    assert {name: (out / name).read_bytes() for name in sorted(os.listdir(out))} == before
    assert os.listdir(tmp_path) == ["out"]
