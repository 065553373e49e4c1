"""The gradient-noise experiment: mini-batch gradients are unbiased, with the predicted variance."""

import json

import numpy as np

from jaxgd.experiments import batch_noise


def test_batch_sizes_are_powers_of_two_then_n():
    assert batch_noise.batch_sizes(10) == [1, 2, 4, 8, 10]
    assert batch_noise.batch_sizes(8) == [1, 2, 4, 8]
    assert batch_noise.batch_sizes(1) == [1]


def test_measure_on_a_tiny_set_agrees_with_exhaustive_enumeration():
    """n = 4 examples: every batch of size 2 drawn by enumerating all 4! orders."""
    from itertools import permutations

    g = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0], [3.0, -1.0]])
    orders = np.array(list(permutations(range(4))))
    out = batch_noise.measure(g, orders, [1, 2, 4])
    for row in out["rows"]:  # Averaging over all orders is the exact expectation.
        np.testing.assert_allclose(row["var_measured"], row["var_theory"], rtol=1e-12, atol=1e-15)
        assert row["mean_error"] < 1e-12
    sigma2 = np.mean(np.sum((g - g.mean(0)) ** 2, axis=1))
    np.testing.assert_allclose(out["rows"][1]["var_theory"], sigma2 / 2 * (4 - 2) / 3)


def test_run_quick_agrees_with_theory_and_writes_files(tmp_path):
    results = batch_noise.run(out_dir=tmp_path, quick=True)
    n = results["summary"]["n"]
    assert results["batch_sizes"] == batch_noise.batch_sizes(n) and n == 1372
    table = results["table"]
    assert len(table) == 2 * len(results["batch_sizes"])
    for row in table:
        if row["m"] < n:
            # Within the Monte Carlo error: 4 standard errors, and 25 % (1000 batches).
            assert abs(row["z"]) < 4, row
            assert abs(row["rel_error"]) < 0.25, row
        else:
            assert row["var_theory"] == 0 and row["var_measured"] < 1e-20
        # Unbiased: the batches' mean is off by about its standard error sqrt(var / S).
        assert row["mean_error"] <= 4 * row["mean_error_expected"] + 1e-12, row
    for name in ("init", "trained"):  # The variance falls with m, below sigma^2 / m.
        var = [r["var_measured"] for r in table if r["params"] == name]
        assert all(a > b for a, b in zip(var, var[1:], strict=False))
    assert results["summary"]["max |z|"] < 4
    assert (tmp_path / "batch_noise.png").stat().st_size > 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["files"] == ["batch_noise.png", "results.json"]
    assert saved["table"] == table


def test_real_banknote_file(shared_data):
    path = shared_data / "data_banknote_authentication.txt"
    results = batch_noise.run(quick=True, path=str(path), samples=400)
    assert results["summary"]["n"] == 1372 and results["summary"]["max |z|"] < 4
