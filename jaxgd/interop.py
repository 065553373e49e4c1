"""PyTorch modules and state_dicts to jaxgd params and back (needs the `torch` extra).

jaxgd's models use torch's weight layout, so the conversion is a copy, not a re-layout:

| torch                                            | jaxgd params                                 |
|--------------------------------------------------|----------------------------------------------|
| `nn.Linear(d, 1)`                                | `{"w": (d,), "b": ()}` for `models.linear`   |
| `nn.Linear(d, k)`, k > 1                         | `{"w": (k, d), "b": (k,)}`                   |
| a module whose only parameters are one Linear's  | as `nn.Linear` (lecture 3.6's logistic model) |
| `nn.Sequential(Linear, ReLU, ..., Linear)`       | `[{"w": (out, in), "b": (out,)}, ...]` for `models.mlp` |

`from_torch` also takes a `state_dict` (keys `weight`/`bias`, `<name>.weight`/`<name>.bias`, or a
Sequential's `0.weight`, `0.bias`, `2.weight`, ...). Use it to start jaxgd from exactly the numbers
`torch.manual_seed(...)` gave a torch model, and `to_torch` to carry trained params back.
torch is imported inside the functions, so `import jaxgd` never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["from_torch", "to_torch"]

Params = dict[str, jax.Array]

_SUPPORTED = (
    "an nn.Linear, an nn.Sequential of nn.Linear layers with nn.ReLU between them, or a module "
    "whose only parameters are those of one nn.Linear"
)


def _linears(module: torch.nn.Module) -> tuple[list[tuple[str, torch.nn.Linear]], bool]:
    """The Linear layers of a supported module, with their state_dict prefixes.

    Returns the `(prefix, layer)` pairs and whether the module is a Sequential (an MLP).
    """
    import torch

    nn = torch.nn
    name = type(module).__name__
    if isinstance(module, nn.Linear):
        return [("", module)], False
    if isinstance(module, nn.Sequential):
        children = list(module.named_children())
        for i, (prefix, child) in enumerate(children):
            wanted = nn.Linear if i % 2 == 0 else nn.ReLU
            if not isinstance(child, wanted):
                raise TypeError(
                    f"`state_dict_or_module` is an nn.Sequential whose layer {prefix} is "
                    f"{type(child).__name__}; expected nn.{wanted.__name__} (jaxgd's `mlp` is "
                    "Linear, ReLU, Linear, ..., Linear). For a Linear followed by a sigmoid, pass "
                    "the Linear itself, e.g. `from_torch(model[0])`."
                )
        if not children or len(children) % 2 == 0:
            raise TypeError(
                f"`state_dict_or_module` is an nn.Sequential of {len(children)} layers; jaxgd's "
                "`mlp` needs Linear, ReLU, ..., Linear (an odd number, ending with a Linear)."
            )
        return [(p, c) for p, c in children if isinstance(c, nn.Linear)], True
    linears = [(p, m) for p, m in module.named_modules() if isinstance(m, nn.Linear)]
    if len(linears) == 1:
        own = {id(p) for p in linears[0][1].parameters()}
        if all(id(p) in own for p in module.parameters()):
            return linears, False
    raise TypeError(
        f"`state_dict_or_module` is a {name}, which jaxgd cannot convert: it converts "
        f"{_SUPPORTED}. Convert other modules by hand from `module.state_dict()`."
    )


def _to_jax(tensor: Any, where: str) -> jax.Array:
    import torch

    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        seen = tensor.dtype if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise TypeError(f"`{where}` must be a floating torch.Tensor; got {seen}.")
    return jnp.asarray(tensor.detach().cpu().numpy())


def _layer(weight: Any, bias: Any, where: str) -> tuple[jax.Array, jax.Array]:
    if bias is None:
        raise ValueError(
            f"`{where}` has no bias; jaxgd's linear layers always have one. Build the torch "
            "layer with `bias=True` (the default)."
        )
    w, b = _to_jax(weight, f"{where}weight"), _to_jax(bias, f"{where}bias")
    if w.ndim != 2 or b.shape != w.shape[:1]:
        raise ValueError(
            f"`{where}weight` and `{where}bias` must have shapes (out, in) and (out,); "
            f"got {w.shape} and {b.shape}."
        )
    return w, b


def _linear_params(w: jax.Array, b: jax.Array) -> Params:
    if w.shape[0] == 1:  # one output: the scalar model of `models.linear`
        return {"w": w[0], "b": b[0]}
    return {"w": w, "b": b}


def _from_state_dict(state_dict: Mapping[str, Any]) -> Params | list[Params]:
    groups: dict[str, dict[str, Any]] = {}
    for key, value in state_dict.items():
        prefix, _, leaf = str(key).rpartition(".")
        if leaf not in ("weight", "bias"):
            raise TypeError(
                f"`state_dict_or_module` has key {key!r}; jaxgd converts the state_dict of "
                f"{_SUPPORTED} (keys ending in 'weight' and 'bias' only)."
            )
        groups.setdefault(prefix, {})[leaf] = value
    if not groups:
        raise TypeError("`state_dict_or_module` is an empty state_dict; nothing to convert.")
    layers = {
        prefix: _layer(group.get("weight"), group.get("bias"), f"{prefix}." if prefix else "")
        for prefix, group in groups.items()
    }
    if all(prefix.isdigit() for prefix in layers):  # an nn.Sequential: 0, 2, 4, ...
        ordered = sorted(layers, key=int)
        return [{"w": layers[p][0], "b": layers[p][1]} for p in ordered]
    if len(layers) == 1:
        return _linear_params(*next(iter(layers.values())))
    raise TypeError(
        f"`state_dict_or_module` holds layers {sorted(layers)}; jaxgd converts the state_dict "
        f"of {_SUPPORTED}."
    )


def from_torch(state_dict_or_module: Any) -> Params | list[Params]:
    """Turn a torch module, or its `state_dict`, into jaxgd params (copies of the numbers).

    Args:
      state_dict_or_module: an `nn.Linear`; an `nn.Sequential(Linear, ReLU, ..., Linear)`; a
        module whose only parameters are one `nn.Linear`'s (its forward is not inspected: the
        same params serve `linear`, `logistic_logit` and `logistic_regression`); or the
        `state_dict()` of any of these.

    Returns:
      For a linear layer with one output, `{"w": (d,), "b": ()}` (`models.linear`); with k > 1
      outputs, `{"w": (k, d), "b": (k,)}`. For a Sequential, a list of
      `{"w": (out, in), "b": (out,)}` in layer order (`models.mlp`, which puts a ReLU between
      layers). Arrays keep the tensors' dtype (float64 needs `jax.enable_x64`).

    Raises:
      TypeError: the module or state_dict is not one of the supported kinds, or a tensor is
        not floating.
      ValueError: a linear layer has no bias, or a weight/bias pair has inconsistent shapes.

    Examples:
      >>> import torch
      >>> params = from_torch(torch.nn.Linear(3, 1))
      >>> params["w"].shape, params["b"].shape
      ((3,), ())
      >>> net = torch.nn.Sequential(torch.nn.Linear(784, 30), torch.nn.ReLU(), torch.nn.Linear(30, 1))
      >>> [layer["w"].shape for layer in from_torch(net.state_dict())]
      [(30, 784), (1, 30)]
    """
    import torch

    if isinstance(state_dict_or_module, torch.nn.Module):
        linears, is_mlp = _linears(state_dict_or_module)
        layers = [_layer(m.weight, m.bias, f"{p}." if p else "") for p, m in linears]
        if is_mlp:
            return [{"w": w, "b": b} for w, b in layers]
        return _linear_params(*layers[0])
    if isinstance(state_dict_or_module, Mapping):
        return _from_state_dict(state_dict_or_module)
    raise TypeError(
        "`state_dict_or_module` must be a torch.nn.Module or its state_dict(); got "
        f"{type(state_dict_or_module).__name__}."
    )


def to_torch(params: Params | Sequence[Params], module: torch.nn.Module) -> torch.nn.Module:
    """Copy jaxgd params into a torch module in place, and return the module.

    The inverse of `from_torch`: `to_torch(from_torch(m), m2)` gives `m2` the numbers of `m`.
    The module keeps its own dtype and device (the values are cast on the copy).

    Args:
      params: `{"w": (d,) or (k, d), "b": () or (k,)}` for an `nn.Linear` (or a module wrapping
        one), or a list of `{"w": (out, in), "b": (out,)}` for an
        `nn.Sequential(Linear, ReLU, ..., Linear)`.
      module: the torch module to load into; its shapes must match the params.

    Returns:
      `module`, now holding `params`.

    Raises:
      TypeError: `module` is not a supported torch module, or `params` is not a dict or list of
        dicts with "w" and "b".
      ValueError: the number of layers or a shape does not match the module (nothing is copied
        then).

    Examples:
      >>> import jax, torch
      >>> from jaxgd.models import linear_init
      >>> params = linear_init(key=jax.random.key(0), in_features=3)
      >>> layer = to_torch(params, torch.nn.Linear(3, 1))
      >>> bool((layer.weight[0].detach().numpy() == params["w"]).all())
      True
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"`module` must be a torch.nn.Module; got {type(module).__name__}.")
    linears, _ = _linears(module)
    layers = [params] if isinstance(params, Mapping) else params
    if not isinstance(layers, Sequence) or not all(isinstance(p, Mapping) for p in layers):
        raise TypeError(
            "`params` must be a dict {'w', 'b'} or a list of such dicts (one per nn.Linear); "
            f"got {type(params).__name__}."
        )
    if len(layers) != len(linears):
        raise ValueError(
            f"`params` has {len(layers)} layer(s) but the module has {len(linears)} nn.Linear "
            "layer(s); build a module with the same sizes."
        )
    copies = []
    for i, (layer, (prefix, lin)) in enumerate(zip(layers, linears, strict=True)):
        where = "params" if isinstance(params, Mapping) else f"params[{i}]"
        if "w" not in layer or "b" not in layer:
            raise TypeError(f"`{where}` must have keys 'w' and 'b'; got {sorted(layer)}.")
        if lin.bias is None:
            raise ValueError(f"module layer {prefix or type(lin).__name__} has no bias to load.")
        for key, target in (("w", lin.weight), ("b", lin.bias)):
            value = np.array(layer[key])
            if value.size == target.numel() and value.ndim < target.ndim and target.shape[0] == 1:
                value = value.reshape(tuple(target.shape))  # (d,) -> (1, d); () -> (1,)
            if value.shape != tuple(target.shape):
                raise ValueError(
                    f"`{where}['{key}']` has shape {np.shape(layer[key])}, but module layer "
                    f"{prefix or type(lin).__name__} expects {tuple(target.shape)}."
                )
            copies.append((target, value))
    with torch.no_grad():
        for target, value in copies:
            target.copy_(torch.from_numpy(value).to(dtype=target.dtype, device=target.device))
    return module
