"""SSSNet (Varanka et al. 2020, "Micro-expression recognition with noisy labels"): a single-stream
shallow CNN on 64x64 optical flow.

A 5x5 conv (32 channels), ReLU, 3x3 max-pooling, batch norm and 2D dropout; a 3x3 conv (64 channels),
ReLU, 2x2 max-pooling, batch norm and 2D dropout; a 256-unit layer and the classifier (dropout 0.5).
Written from the paper and the MEB toolbox's MEGC notebook (tvaranka/meb, "RCN-A and SSSNet for
megc.ipynb"): SGD 0.01 with momentum 0.9, weight decay 1e-3, batch 128, shuffled, 200 epochs, flow
resized to 64x64. A benchmark reference, not part of the package.
"""

import torch
import torch.nn.functional as F
from torch import nn

from baseline_training import Recipe

RECIPE = Recipe(optimizer="sgd", learning_rate=0.01, momentum=0.9, weight_decay=1e-3, epochs=200, batch_size=128,
                source="tvaranka/meb RCN-A and SSSNet for megc.ipynb")
INPUT_SIZE = 64


class SSSNet(nn.Module):
    def __init__(self, num_labels: int = 3, dropout: float = 0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 5)
        self.norm1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.norm2 = nn.BatchNorm2d(64)
        self.spatial_dropout = nn.Dropout2d(dropout)
        self.hidden = nn.Linear(9 * 9 * 64, 256)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(256, num_labels)

    def forward(self, flow):
        x = self.spatial_dropout(self.norm1(F.max_pool2d(F.relu(self.conv1(flow)), 3)))
        x = self.spatial_dropout(self.norm2(F.max_pool2d(F.relu(self.conv2(x)), 2))).flatten(1)
        return self.head(self.dropout(F.relu(self.hidden(x))))


def model_inputs(maps: torch.Tensor) -> torch.Tensor:
    """The `(N, 3, 28, 28)` maps in [0, 1], centred (u and v zero at no motion) and resized to 64x64."""
    return F.interpolate(maps * 2 - 1, size=INPUT_SIZE, mode="bilinear", align_corners=False)
