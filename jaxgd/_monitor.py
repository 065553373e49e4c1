"""Counting XLA compilations with `jax.monitoring`: one place for the library, its notebooks'
sliders and the benchmark harness."""

import contextlib

import jax.monitoring

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def _listen(seconds: list, event: str, secs: float, **kwargs) -> None:
    if event == COMPILE_EVENT:
        seconds.append(secs)


@contextlib.contextmanager
def count_compiles():
    """Yields a list that receives the seconds of every XLA compilation inside the block.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> with count_compiles() as compiled:
      ...     _ = jax.jit(lambda x: x * 3 + 1)(jnp.ones(5))
      >>> len(compiled) >= 1
      True
    """
    seconds: list = []
    listen = lambda event, secs, **kwargs: _listen(seconds, event, secs, **kwargs)
    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield seconds
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
