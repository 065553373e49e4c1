"""Tests for the `jaxgd` command (jaxgd.cli): in-process `main([...])` calls where possible,
subprocesses for `jaxgd demo` end to end and for Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
import types

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
    if argv[1:] == ["relu", "--help"]:  # the experiment's options, with the comments in run()
        assert "--ks" in out and "numbers of rectified linear terms" in out
        assert "(default: 1,2,4,8,16,32)" in out
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


def test_options_are_converted_from_the_signature(capsys):
    from jaxgd.experiments import learning_rate, relu

    parse = lambda run, tokens: cli._parse_options(run, tokens, prog="p")
    assert parse(relu.run, ["--ks", "1,3", "--lr=0.5", "--epochs", "7"]) == {
        "ks": (1, 3), "lr": 0.5, "epochs": 7,
    }  # fmt: skip
    assert parse(learning_rate.run, ["--lrs", "0.1"]) == {"lrs": (0.1,)}
    from jaxgd.experiments import banknote

    assert parse(banknote.run, ["--data", "x.csv", "--train-size", "10"]) == {
        "data": "x.csv", "train_size": 10,
    }  # fmt: skip


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


def _jaxgd(*args):
    return [sys.executable, "-m", "jaxgd.cli", *args]


def test_demo_end_to_end(tmp_path):
    start = time.perf_counter()
    done = subprocess.run(_jaxgd("demo", "--out", str(tmp_path)), capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    for schedule in ("full batch", "SGD", "mini-batch 32"):
        assert schedule in done.stdout
    assert "final loss" in done.stdout and "accuracy" in done.stdout and "wall s" in done.stdout
    assert sorted(os.listdir(tmp_path)) == ["loss.png", "results.json"]
    rows = json.loads((tmp_path / "results.json").read_text())["table"]
    assert [r["updates"] for r in rows] == [20, 20 * 1372, 20 * 43]
    assert seconds < 60, f"the demo took {seconds:.1f} s"


def test_ctrl_c_exits_130_and_leaves_no_partial_files(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(_jaxgd("run", "relu", "--out", str(out)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = proc.stderr.readline()  # "jaxgd: running relu ...": JAX is imported, training next
        assert line.startswith("jaxgd: running relu"), line
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert os.listdir(out) == []  # relu trains for 10+ s: interrupted before anything was saved
