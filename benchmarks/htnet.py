"""HTNet (Wang et al. 2024, "HTNet for micro-expression recognition"): a hierarchical transformer over
four facial regions of the flow map.

Input: four 14x14 crops of the 28x28 u / v / strain map, centred on the left eye, right eye and the two
mouth corners of the apex face, tiled 2x2 into one 28x28 image. Model: 7x7 patches embedded to 256
channels, then three levels of transformer blocks (2, 2 and 8 blocks; 256, 512 and 1024 channels;
3, 6 and 12 heads) with a conv + layer-norm + max-pool aggregation between levels, a layer norm, mean
pooling and the classifier. Recipe: Adam 5e-5, batch 256, 800 epochs, batches in file order, maps as
0-255 pixels, last epoch scored. Written from the paper and the authors' public code
(wangzhifengharrison/HTNet, `Model.py` and `HTNet_for_three_datasets_confusion_matrix.py`).

Landmarks: the original finds them per sample with MTCNN (facenet-pytorch), whose weights this project
cannot download at run time. Its own fallback, the mean face's five landmarks in 28x28 map coordinates
(used there whenever MTCNN finds no face), is used for every sample here: the maps are aligned face
crops, so the regions land on the same parts of each face. Crops are taken at (row = y, column = x), as
the paper describes; the public code indexes them transposed. A benchmark reference, not part of the
package.
"""

import torch
import torch.nn.functional as F
from torch import nn

from baseline_training import Recipe

RECIPE = Recipe(optimizer="adam", learning_rate=5e-5, epochs=800, batch_size=256, shuffle=False,
                source="wangzhifengharrison/HTNet")
# (x, y) of the left eye, right eye, left and right mouth corner on the 28x28 map: the public code's
# fallback landmarks, truncated to integers and clipped to [7, 21] as it does before cropping.
REGION_CENTRES = ((9, 11), (21, 10), (10, 21), (20, 21))
REGION = 14


def model_inputs(maps: torch.Tensor) -> torch.Tensor:
    """The four 14x14 regions of the `(N, 3, 28, 28)` maps in [0, 1], tiled 2x2, as 0-255 pixels."""
    crops = [maps[:, :, y - REGION // 2 : y + REGION // 2, x - REGION // 2 : x + REGION // 2]
             for x, y in REGION_CENTRES]
    return torch.cat([torch.cat(crops[:2], dim=3), torch.cat(crops[2:], dim=3)], dim=2) * 255


class ChannelNorm(nn.Module):
    """Layer norm over the channels of a `(B, C, H, W)` map."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Block(nn.Module):
    """Pre-norm self-attention and a 1x1-conv MLP over the positions of a `(B, C, H, W)` map."""

    def __init__(self, channels: int, heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.heads = heads
        self.inner = channels // heads * heads  # 255 for 256 channels and 3 heads, as in the original
        self.attention_norm = ChannelNorm(channels)
        self.qkv = nn.Conv2d(channels, 3 * self.inner, 1, bias=False)
        self.out = nn.Conv2d(self.inner, channels, 1)
        self.mlp_norm = ChannelNorm(channels)
        self.mlp = nn.Sequential(nn.Conv2d(channels, channels * mlp_ratio, 1), nn.GELU(),
                                 nn.Conv2d(channels * mlp_ratio, channels, 1))

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.attention_norm(x)).reshape(b, 3, self.heads, -1, h * w).unbind(1)
        attended = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        x = x + self.out(attended.transpose(-1, -2).reshape(b, self.inner, h, w))
        return x + self.mlp(self.mlp_norm(x))


def to_blocks(x, blocks: int):
    """`(B, C, blocks*h, blocks*w)` -> `(B*blocks*blocks, C, h, w)`: attention stays inside each block."""
    b, c, height, width = x.shape
    x = x.reshape(b, c, blocks, height // blocks, blocks, width // blocks)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b * blocks * blocks, c, height // blocks, width // blocks)


def from_blocks(x, blocks: int):
    n, c, h, w = x.shape
    x = x.reshape(n // (blocks * blocks), blocks, blocks, c, h, w).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(n // (blocks * blocks), c, blocks * h, blocks * w)


class HTNet(nn.Module):
    def __init__(self, num_labels: int = 3, image_size: int = 28, patch_size: int = 7, dim: int = 256,
                 heads: int = 3, block_repeats=(2, 2, 8), channels: int = 3):
        super().__init__()
        levels = len(block_repeats)
        dims = [dim * 2**level for level in range(levels)]
        self.blocks_per_side = [2 ** (levels - 1 - level) for level in range(levels)]
        seq_len = (image_size // patch_size // self.blocks_per_side[0]) ** 2
        self.embed = nn.Sequential(nn.PixelUnshuffle(patch_size), nn.Conv2d(channels * patch_size**2, dims[0], 1))
        self.positions = nn.ParameterList(nn.Parameter(torch.randn(seq_len)) for _ in range(levels))
        self.levels = nn.ModuleList(
            nn.Sequential(*(Block(dims[level], heads * 2**level) for _ in range(block_repeats[level])))
            for level in range(levels)
        )
        self.aggregates = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dims[level], dims[level + 1], 3, padding=1), ChannelNorm(dims[level + 1]),
                          nn.MaxPool2d(3, stride=2, padding=1))
            for level in range(levels - 1)
        )
        self.head = nn.Sequential(ChannelNorm(dims[-1]), nn.Flatten(2))
        self.classifier = nn.Linear(dims[-1], num_labels)

    def forward(self, image):
        x = self.embed(image)
        for level, blocks in enumerate(self.levels):
            per_side = self.blocks_per_side[level]
            x = to_blocks(x, per_side)
            x = blocks(x + self.positions[level].reshape(1, 1, *x.shape[-2:]))
            x = from_blocks(x, per_side)
            if level < len(self.aggregates):
                x = self.aggregates[level](x)
        return self.classifier(self.head(x).mean(-1))
