"""`WeakIds`: values kept per object, by identity, while the object lives.

NumPy and jax arrays cannot be dictionary keys (they are unhashable), so `weakref`'s own
dictionaries do not take them. Used for the verdicts of `_checks._all_finite` on jax arrays and
for the aligned copies `_host.borrow` keeps.
"""

import weakref

__all__ = ["WeakIds"]


class WeakIds:
    """A dictionary keyed by `(object, tag)` that holds each object weakly: an entry goes when
    its object is garbage collected. Insertion ordered, oldest first.

    Examples:
      >>> import numpy as np
      >>> kept, a = WeakIds(), np.zeros(3)
      >>> kept.put(a, "seen")
      True
      >>> kept.get(a), id(a) in kept
      ('seen', True)
      >>> key = id(a); del a
      >>> key in kept
      False
    """

    def __init__(self):
        self._items = {}  # (id(obj), tag) -> (weakref to obj, value)

    def get(self, obj, tag=0, default=None):
        """The value kept for `obj` and `tag`, or `default`."""
        item = self._items.get((id(obj), tag))
        return item[1] if item is not None and item[0]() is obj else default

    def put(self, obj, value, tag=0) -> bool:
        """Keeps `value` for `obj` and `tag` (newest last) while `obj` lives; False (nothing kept)
        when `obj` cannot be weakly referenced."""
        key = (id(obj), tag)
        try:
            ref = weakref.ref(obj, lambda dead, key=key: self._drop(key, dead))
        except TypeError:
            return False
        self._items.pop(key, None)
        self._items[key] = (ref, value)
        return True

    def _drop(self, key, dead) -> None:
        item = self._items.get(key)
        if item is not None and item[0] is dead:  # Not an entry that replaced it since.
            del self._items[key]

    def pop(self, key) -> None:
        """Forgets the entry of `key`, an `(id(obj), tag)` from `items`."""
        self._items.pop(key, None)

    def items(self) -> list:
        """`[(key, value), ...]`, oldest first, of the objects alive now."""
        return [(k, v) for k, (ref, v) in list(self._items.items()) if ref() is not None]

    def __contains__(self, obj_id: int) -> bool:
        """Whether anything is kept for the object whose `id` is `obj_id`."""
        return any(k[0] == obj_id for k in list(self._items))
