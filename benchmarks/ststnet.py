"""STSTNet (Liong et al. 2019, "Shallow Triple Stream Three-dimensional CNN"): the MEGC2019 reference CNN.

Three parallel 3x3 conv branches (3, 5 and 8 channels, padding 2) over the 28x28 u / v / strain map,
each ReLU, batch norm, 3x3 max-pooling (stride 3) and dropout 0.5; the 16 maps are average-pooled to
5x5 and one linear layer classifies. Written from the paper and the authors' public `main.py`
(christy1206/STSTNet): Adam 5e-5, batch 256, 800 epochs, batches in file order (no shuffle), the map
PNGs as read by OpenCV (0-255), and the model of the last epoch scored. A benchmark reference, not part
of the package.
"""

import torch
from torch import nn

from baseline_training import Recipe, fit

RECIPE = Recipe(optimizer="adam", learning_rate=5e-5, epochs=800, batch_size=256, shuffle=False,
                source="christy1206/STSTNet main.py")
# The repository's earlier reference recipe on the normalised maps, kept for the research scripts that
# pair this CNN with the transformer; the leaderboard uses RECIPE.
PARTNER_RECIPE = Recipe(optimizer="adam", learning_rate=1e-3, epochs=200, batch_size=64)


class STSTNet(nn.Module):
    def __init__(self, num_labels: int = 3):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(3, width, 3, padding=2), nn.ReLU(), nn.BatchNorm2d(width),
                          nn.MaxPool2d(3, stride=3, padding=1), nn.Dropout(0.5))
            for width in (3, 5, 8)
        )
        self.pool = nn.AvgPool2d(2)
        self.head = nn.Linear(16 * 5 * 5, num_labels)

    def forward(self, flow):
        features = torch.cat([branch(flow) for branch in self.branches], dim=1)
        return self.head(self.pool(features).flatten(1))


def model_inputs(maps: torch.Tensor) -> torch.Tensor:
    """The published input: the `(N, 3, 28, 28)` maps in [0, 1] as 0-255 pixel values."""
    return maps * 255


def train_ststnet(flow: torch.Tensor, labels: torch.Tensor, train, seed: int):
    """A fold's STSTNet trained on the `train` rows of `flow` with `PARTNER_RECIPE` (the research scripts'
    ensemble partner)."""
    return fit(lambda: STSTNet(int(labels.max()) + 1), flow, labels, train, PARTNER_RECIPE, seed)
