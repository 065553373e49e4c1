"""The benchmark harness (`benchmarks/`, run from the checkout) at toy size: it runs, its
implementations agree, its report is complete.

No timed assertions: the harness is the measurement (issue 5), this only checks that it works.
"""

import json
import shutil

import numpy as np
import pytest
import torch  # noqa: F401  (a test dependency: the PyTorch loop must run, not be skipped)

from benchmarks import cases, growth, harness, probes, report, timing


@pytest.fixture(scope="module")
def smoke():
    return harness.run(smoke=True, growth_sweep=False, fresh_processes=False, say=lambda *a: None)


def test_every_implementation_reaches_the_same_loss(smoke):
    assert set(smoke["agreement"]) == {"sgd", "mb32", "full", "mb1024"}
    for case, a in smoke["agreement"].items():
        assert a["ok"], (case, a["losses"])
        assert set(a["losses"]) == set(cases.IMPLS[case]) - {"jaxgd_eval"}
        assert all(v < a["start"] for v in a["losses"].values())  # They all trained.


def test_every_implementation_is_timed_and_every_goal_has_a_ratio(smoke):
    for case, impls in smoke["times"].items():
        assert set(impls) == set(cases.IMPLS[case])
        for t in impls.values():
            assert 0 < t["min_ms"] <= t["median_ms"] <= t["max_ms"]
            assert t["samples"] == smoke["repeats"]
    assert [g["goal"] for g in smoke["goals"]] == [g[0] for g in cases.GOALS]
    assert all(np.isfinite(g["ratio"]) and g["ratio"] > 0 for g in smoke["goals"])


def test_time_cases_spreads_each_cases_repeats_over_rounds(monkeypatch):
    calls = []  # (case size, implementation, seed) of every timed or warm-up call, in order
    fake = lambda name, runner, cfg, seed: calls.append((cfg["n"], name, seed)) or 1e-3
    monkeypatch.setattr(timing, "epoch_seconds", fake)
    two = {
        "sgd": dict(n=50, batch=1, epochs=1, steps=None, check_epochs=1),
        "mb32": dict(n=60, batch=32, epochs=1, steps=None, check_epochs=1),
    }
    out = timing.time_cases(two, {"sgd": 5, "mb32": 2}, blocks=2, say=lambda *a: None)
    assert {case: {k: t["samples"] for k, t in v.items()} for case, v in out.items()} == {
        "sgd": dict.fromkeys(cases.IMPLS["sgd"], 5),
        "mb32": dict.fromkeys(cases.IMPLS["mb32"], 2),
    }
    sizes = [n for n, _, _ in calls]
    runs = [n for i, n in enumerate(sizes) if i == 0 or n != sizes[i - 1]]
    assert runs == [50, 60, 50, 60]  # Two rounds, each visiting both cases.
    timed = [(n, seed) for n, _, seed in calls if seed > 0]
    assert sorted({seed for n, seed in timed if n == 50}) == [1, 2, 3, 4, 5]
    assert len([1 for n, _, seed in calls if seed == 0]) == 2 * (3 + 3)  # A warm-up per round.


def test_anatomy_of_the_minibatch_1024_epoch_is_measured_and_reported(smoke):
    keys = {"fit_shuffled", "fit_in_order", "gather_shuffled", "gather_in_order", "permutation"}
    assert set(smoke["anatomy"]["times"]) == keys
    assert all(t["median_ms"] > 0 for t in smoke["anatomy"]["times"].values())
    assert "## Where a shuffled mini-batch epoch goes" in report.report(smoke, "x", plot=None)


def test_new_learning_rate_key_or_data_values_do_not_recompile(smoke):
    assert smoke["recompiles"] == {
        s: {"xla_compiles": 0} for s in ("full batch", "SGD", "mini-batch 32")
    }


def test_a_new_shape_is_counted_as_a_compilation():
    # The recompilation count can fail: `fit` on data of a new shape compiles a new program.
    from benchmarks.compiles import _fit, count_compiles
    from benchmarks.task import make_data

    _fit(0.1, 0, make_data(37), 8)
    with count_compiles() as compiled:
        _fit(0.1, 0, make_data(41), 8)
    assert len(compiled) >= 1


def test_report_and_key_ratios(smoke):
    text = report.report(smoke, "python -m benchmarks --smoke", plot=None)
    for heading in ("## Goals", "## Epoch times", "## Agreement", "## Compile"):
        assert heading in text
    assert "Regenerate with:\n\n    python -m benchmarks --smoke\n" in text
    assert "smoke sizes" in text.lower()  # A smoke run says its ratios are not the goals' sizes.
    table = report.key_ratios(smoke)
    assert table.count("\n") == 2 + len(cases.GOALS)
    json.dumps(smoke)  # JSON-ready


def test_streamed_runs_are_measured(smoke):
    s = smoke["streaming"]
    assert s["times"]["same_params"]  # Streamed from a memmap = in memory, bit for bit.
    assert s["times"]["ratio"] > 0 and len(s["times"]["seconds"]["streamed"]) >= 1
    mem = s["memory"]
    assert "error" not in mem, mem
    assert not mem["diverged"] and np.isfinite(mem["train_loss"])
    assert 0 < mem["anon_peak"] <= mem["vmhwm"]
    text = report.report(smoke, "python -m benchmarks --smoke", plot=None)
    assert "## Streaming data from the host" in text
    assert "peak memory of one epoch on a" in text


def test_growth_and_plot(tmp_path):
    sizes = dict(growth_n=(64, 256), growth_d=(2,), growth_d_n=64, growth_repeats=1)
    result = growth.growth(sizes, say=lambda *a: None)
    assert {(r["schedule"], r["n"], r["d"]) for r in result["rows"]} == {
        (s, n, d)
        for s in ("full batch", "SGD", "mini-batch 32")
        for n, d in ((64, 20), (256, 20), (64, 2))
    }
    assert set(result["linear_fit"]) == {"full batch", "SGD", "mini-batch 32"}
    growth.plot_growth(result, tmp_path / "benchmarks" / "growth.png")
    assert (tmp_path / "benchmarks" / "growth.png").read_bytes()[:4] == b"\x89PNG"


def test_fresh_process_measurements():
    memory = probes.peak_memory(1_000)
    assert "error" not in memory, memory
    assert memory["peak_mib"] >= memory["before_fit_mib"] >= memory["data_loaded_mib"]
    assert memory["data_loaded_mib"] >= memory["imported_mib"] > 0
    compile_ = probes.first_fit_compile(100)
    assert "error" not in compile_, compile_
    assert compile_["first_s"] > compile_["second_s"] > 0 and compile_["xla_compiles"] >= 1
    imports = probes.import_times(1)
    assert "error" not in imports, imports
    assert imports["ratio"] > 0


def test_a_failing_probe_reports_its_error():
    out = probes.run_probe("probe_import", "no_such_module_here")
    assert "ModuleNotFoundError" in out["error"] and "no_such_module_here" in out["error"]


def test_main_writes_the_report(tmp_path, capsys):
    argv = [
        "--smoke",
        "--cases",
        "full",
        "--no-growth",
        "--no-subprocesses",
        "--no-streaming",
        "--out",
        str(tmp_path),
        "--json",
        str(tmp_path / "r.json"),
    ]
    assert harness.main(argv) == 0
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "python -m benchmarks --smoke --cases full --no-growth" in text
    assert json.loads((tmp_path / "r.json").read_text())["mode"] == "smoke"
    assert "| case | goal | measured | met |" in capsys.readouterr().out


def test_sweep_case_times_both_sides_and_its_member_agrees_with_fit(smoke):
    sw = smoke["sweep"]
    assert sw["agreement"]["ok"], sw["agreement"]
    assert sw["members"] == cases.SIZES["smoke"]["sweep"]["members"]
    for t in sw["times"].values():
        assert 0 < t["min_ms"] <= t["median_ms"] <= t["max_ms"]
        assert t["samples"] == cases.SIZES["smoke"]["sweep"]["repeats"]
    assert sw["spread"][0] <= sw["ratio"] <= sw["spread"][1]
    row = next(g for g in smoke["goals"] if g["goal"].startswith("64 learning rates by sweep"))
    assert row["bound"] == "≤ 8×" and row["ratio"] == sw["ratio"]
    assert "## Many learning rates at once" in report.report(smoke, "python -m benchmarks")


def test_defaults_section_has_every_goal_row_and_sklearn_agrees_with_fit(smoke):
    de = smoke["defaults"]
    labels = [g["goal"] for g in de["goals"]]
    assert labels[: len(cases.DEFAULT_GOALS)] == [g[0] for g in cases.DEFAULT_GOALS]
    assert labels[len(cases.DEFAULT_GOALS)].startswith("fixed cost of one `fit` call")
    has_cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    assert any("plain C loop" in g for g in labels) == bool(has_cc)
    for case, names in cases.DEFAULT_IMPLS.items():
        assert set(de["times"][case]) == set(names)
    a = de["sklearn_agreement"]
    assert a["ok"] and a["losses"]["sklearn"] < a["start"], a
    text = report.report(smoke, "python -m benchmarks --smoke")
    assert "## Defaults: `fit` as a user calls it" in text
    assert "SGDClassifier" in text


def test_c_floor_trains_or_is_skipped_with_a_note(monkeypatch):
    from benchmarks import floor

    if shutil.which("cc") or shutil.which("gcc") or shutil.which("clang"):
        out = floor.c_floor(500, 2, say=lambda *a: None)
        assert 0 < out["min_ns"] <= out["median_ns"] <= out["max_ns"] and len(out["ns"]) == 2
        assert out["loss"] < out["start"]  # It trained.
    monkeypatch.setattr(floor.shutil, "which", lambda name: None)
    notes = []
    assert floor.c_floor(500, 2, say=notes.append) == {
        "skipped": "no working C compiler (`cc`) on this machine"
    }
    assert notes and "skipped" in notes[0]


@pytest.mark.parametrize("batch", [1, 7, None])
def test_bare_xla_bound_trains_as_fit_does_bit_for_bit(batch):
    """The bound the defaults section compares jaxgd with runs the same updates: on the same
    orders it ends at fit's very params (ragged last batch included: 50 = 7 * 7 + 1)."""
    from benchmarks.peers import xla_floor_runner
    from benchmarks.task import jaxgd_runner, make_data

    X, y = make_data(50)
    orders = np.stack([np.random.default_rng(e).permutation(50) for e in range(3)])
    given = None if batch is None else orders
    bare = xla_floor_runner(X, y, batch)(3, orders=given)
    ours = jaxgd_runner(X, y, batch)(3, orders=given)
    np.testing.assert_array_equal(bare[0], ours[0])
    assert bare[1] == ours[1]


def test_defaults_goals_carry_the_bare_xla_bound(smoke):
    rows = smoke["defaults"]["goals"]
    assert all(r["xla"] > 0 for r in rows[: len(cases.DEFAULT_GOALS)])
    assert smoke["defaults"]["fixed"]["floor"]["median_ms"] > 0
    text = report.report(smoke, "python -m benchmarks --smoke")
    assert "| met | bare XLA bound |" in text
