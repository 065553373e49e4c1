"""jaxgd: gradient descent in JAX, the way the lectures teach it.

Full-batch GD, SGD and mini-batch GD as one compiled `lax.scan`, with losses and models
written for one example and batched with `jax.vmap`, checked step for step against PyTorch.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
