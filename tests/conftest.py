"""Fixtures shared by the tests; the strict JAX configuration is in the root conftest.py."""

import collections
from pathlib import Path

import jax
import jax.monitoring
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


class Traces:
    """Counts, from jax.monitoring's events, how often each jitted function was traced."""

    def __init__(self):
        self.counts = collections.Counter()

    def __call__(self, name: str) -> int:
        """Traces so far of the jitted function named `name` (e.g. "run_epochs")."""
        return self.counts[name]

    def listen(self, event: str, secs: float, **kwargs):
        if event == "/jax/core/compile/jaxpr_trace_duration":
            self.counts[kwargs.get("fun_name")] += 1


@pytest.fixture
def traces():
    """`traces("run_epochs")`: how many times that function traced during this test so far."""
    counter = Traces()
    jax.monitoring.register_event_duration_secs_listener(counter.listen)
    try:
        yield counter
    finally:
        jax.monitoring.unregister_event_duration_listener(counter.listen)
