"""Augmentations that respect what the inputs mean, applied to whole in-memory batches.

- Horizontal flip: mirroring a face mirrors its motion, so the flow's `u` (horizontal displacement)
  changes sign while `v` and the strain magnitude do not. The texture is mirrored with it.
- Small affine jitter (shift, rotation, scale), the same for both modalities of a sample, since they
  show the same face.
- Gaussian noise on the flow, after the geometric changes: on 28x28 maps a patch projection is a linear
  model of hundreds of pixels, and input noise is a ridge penalty on it, the regularisation the strongest
  linear reference gets from its cross-validated `C`.
- Mixup across samples of the batch (training subjects only, since batches hold nothing else): soft
  labels mix with the same weight as the inputs.

The flow is assumed to be normalised as the image processor makes it, `(x - mean) / std` with `x` in
[0, 1]: negating `u` is done on the unnormalised value (`x -> 1 - x` under min-max scaling keeps the
zero-motion level only approximately, so the processor's mean is used as the mirror point).
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class AugmentationConfig:
    """Probabilities and ranges; all zero means no augmentation."""

    flip_prob: float = 0.5
    max_shift: float = 0.05  # fraction of the image side
    max_rotation_deg: float = 8.0
    max_scale: float = 0.05
    noise_std: float = 0.1  # in the flow's normalised units
    mixup_alpha: float = 0.0

    @property
    def uses_affine(self) -> bool:
        return self.max_shift > 0 or self.max_rotation_deg > 0 or self.max_scale > 0


def flip_horizontal(flow: torch.Tensor, texture: torch.Tensor | None, mask: torch.Tensor, u_mirror: float = 0.0):
    """Mirror the samples selected by `mask` `(B,)`: flip left-right and negate `u` around `u_mirror`.

    `u_mirror` is the value of channel 0 that means zero horizontal motion (0 for raw flow).
    """
    flow = flow.clone()
    flipped = flow[mask].flip(-1)
    flipped[:, 0] = 2 * u_mirror - flipped[:, 0]
    flow[mask] = flipped
    if texture is not None:
        texture = texture.clone()
        texture[mask] = texture[mask].flip(-1)
    return flow, texture


def random_affine_grids(batch: int, config: AugmentationConfig, generator: torch.Generator) -> torch.Tensor:
    """`(B, 2, 3)` affine matrices for `F.affine_grid`: shift, rotation and isotropic scale."""
    uniform = lambda: torch.rand(batch, generator=generator) * 2 - 1  # noqa: E731
    angle = uniform() * math.radians(config.max_rotation_deg)
    scale = 1 + uniform() * config.max_scale
    shift = torch.stack([uniform(), uniform()], dim=-1) * config.max_shift * 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    return torch.stack([torch.stack([cos, -sin, shift[:, 0]], -1), torch.stack([sin, cos, shift[:, 1]], -1)], 1)


def apply_affine(images: torch.Tensor, theta: torch.Tensor, fill: float) -> torch.Tensor:
    """Warp `(B, C, H, W)` with per-sample matrices; pixels from outside take `fill` (zero motion)."""
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    shifted = F.grid_sample(images - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return shifted + fill


def augment_batch(flow, texture, labels_onehot, config: AugmentationConfig, generator: torch.Generator,
                  flow_zero: torch.Tensor):
    """Augment one training batch; returns `(flow, texture, soft_labels)`.

    `flow_zero` `(3,)`: the normalised value of each flow channel that means "no motion", used as the
    flip mirror for `u` and as the fill of affine borders. `texture` may be None (flow-only model).
    """
    batch = flow.shape[0]
    if config.flip_prob > 0:
        mask = torch.rand(batch, generator=generator) < config.flip_prob
        flow, texture = flip_horizontal(flow, texture, mask, u_mirror=float(flow_zero[0]))
    if config.uses_affine:
        theta = random_affine_grids(batch, config, generator)
        flow = apply_affine(flow, theta, fill=flow_zero.view(1, -1, 1, 1))
        if texture is not None:
            texture = apply_affine(texture, theta, fill=0.0)
    if config.noise_std > 0:
        flow = flow + config.noise_std * torch.randn(flow.shape, generator=generator)
    if config.mixup_alpha > 0:
        lam = torch.distributions.Beta(config.mixup_alpha, config.mixup_alpha).sample().item()
        order = torch.randperm(batch, generator=generator)
        flow = lam * flow + (1 - lam) * flow[order]
        if texture is not None:
            texture = lam * texture + (1 - lam) * texture[order]
        labels_onehot = lam * labels_onehot + (1 - lam) * labels_onehot[order]
    return flow, texture, labels_onehot
