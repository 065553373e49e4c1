"""Fixtures shared by the tests; the strict JAX configuration is in the root conftest.py."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data():
    """Path to ../shared/data (the lectures' public data sets), beside the checkout."""
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"reference data not found at {SHARED_DATA}; CI has ../shared/data beside the repo"
        )
    return SHARED_DATA
