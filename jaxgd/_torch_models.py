"""The torch modules of `jaxgd.compare`'s named problems, written as the lectures write them.

Imported only by `compare`, after torch is known to be installed: this module imports torch.
"""

import torch


class LogisticRegression(torch.nn.Module):
    """Lecture 3.6's model: `nn.Linear(num_features, 1)`, then a sigmoid."""

    def __init__(self, num_features: int):
        super().__init__()
        self.linear = torch.nn.Linear(num_features, 1)

    def forward(self, x):
        return torch.sigmoid(self.linear(x))


class Quadratic(torch.nn.Module):
    """course22's `a x^2 + b x + c`, its coefficients one parameter `abc` from 1.1, 1.1, 1.1."""

    def __init__(self):
        super().__init__()
        self.abc = torch.nn.Parameter(torch.tensor([1.1, 1.1, 1.1]))

    def forward(self, x):
        return self.abc[0] * x**2 + self.abc[1] * x + self.abc[2]
