"""An exponential moving average of a model's weights, updated after every optimizer step.

The update is the one `torch.optim.swa_utils.AveragedModel` makes with `get_ema_multi_avg_fn(decay)`
(the first update copies the weights, every later one is `average.lerp_(weights, 1 - decay)` over all
tensors at once), and it gives the same numbers. It is written out because `AveragedModel` rebuilds
both models' parameter lists from `named_modules()` on every update: with this package's many small
modules that walk took a tenth of a CPU fold's time (benchmarks/RESULTS.md, "Speed"). Here the lists
are built once.
"""

import copy

import torch
from torch import nn


class WeightEMA:
    """`WeightEMA(model, decay)`; call `update()` after each step; `module` is the averaged copy."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must lie strictly between 0 and 1, got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model)
        self._averaged = [t.detach() for t in (*self.module.parameters(), *self.module.buffers())]
        self._current = [t.detach() for t in (*model.parameters(), *model.buffers())]
        if any(not t.is_floating_point() for t in self._averaged):
            raise TypeError("WeightEMA averages floating-point weights and buffers only")
        self.updates = 0

    @torch.no_grad()
    def update(self):
        if self.updates == 0:
            torch._foreach_copy_(self._averaged, self._current)
        else:
            torch._foreach_lerp_(self._averaged, self._current, 1.0 - self.decay)
        self.updates += 1
