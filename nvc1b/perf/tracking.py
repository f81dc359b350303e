"""Live tensor memory of a computation, counted storage by storage as ops create and free them.

Works on any device, the meta device included (where nothing is allocated but every storage knows its size),
so the memory of a training step of a billion-parameter model can be measured on a laptop.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveMemory(TorchDispatchMode):
    """Counts the bytes of storages created by ops run under it, until each is freed.

    Storages that existed before (parameters, inputs) are not counted. ``mark(name)`` records the live count at a
    point of interest; ``peak`` is the highest count since the last ``reset_peak()``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.current = 0
        self.peak = 0
        self.marks: dict[str, int] = {}
        self._live: dict[int, int] = {}

    def _freed(self, key: int, nbytes: int) -> None:
        if self._live.pop(key, None) is not None:
            self.current -= nbytes

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = storage._cdata
        if key in self._live:
            return
        nbytes = storage.nbytes()
        self._live[key] = nbytes
        self.current += nbytes
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._freed, key, nbytes)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self._track(t)
        return out

    def mark(self, name: str) -> int:
        self.marks[name] = self.current
        return self.current

    def reset_peak(self) -> None:
        self.peak = self.current
