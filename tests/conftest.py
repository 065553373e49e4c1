"""Strict test configuration (after equinox's tests/conftest.py).

`jax_numpy_rank_promotion="raise"` turns the classic `(n,)` against `(n, 1)` bug into an error.
Warnings are errors (pyproject's `filterwarnings`) unless a line there says why not.
"""

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

SHARED_DATA = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data():
    """Path to ../shared/data (the lectures' public data sets), beside the checkout."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"reference data not found at {SHARED_DATA}; CI has ../shared/data beside the repo")
    return SHARED_DATA
