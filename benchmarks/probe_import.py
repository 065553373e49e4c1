"""Fresh-process probe: seconds to import the modules named on the command line.

    python -m benchmarks.probe_import jax optax    # prints one JSON number

Run by `benchmarks.probes.import_times`; `benchmarks/__init__.py` imports nothing, so the
modules are imported here for the first time.
"""

import importlib
import json
import sys
import time


def main(names: list) -> None:
    start = time.perf_counter()
    for name in names:
        importlib.import_module(name)
    print(json.dumps(time.perf_counter() - start))


if __name__ == "__main__":
    main(sys.argv[1:])
