"""Data parallelism with JAX's own runtime: `fit(..., mesh=mesh)` spreads each batch over devices.

With a `jax.sharding.Mesh` that has a `"data"` axis of D devices, every update's batch is split
by rows over that axis, the parameters and optimizer state are replicated on every device, and
XLA turns the mean over the batch into per-device partial sums and one all-reduce:

    grad (1/|B|) sum_{i in B} loss(w, x_i, y_i) = (1/|B|) sum_{d < D} sum_{i in B_d} grad loss(w, x_i, y_i)

so the result is the single-device run's up to float rounding. A batch whose rows do not divide
over D is padded with copies of its first rows, masked out of the mean (as the ragged last batch
of an epoch is), so any `batch_size` works. The training data are replicated on every device
(each gathers its own rows of a batch); the per-epoch evaluation runs on every device alike.

Meshes made by `jax.make_mesh` (Explicit axes by default) and by `jax.sharding.Mesh(devices,
("data",))` (Auto axes) both work: an Explicit axis is resharded with `jax.sharding.reshard`, an
Auto one constrained with `jax.lax.with_sharding_constraint`. Other axes of the mesh are left
alone (the batch is replicated over them). Across processes (`jax.distributed.initialize`) the
mesh spans every process's devices, and each process passes the same data and arguments.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

__all__ = ["check_mesh", "data_size", "replicate", "shard_batch"]

AXIS = "data"  # The mesh axis that batches are split over.


def check_mesh(mesh) -> Mesh | None:
    """`mesh` if it is None or a `jax.sharding.Mesh` with a "data" axis; raises otherwise.

    Examples:
      >>> import jax
      >>> mesh = jax.make_mesh((1,), ("data",))
      >>> check_mesh(mesh) is mesh, data_size(mesh)
      (True, 1)
    """
    if mesh is None:
        return None
    if not isinstance(mesh, Mesh):
        raise TypeError(
            f"`mesh` must be a jax.sharding.Mesh, got {type(mesh).__name__}; build one with "
            '`jax.make_mesh((jax.device_count(),), ("data",))`.'
        )
    if AXIS not in mesh.axis_names:
        raise ValueError(
            f'`mesh` has axes {mesh.axis_names} but no "data" axis to split the batches over; '
            'name one of them "data", e.g. `jax.make_mesh((jax.device_count(),), ("data",))`.'
        )
    return mesh


def data_size(mesh: Mesh) -> int:
    """D: the number of devices along the mesh's "data" axis."""
    return mesh.shape[AXIS]


def replicate(tree, mesh: Mesh):
    """Every array leaf of `tree` replicated on all devices of `mesh` (None leaves stay None).

    Across processes each process must pass the same values: the array is assembled from each
    process's own copy of its shards (`jax.make_array_from_callback`).
    """
    sharding = NamedSharding(mesh, PartitionSpec())

    def put(a):
        if isinstance(a, jax.Array) and a.sharding == sharding:
            return a
        if jax.process_count() == 1 or jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            return jax.device_put(a, sharding)
        host = np.asarray(a)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(put, tree)


def shard_batch(batch, mesh: Mesh):
    """`(xb, yb, mask)` padded to a multiple of D rows (masked) and split by rows over "data".

    Inside `jit`. `mask` is None or bool of shape (m,); the padding repeats the batch's first
    rows, so that no made-up input (a zero row in a log, say) enters the gradient.
    """
    xb, yb, mask = batch
    m = jax.tree.leaves(xb)[0].shape[0]
    pad = -m % data_size(mesh)
    if pad:
        rows = jnp.arange(pad) % m
        xb, yb = jax.tree.map(lambda a: jnp.concatenate([a, a[rows]]), (xb, yb))
        mask = jnp.ones(m, bool) if mask is None else mask
        mask = jnp.concatenate([mask, jnp.zeros(pad, bool)])
    parts = (xb, yb, mask)
    sharding = NamedSharding(mesh, PartitionSpec(AXIS))
    if dict(zip(mesh.axis_names, mesh.axis_types, strict=True))[AXIS] == AxisType.Explicit:
        return jax.sharding.reshard(parts, sharding)
    return jax.lax.with_sharding_constraint(parts, sharding)
