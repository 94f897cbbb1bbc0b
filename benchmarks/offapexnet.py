"""OFF-ApexNet (Gan et al. 2019): a two-layer CNN on the onset-to-apex horizontal and vertical flow.

The u and v maps (no strain, as in the publication) at 28x28 go through two 3x3 conv layers (6 and 16
channels, each ReLU and 2x2 max-pooling), then a 1024-unit layer and the classifier, with dropout 0.5
before each. Written from the paper and the MEB toolbox's re-implementation (tvaranka/meb,
`meb/models/me_networks.py`), whose optical-flow benchmark trains it with Adam 1e-4, weight decay 1e-3,
batch 32 (MEB's default), shuffled, for 3000 epochs. A benchmark reference, not part of the package.
"""

import torch
import torch.nn.functional as F
from torch import nn

from baseline_training import Recipe

RECIPE = Recipe(optimizer="adam", learning_rate=1e-4, weight_decay=1e-3, epochs=3000, batch_size=32,
                source="tvaranka/meb experiments/benchmarks/Optical flow networks.ipynb")


class OffApexNet(nn.Module):
    def __init__(self, num_labels: int = 3, dropout: float = 0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 16, 3, padding=1)
        self.hidden = nn.Linear(16 * 7 * 7, 1024)
        self.head = nn.Linear(1024, num_labels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, flow):
        x = F.max_pool2d(F.relu(self.conv1(flow)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2).flatten(1)
        x = F.relu(self.hidden(self.dropout(x)))
        return self.head(self.dropout(x))


def model_inputs(maps: torch.Tensor) -> torch.Tensor:
    """u and v of the `(N, 3, 28, 28)` maps in [0, 1], centred so that zero motion is about 0 (MEB feeds
    the raw flow, whose zero is no motion)."""
    return maps[:, :2] * 2 - 1
