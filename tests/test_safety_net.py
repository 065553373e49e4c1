"""The loop's results, bit for bit as recorded before the loop was rebuilt (`tests/safety_net.py`).

A deliberate change of numbers re-records the affected rows (say which in the commit). On another
CPU or jax version XLA may round differently in the last bits, so there the check is `allclose`.
"""

import numpy as np
import pytest

from tests import safety_net


@pytest.fixture(scope="module")
def recorded():
    with np.load(safety_net.RECORD) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("name", list(safety_net.configurations()))
def test_configuration_matches_its_record(name, recorded):
    same_machine = str(recorded["__machine__"]) == safety_net.machine()
    got = safety_net.flatten(safety_net.configurations()[name]())
    want = {k[len(name) :]: v for k, v in recorded.items() if k.startswith(name + "[")}
    assert sorted(got) == sorted(want)
    for path, value in got.items():
        if same_machine:
            np.testing.assert_array_equal(value, want[path], err_msg=f"{name}{path}")
        else:
            np.testing.assert_allclose(value, want[path], rtol=1e-5, atol=1e-6, err_msg=path)
