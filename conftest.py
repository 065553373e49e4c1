"""Strict configuration for every test and doctest (after equinox's tests/conftest.py).

`jax_numpy_rank_promotion="raise"` turns the classic `(n,)` against `(n, 1)` bug into an error;
warnings are errors (pyproject's `filterwarnings`) unless a line there says why not.
"""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
