"""Subject-adversarial training: the encoder learns features from which the subject is hard to tell.

A small head learns to name each training sample's subject from the model's pooled feature (the class
head's input). Between the two sits a gradient reversal (Ganin & Lempitsky, 2015): the head gets the subject
loss's gradient as it is, the encoder gets it negated and scaled by `strength`. Micro-expression data hold a
few clips from each of a few dozen people, so much of what tells clips apart is who they are; a test subject
is always someone new, and the reversal discourages features that serve only to recognise the people
seen in training. The head lives in the trainer, not in the model, so saved models are unchanged.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class ReversedGradient(torch.autograd.Function):
    """The identity forward; the incoming gradient times `-strength` backward."""

    @staticmethod
    def forward(ctx, x, strength: float):
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.strength * grad, None


class SubjectAdversary(nn.Module):
    """A subject classifier on pooled features `(B, width)`, reached through a gradient reversal."""

    def __init__(self, width: int, num_subjects: int, strength: float):
        super().__init__()
        self.strength = strength
        self.head = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, num_subjects))

    def forward(self, pooled: torch.Tensor, subjects: torch.Tensor) -> torch.Tensor:
        """The cross-entropy of naming `subjects` (integer ids) from `pooled`, to add to the training loss (a
        forward, so that data-parallel training averages the head's gradients as it does the model's)."""
        return F.cross_entropy(self.head(ReversedGradient.apply(pooled, self.strength)), subjects)


def check_compatible(mixup_alpha: float, subject_adversary: float):
    """Refuse mixup with the subject head: a mixed sample has two subjects, and the head names one."""
    if mixup_alpha > 0 and subject_adversary > 0:
        raise ValueError("--mixup_alpha mixes pairs of samples, usually of two subjects, and the subject adversary "
                         "needs one subject per sample: pass --subject_adversary 0 to train with mixup")


def subject_ids(subjects) -> tuple:
    """`(ids, count)`: each sample's subject as an integer (sorted subject names) and how many there are."""
    names, ids = np.unique(np.asarray(subjects), return_inverse=True)
    return torch.as_tensor(ids), len(names)
