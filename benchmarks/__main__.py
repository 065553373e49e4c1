"""`python -m benchmarks`: the whole harness; see `benchmarks.harness.main`."""

import sys

from benchmarks.harness import main

sys.exit(main())
