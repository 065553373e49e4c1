"""Fresh-process probe: jaxgd's rows of the given cases timed under this process's XLA_FLAGS
(the harness sets `--xla_cpu_small_while_loop_byte_threshold` there, never in its own process).

    python -m benchmarks.probe_small_while CASES_JSON REPEATS    # prints one JSON line
"""

import json
import sys

from benchmarks.timing import time_case


def main(cases: dict, repeats: int) -> None:
    out = {}
    for case, cfg in cases.items():
        out[case] = time_case(case, cfg, repeats, say=lambda *a: None, impls=("jaxgd",))["jaxgd"]
    print(json.dumps(out))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]), int(sys.argv[2]))
