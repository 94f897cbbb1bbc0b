#!/usr/bin/env python
"""Ideas measured against the recipe on a precomputed folder: one sweep per idea and protocol.

    python -m benchmarks.research.recipe_ideas --data_dir ../shared/data/megc2019-dev \
        --ideas recipe,no_flip,label_smoothing [--seed 0 | 0,1,2 | 0-9] [--processes 2] [--protocols loso,lodo]

Each idea changes one thing of the package's recipe and runs the leave-one-subject-out sweep (and/or the
leave-one-dataset-out one, `--protocols`) with the package's own `train_fold_model` (the folds shared
over `--processes` worker processes, one thread each); every number is the final-epoch (EMA) model's, and
every idea also reports test-time flip averaging (the mean of a sample's and its mirror's scores). Nothing here is chosen by test labels,
but every idea is scored on the same subjects as the recipe, so an idea adopted from this table would
be a recipe-level use of those labels (benchmarks/RESULTS.md says which were).

Ideas that need a model the package does not build (a convolutional stem, self-supervised weights)
hand `train_fold_model` a `model_factory` (`region_tokens` and the pooled whole-map views add a scale over
a view of the map, `ViewScale`; `centred_channels` adds input channels, `overlap_14` overlapping patches,
`patch_keep_*` patch dropout, `PatchDropScale`, `mixstyle` a style mix of the patch tokens, `mix_token_styles`,
`scale_heads` heads on the scales, `add_scale_heads`, and `supcon` a contrastive term), and cutout, level
jitter, smooth noise, blur and the mix within classes hand it an `augment`; `with_cnn` trains the STSTNet-style
reference CNN (benchmarks/ststnet.py) beside the recipe's model, `with_linear` the logistic regression
reference (benchmarks/linear_reference.py), and `distil_linear` trains on the labels mixed with that
logistic regression's probabilities (`train_fold_model`'s `targets`).
`decision_bias` and the `distil_` ideas with a model as teacher train more models per fold, on the folds of a
subject-grouped CV over the fold's training subjects, so that what they learn from comes from subjects the
models did not see. An idea is a change from the defaults of its commit: when an idea joins the recipe,
`previous_recipe` (or the like) measures the old one.
"""

import argparse
import math
import multiprocessing
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import GroupKFold, cross_val_predict
from threadpoolctl import threadpool_limits
from torch import nn
from transformers import get_cosine_schedule_with_warmup

from benchmarks.htnet import model_inputs as htnet_regions
from benchmarks.linear_reference import fit_logistic, flat_maps
from benchmarks.precomputed_data import encode_precomputed, summarize
from benchmarks.ststnet import train_ststnet
from hf_mmmer import MMMERConfig, MMMERForMicroExpressionClassification
from hf_mmmer.data import held_out_split
from hf_mmmer.data.loso import protocol_folds
from hf_mmmer.modeling_mmmer import (MMMEREncoder, MMMERPatchEmbeddings, MMMERScaleEncoder,
                                     cross_modal_contrastive_loss, fuse_patch_importance)
from hf_mmmer.training.arguments import ExperimentArguments
from hf_mmmer.training.augmentation import AugmentationConfig, augment_batch, flip_horizontal
from hf_mmmer.training.evaluation import predict_probabilities
from hf_mmmer.training.fold_training import FoldRecipe, fold_seed, train_fold_model
from hf_mmmer.training.metrics import classification_scores

# name -> (what it changes, keyword changes). Keys: config (MMMERConfig), recipe (ExperimentArguments),
# and the script's own: subject_norm, texture_difference, simclr_epochs, conv_stem_width, ensemble,
# same_source, subject_share, cnn_member, linear_member, extra_augment, center_flow, views,
# source_standardise, distil_linear, out_of_fold_teacher, drop_strain,
# scale_dropout, decision_bias, distil_ensemble, teacher_cnn, centred_channels, overlap, patch_keep, mixstyle,
# scale_heads, class_mix, supcon.
IDEAS = {
    "recipe": ("the package defaults", {}),
    "no_flip": ("no horizontal flip in training", {"recipe": {"flip_prob": 0.0}}),
    "no_hidden_dropout": ("hidden_dropout_prob 0 (drop path and EMA kept)", {"config": {"hidden_dropout_prob": 0.0}}),
    "label_smoothing": ("label smoothing 0.1", {"config": {"label_smoothing": 0.1}}),
    "subject_norm": ("each subject's mean flow map replaced by the global mean (unlabelled, transductive)",
                     {"subject_norm": True}),
    "simclr": ("encoder pretrained SimCLR-style on all flow maps, no labels, 100 epochs; then the recipe",
               {"simclr_epochs": 100}),
    "texture_difference": ("adds the texture branch on the apex face minus its subject's mean apex face (a "
                           "stand-in for apex - onset; unlabelled, transductive)",
                           {"config": {"modalities": ["flow", "texture"]}, "texture_difference": True}),
    "conv_stem": ("3x3 conv (16 ch) + BatchNorm + GELU before every patch projection", {"conv_stem_width": 16}),
    "ensemble3": ("mean score of 3 models per fold (seeds 100*seed + 0, 1, 2)", {"ensemble": 3}),
    "epochs_60": ("60 epochs instead of 30 (same schedule shape)", {"recipe": {"epochs": 60}}),
    "hidden_128": ("hidden size 128 instead of 64 (4 heads of 32)", {"config": {"hidden_size": 128}}),
    "three_scales": ("flow patch sizes 4, 7, 14 without the whole-map scale",
                     {"config": {"flow_patch_sizes": [4, 7, 14]}}),
    "same_source": ("each fold trains on the other subjects of the test subject's own source dataset only",
                    {"same_source": True}),
    "hidden_32": ("hidden size 32 instead of 64 (4 heads of 8)", {"config": {"hidden_size": 32}}),
    "one_layer": ("one transformer layer per scale instead of two", {"config": {"num_hidden_layers": 1}}),
    "shared_encoders": ("one transformer encoder shared by all flow scales (patch embeddings per scale)",
                        {"config": {"share_scale_encoders": True}}),
    "with_4x4": ("flow patch sizes 4, 7, 14, 28: adds 4x4 patches (49 more tokens)",
                 {"config": {"flow_patch_sizes": [4, 7, 14, 28]}}),
    "with_cnn": ("mean score of the recipe's model and the STSTNet-style CNN (benchmarks/ststnet.py, 200 "
                 "epochs) trained on the same fold", {"cnn_member": True}),
    "cutout": ("cutout: each training map, with probability 0.5, gets one random square of 7-14 px set to zero "
               "motion (after flip and affine jitter)", {"extra_augment": "cutout"}),
    "median_center": ("u and v of each map shifted so that their spatial median is zero motion (per sample, no "
                      "labels: removes global head motion and the min-max scaling's offset)", {"center_flow": "median"}),
    "median_center_maxabs": ("median_center, then u and v divided by their largest absolute value (per sample)",
                             {"center_flow": "median_maxabs"}),
    "balanced_sampling": ("class-balanced sampling (each epoch's samples drawn with replacement, every class "
                          "equally likely) instead of class-weighted loss", {"recipe": {"class_weighting": "balanced_sampling"}}),
    "epochs_20": ("20 epochs instead of 30 (same schedule shape)", {"recipe": {"epochs": 20}}),
    "batch_16": ("batch 16 instead of 32", {"recipe": {"batch_size": 16}}),
    "ema_0.99": ("EMA decay 0.99 a step instead of 0.98", {"recipe": {"ema_decay": 0.99}}),
    "lr_2e-3": ("learning rate 2e-3 instead of 1e-3", {"recipe": {"learning_rate": 2e-3}}),
    "wd_0.2": ("weight decay 0.2 instead of 0.05", {"recipe": {"weight_decay": 0.2}}),
    "subjects_25": ("each fold trains on a random quarter of its training subjects", {"subject_share": 0.25}),
    "subjects_50": ("each fold trains on a random half of its training subjects (a learning-curve point)",
                    {"subject_share": 0.5}),
    "subjects_75": ("each fold trains on a random three quarters of its training subjects", {"subject_share": 0.75}),
    "no_ema": ("no EMA of the weights: the last step's weights are scored",
               {"recipe": {"ema_decay": 0.0}}),
    "with_texture": ("adds the texture branch on the raw apex face (the paper's two modalities, contrastive loss "
                     "at the config's weight)", {"config": {"modalities": ["flow", "texture"]}}),
    "with_linear": ("mean score of the recipe's model and the logistic regression on the raw maps "
                    "(benchmarks/linear_reference.py, C chosen on the fold's training subjects)",
                    {"linear_member": True}),
    "region_tokens": ("a fourth flow scale: HTNet's four 14x14 eye/brow and mouth-corner regions (its fallback "
                      "landmarks, benchmarks/htnet.py) as 4 tokens of their own encoder",
                      {"views": [{"view": "regions"}]}),
    "regions_for_14": ("the region scale in place of the 14x14 grid scale (the same 4 tokens' size, moved onto "
                       "the eyes and mouth corners): scales 7 / regions / 28",
                       {"views": [{"view": "regions", "replace": 14}]}),
    "source_standardise": ("each source's maps standardised per channel by that source's own mean and std over all "
                           "its samples, no labels (transductive), then put back on the global mean and std",
                           {"source_standardise": True}),
    "distil_linear": ("training targets: 0.5 one-hot label + 0.5 the fold's logistic regression probabilities on "
                      "its training samples (C chosen on its training subjects)", {"distil_linear": 0.5}),
    "regions_distil": ("region_tokens and distil_linear together (each helped one LODO direction alone)",
                       {"views": [{"view": "regions"}], "distil_linear": 0.5}),
    "distil_linear_oof": ("distil_linear with the teacher's out-of-fold probabilities: each training sample's from "
                          "the regression (the fold's C) fitted without its subject's group of 5 subject-grouped "
                          "folds, as on an unseen subject", {"distil_linear": 0.5, "out_of_fold_teacher": True}),
    "levels": ("each training map's channels scaled about zero motion by a random gain (0.78-1.28) and shifted by "
               "a random offset (+-0.15 model units), after flip and affine jitter", {"extra_augment": "levels"}),
    "previous_recipe": ("the recipe before noise, softened class weights and the subject adversary: no input noise, "
                        "balanced class weights", {"recipe": {"noise_std": 0.0, "class_weighting": "balanced",
                                                              "subject_adversary": 0.0}}),
    "no_noise": ("no Gaussian noise on the training maps", {"recipe": {"noise_std": 0.0}}),
    "balanced_weights": ("fully balanced class weights instead of their square roots",
                         {"recipe": {"class_weighting": "balanced"}}),
    "noise_0.05": ("input noise 0.05 model units instead of 0.1", {"recipe": {"noise_std": 0.05}}),
    "noise_0.3": ("input noise 0.3 model units instead of 0.1", {"recipe": {"noise_std": 0.3}}),
    "strong_affine": ("affine jitter doubled: shift 0.1, rotation 15 degrees, scale 0.1",
                      {"recipe": {"max_shift": 0.1, "max_rotation_deg": 15.0, "max_scale": 0.1}}),
    "dropout_0.2": ("hidden_dropout_prob 0.2 instead of 0.1", {"config": {"hidden_dropout_prob": 0.2}}),
    "drop_path_0.3": ("drop_path_rate 0.3 instead of 0.1", {"config": {"drop_path_rate": 0.3}}),
    "attention_dropout": ("attention_probs_dropout_prob 0.1 instead of 0",
                          {"config": {"attention_probs_dropout_prob": 0.1}}),
    "drop_strain": ("the strain channel set to zero strain everywhere (u and v only)", {"drop_strain": True}),
    "whole_14": ("a fourth flow scale: the whole map average-pooled to 14x14 as one token",
                 {"views": [{"view": "whole", "pool": 2}]}),
    "whole_14_for_28": ("the whole map average-pooled to 14x14 as one token, in place of the 28x28 whole-map token",
                        {"views": [{"view": "whole", "pool": 2, "replace": 28}]}),
    "whole_14_for_14": ("the whole map average-pooled to 14x14 as one token, in place of the 14-pixel patches",
                        {"views": [{"view": "whole", "pool": 2, "replace": 14}]}),
    "whole_7": ("a fourth flow scale: the whole map average-pooled to 7x7 as one token",
                {"views": [{"view": "whole", "pool": 4}]}),
    "whole_7_14": ("whole_7 and whole_14 together (five scales)",
                   {"views": [{"view": "whole", "pool": 2}, {"view": "whole", "pool": 4}]}),
    "scale_dropout": ("each flow scale's feature zeroed for a sample with probability 0.2 in training",
                      {"scale_dropout": 0.2}),
    "distil_0.3": ("distil_linear with 0.3 of the teacher instead of 0.5", {"distil_linear": 0.3}),
    "no_subject_adversary": ("no subject head through a gradient reversal", {"recipe": {"subject_adversary": 0.0}}),
    "subject_adversary_0.3": ("gradient reversal of strength 0.3 to the subject head instead of 0.1",
                              {"recipe": {"subject_adversary": 0.3}}),
    "subject_head_only": ("the control for the subject adversary: its head trains as in the recipe, but the reversal "
                          "is 1e-12, so the encoder is all but untouched by it while every random draw stays the "
                          "recipe's", {"recipe": {"subject_adversary": 1e-12}}),
    "smooth_noise": ("adds smooth Gaussian noise (0.1 model units on a 4x4 lattice per channel, upsampled bicubic) "
                     "to each training map after the recipe's augmentations", {"extra_augment": "smooth_noise"}),
    "blur": ("each training map blurred by a Gaussian of a random sigma (0 to 1 pixel) after the recipe's "
             "augmentations", {"extra_augment": "blur"}),
    "centred_channels": ("two more input channels: u and v median-centred and divided by their largest absolute "
                         "value per map (median_center_maxabs), beside the map as scaled",
                         {"config": {"flow_channels": 5}, "centred_channels": True}),
    "overlap_14": ("the 14-pixel flow patches at stride 7 (3x3 overlapping patches instead of 2x2), so the face's "
                   "midline gets patches of its own", {"overlap": [14]}),
    "overlap_14_no_7": ("overlap_14 without the 7-pixel scale: scales 14 (3x3 at stride 7) and 28, a cheaper "
                        "model", {"config": {"flow_patch_sizes": [14, 28]}, "overlap": [14]}),
    "epochs_25": ("25 epochs instead of 30 (same schedule shape): a sweep a sixth cheaper",
                  {"recipe": {"epochs": 25}}),
    "decision_bias": ("a decision rule for UF1: per-class biases added to the log-scores (class 0 fixed at 0, the "
                      "others from -1 to 1 in steps of 0.1), chosen for the best UF1 of the out-of-fold predictions "
                      "of a 3-fold subject-grouped CV on the fold's training subjects (three more models a fold); "
                      "the scored model is the recipe's, with its draws", {"decision_bias": True}),
    "distil_two_kinds": ("issue 17's two-kind teacher: training targets 0.5 one-hot label + 0.5 the mean "
                         "probabilities of the recipe's model and the STSTNet-style CNN (200 epochs), each sample's "
                         "from models of a 3-fold subject-grouped inner CV that did not see its subject (six more "
                         "models a fold); one MMMER model is scored", {"distil_ensemble": 0.5, "teacher_cnn": True}),
    "distil_self": ("the same with the recipe's model alone as teacher (three more models a fold): what the CNN "
                    "adds to distil_two_kinds", {"distil_ensemble": 0.5}),
    "mixstyle": ("MixStyle on the patch tokens of the 7- and 14-pixel flow scales: at each scale, in half the "
                 "training batches (its own draw), each sample's token mean and std (per feature) mixed with "
                 "another sample's, Beta(0.1, 0.1)",
                 {"mixstyle": 0.5}),
    "mixstyle_1": ("mixstyle in every training batch", {"mixstyle": 1.0}),
    "patch_keep_7_half": ("patch dropout: each training sample's 7-pixel scale encodes [CLS] and 8 of its 16 "
                          "patches, drawn at random (all 16 in evaluation)", {"patch_keep": {7: 0.5}}),
    "patch_keep_7_3q": ("patch dropout keeping 12 of the 16 7-pixel patches", {"patch_keep": {7: 0.75}}),
    "scale_heads": ("deep supervision: a linear head on each flow scale's feature, 0.3 x the mean of their "
                    "cross-entropies added to the loss in training (the model's own head predicts)",
                    {"scale_heads": 0.3}),
    "supcon": ("a supervised contrastive term (SupCon, temperature 0.1) on the flow embedding through the model's "
               "own flow projection head, 0.1 x it added to the training loss", {"supcon": 0.1}),
    "class_mix": ("each training map, with probability 0.5, blended with a random map of its batch of the same "
                  "class (its own weight uniform in 0.5-1), its label and subject its own", {"class_mix": True}),
}

BIAS_STEPS = np.round(np.arange(-1.0, 1.05, 0.1), 2)
INNER_FOLDS = 3  # of the subject-grouped CV on a fold's training subjects (decision_bias, distil_*)

WORKER = {}


def load_data(data_dir):
    """The folder encoded by the recipe's processor, and that processor's zero-motion flow level."""
    data, processor = encode_precomputed(data_dir)
    return data, torch.as_tensor(processor.flow_zero_level())


def subject_means(images: torch.Tensor, subjects) -> torch.Tensor:
    """Each sample's subject's mean image, `images.shape`."""
    subjects, means = np.asarray(subjects), torch.empty_like(images)
    for subject in set(subjects):
        mask = torch.as_tensor(subjects == subject)
        means[mask] = images[mask].mean(0, keepdim=True)
    return means


def normalise_subjects(flow: torch.Tensor, subjects) -> torch.Tensor:
    """Shift every subject's flow maps so that their mean is the mean over all samples."""
    return flow - subject_means(flow, subjects) + flow.mean(0, keepdim=True)


def center_flow(flow: torch.Tensor, mode: str) -> torch.Tensor:
    """u and v of each map minus their spatial median (zero motion is 0 in model units); with
    `mode="median_maxabs"` then divided by their largest absolute value."""
    centered = flow.clone()
    motion = centered[:, :2]
    motion -= motion.flatten(2).median(-1).values[..., None, None]
    if mode == "median_maxabs":
        motion /= motion.flatten(2).abs().amax(-1)[..., None, None].clamp_min(1e-6)
    return centered


def standardise_sources(flow: torch.Tensor, sources) -> torch.Tensor:
    """Each source's maps standardised per channel by its own mean and std over all its samples, then put on
    the mean and std of all samples (so the processor's zero-motion level keeps its meaning on average)."""
    sources, standardised = np.asarray(sources), torch.empty_like(flow)
    overall_mean, overall_std = flow.mean((0, 2, 3), keepdim=True), flow.std((0, 2, 3), keepdim=True)
    for source in set(sources):
        mask = torch.as_tensor(sources == source)
        own = flow[mask]
        standardised[mask] = ((own - own.mean((0, 2, 3), keepdim=True)) / own.std((0, 2, 3), keepdim=True)
                              * overall_std + overall_mean)
    return standardised


def texture_differences(texture: torch.Tensor, subjects) -> torch.Tensor:
    """Apex face minus the subject's mean apex face, scaled to unit standard deviation.

    The precomputed folders hold no onset frame; a subject's mean apex face is close to its neutral face,
    so the difference keeps what moved and drops identity.
    """
    difference = texture - subject_means(texture, subjects)
    return difference / difference.std()


def simclr_pretrain(config, flow, flow_zero, epochs, seed, batch_size=64, temperature=0.1):
    """The encoder's weights after SimCLR on `flow` (two flip+affine views; InfoNCE between them)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = MMMERForMicroExpressionClassification(config)
    width = config.hidden_size
    head = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, 64))
    optimizer = torch.optim.AdamW([*model.mmmer.parameters(), *head.parameters()], lr=1e-3, weight_decay=0.05)
    steps = epochs * -(-len(flow) // batch_size)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(0.05 * steps), steps)
    views = AugmentationConfig(flip_prob=0.5, max_shift=0.1, max_rotation_deg=15, max_scale=0.1, noise_std=0.0)
    unused_labels = torch.zeros(batch_size, config.num_labels)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(flow), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            if len(batch) < 2:
                continue
            embeds = []
            for _view in range(2):
                view, _, _ = augment_batch(flow[batch], None, unused_labels[: len(batch)], views, generator, flow_zero)
                embeds.append(F.normalize(head(model.mmmer(flow_values=view).pooled_output), dim=-1))
            loss = cross_modal_contrastive_loss(*embeds, torch.tensor(1 / temperature).log())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    return {k: v.detach().clone() for k, v in model.mmmer.state_dict().items()}


def erase_squares(flow: torch.Tensor, generator: torch.Generator, flow_zero: torch.Tensor, prob: float = 0.5,
                  sides=(7, 14)) -> torch.Tensor:
    """Cutout: in each map, with probability `prob`, one random square of side `sides` set to zero motion."""
    batch, _, height, width = flow.shape
    side = torch.randint(sides[0], sides[1] + 1, (batch, 1, 1), generator=generator)
    top = (torch.rand(batch, 1, 1, generator=generator) * (height - side + 1)).long()
    left = (torch.rand(batch, 1, 1, generator=generator) * (width - side + 1)).long()
    rows, columns = torch.arange(height).view(1, -1, 1), torch.arange(width).view(1, 1, -1)
    inside = (rows >= top) & (rows < top + side) & (columns >= left) & (columns < left + side)
    erase = (inside & (torch.rand(batch, 1, 1, generator=generator) < prob)).unsqueeze(1)
    return torch.where(erase, flow_zero.view(1, -1, 1, 1), flow)


def jitter_levels(flow: torch.Tensor, generator: torch.Generator, flow_zero: torch.Tensor, max_log_gain=0.25,
                  max_offset=0.15) -> torch.Tensor:
    """Each map's channels scaled about zero motion by a random gain (log-uniform, +-`max_log_gain`) and shifted
    by a random offset (+-`max_offset` model units): every PNG map is min-max scaled on its own, so where zero
    motion sits and how far a unit of motion reaches differ from map to map and source to source."""
    shape = (flow.shape[0], flow.shape[1], 1, 1)
    gain = torch.exp((torch.rand(shape, generator=generator) * 2 - 1) * max_log_gain)
    offset = (torch.rand(shape, generator=generator) * 2 - 1) * max_offset
    zero = flow_zero.view(1, -1, 1, 1)
    return zero + gain * (flow - zero) + offset


def add_smooth_noise(flow: torch.Tensor, generator: torch.Generator, flow_zero: torch.Tensor, std=0.1,
                     grid=4) -> torch.Tensor:
    """Gaussian noise of `std` model units drawn on a `grid` x `grid` lattice per channel and upsampled
    (bicubic) to the map: a smooth field, where the recipe's own noise is independent per pixel. Flow errors
    and residual head or lighting motion are spatially correlated, and how much of them a map holds depends on
    the camera and the set-up, i.e. on the source."""
    field = std * torch.randn((flow.shape[0], flow.shape[1], grid, grid), generator=generator)
    return flow + F.interpolate(field, size=flow.shape[-2:], mode="bicubic", align_corners=False)


def blur_maps(flow: torch.Tensor, generator: torch.Generator, flow_zero: torch.Tensor, max_sigma=1.0) -> torch.Tensor:
    """Each map blurred by a Gaussian of a random sigma (uniform in [0, `max_sigma`] pixels, taps out to two
    sigmas, edges replicated): the sources' faces fill different numbers of camera pixels before their flow is
    resized to the map, so how sharp a motion's edges are on the map is a property of the source."""
    batch, channels = flow.shape[:2]
    radius = max(1, math.ceil(2 * max_sigma))
    sigma = (torch.rand(batch, generator=generator) * max_sigma).clamp_min(1e-3).view(-1, 1)
    taps = torch.exp(-torch.arange(-radius, radius + 1, dtype=flow.dtype) ** 2 / (2 * sigma ** 2))
    taps = (taps / taps.sum(-1, keepdim=True)).repeat_interleave(channels, 0)  # (batch x channels, taps)
    rows = F.pad(flow.reshape(1, batch * channels, *flow.shape[-2:]), (radius,) * 4, mode="replicate")
    rows = F.conv2d(rows, taps.view(-1, 1, 1, 2 * radius + 1), groups=batch * channels)
    return F.conv2d(rows, taps.view(-1, 1, 2 * radius + 1, 1), groups=batch * channels).view_as(flow)


EXTRA_AUGMENTATIONS = {"cutout": erase_squares, "levels": jitter_levels, "smooth_noise": add_smooth_noise,
                       "blur": blur_maps}


def followed_by(augment, extra):
    """`augment` followed by `extra(flow, generator, flow_zero)` on the flow: an `augment` for `train_fold_model`."""
    def augmented(flow, texture, labels, config, generator, flow_zero):
        flow, texture, labels = augment(flow, texture, labels, config, generator, flow_zero)
        return extra(flow, generator, flow_zero), texture, labels

    return augmented


def mixed_within_classes(augment, probability: float = 0.5, low: float = 0.5):
    """`augment` followed by a mix within classes: with `probability`, a training flow map becomes `w x itself
    + (1 - w) x` a random map of its batch with the same most probable class (a random pairing within each
    class, so the partner can be the map itself, always for a class seen once in the batch), `w` uniform in
    [`low`, 1]; its targets, subject and texture stay its own. A subject's way of moving is part of each of
    its maps; a map blended with another subject's of the same class keeps the class and blurs the subject.
    Not mixup: the class is never mixed, so the subject adversary reads the map's own subject. Not a
    `followed_by` extra, since it needs the targets."""
    def augmented(flow, texture, targets, config, generator, flow_zero):
        flow, texture, targets = augment(flow, texture, targets, config, generator, flow_zero)
        classes, partner = targets.argmax(-1), torch.arange(len(flow))
        for label in classes.unique():
            members = (classes == label).nonzero().flatten()
            partner[members] = members[torch.randperm(len(members), generator=generator)]
        weight = low + (1 - low) * torch.rand(len(flow), generator=generator)
        weight = torch.where(torch.rand(len(flow), generator=generator) < probability, weight, 1.0)
        weight = weight.view(-1, 1, 1, 1)
        return weight * flow + (1 - weight) * flow[partner], texture, targets

    return augmented


def drop_scale_features(probability: float):
    """A forward hook for a scale encoder: in training, each sample's feature of that scale is zeroed with
    `probability` (and the kept ones scaled by `1 / (1 - probability)`), so no scale can carry a class alone."""
    def hook(module, args, output):
        if not module.training:
            return output
        feature, *rest = output
        keep = (torch.rand(feature.shape[0], 1, device=feature.device) >= probability).to(feature.dtype)
        keep = keep / (1 - probability)
        return (feature * keep, *rest)

    return hook


def append_centred_motion(module, args, kwargs):
    """A forward pre-hook for the model: the flow map's u and v, median-centred and divided by their largest
    absolute value (`center_flow`'s `median_maxabs`), appended to its three channels as two more. The model
    sees the map as it was scaled and an estimate of where its zero motion lies, and learns which to use."""
    with_centred = lambda flow: torch.cat([flow, center_flow(flow, "median_maxabs")[:, :2]], 1)  # noqa: E731
    if "flow_values" in kwargs:
        return args, {**kwargs, "flow_values": with_centred(kwargs["flow_values"])}
    return (with_centred(args[0]), *args[1:]), kwargs


def add_training_term(model, term):
    """`model` whose training loss gains `term(model, output, labels)`, a forward hook that reads the call's
    `labels`: a research loss term without a model subclass. Evaluation, and calls without labels, are
    untouched. The hook gets the module it runs on, so the EMA copy (a deep copy, hooks included) uses its own
    weights and state."""
    def hook(module, args, kwargs, output):
        if module.training and kwargs.get("labels") is not None:
            output.loss = output.loss + term(module, output, kwargs["labels"])
        return output

    model.register_forward_hook(hook, with_kwargs=True)
    return model


def keep_feature(module, args, output):
    """A forward hook for a scale encoder: in training, its feature kept on the scale itself (`last_feature`)
    for a loss term to read, so that each copy of a model keeps its own."""
    module.last_feature = output[0] if module.training else None


def add_scale_heads(model, weight: float):
    """`model` with deep supervision of its flow scales: a linear head per scale reads that scale's feature, and
    in training `weight` x the mean of their cross-entropies (class weights and label smoothing as the model's
    own) joins the loss. Only the model's own head predicts. Each scale must then carry the class itself, where
    the recipe's loss only asks it of the scales together."""
    flow = model.mmmer.encoders["flow"]
    model.scale_heads = nn.ModuleList(nn.Linear(scale.feature_size, model.config.num_labels) for scale in flow.scales)
    model.scale_heads.apply(model._init_weights)
    for scale in flow.scales:
        scale.register_forward_hook(keep_feature)

    def scale_loss(module, output, labels):
        scales = module.mmmer.encoders["flow"].scales
        losses = [F.cross_entropy(head(scale.last_feature), labels, weight=module.class_weights,
                                  label_smoothing=module.config.label_smoothing)
                  for head, scale in zip(module.scale_heads, scales, strict=True)]
        for scale in scales:
            scale.last_feature = None  # the features' graph is not kept past the step
        return weight * torch.stack(losses).mean()

    return add_training_term(model, scale_loss)


def supervised_contrastive_loss(embeds: torch.Tensor, classes: torch.Tensor, temperature: float) -> torch.Tensor:
    """SupCon (Khosla et al., 2020) over one view: for each sample with another of its class in the batch, the
    mean over those of `-log softmax` of its similarity to them among its similarities to every other sample;
    `embeds` `(B, D)` unit vectors. 0 (in the graph) when no class occurs twice. The package's
    `cross_modal_contrastive_loss` with labels contrasts two views (flow and texture); given one view twice it
    would count each sample as its own positive."""
    similarity = embeds @ embeds.T / temperature
    itself = torch.eye(len(embeds), dtype=torch.bool, device=embeds.device)
    log_probability = similarity.masked_fill(itself, -math.inf).log_softmax(-1).masked_fill(itself, 0.0)
    positives = (classes[:, None] == classes[None, :]) & ~itself
    anchors = positives.any(-1)
    if not anchors.any():
        return similarity.sum() * 0.0
    per_anchor = -(log_probability * positives).sum(-1)[anchors] / positives.sum(-1)[anchors]
    return per_anchor.mean()


def add_supervised_contrast(model, weight: float, temperature: float = 0.1):
    """`model` whose training loss gains `weight` x `supervised_contrastive_loss` of its flow embeddings through
    its own (otherwise unused, with flow alone) flow projection head: maps of one class, from whichever
    subjects, are pulled together and the rest pushed apart; the counterpart of the subject adversary, which
    only pushes the subject out. Labels are class probabilities (their most probable class counts) or class
    indices (`-100` leaves a sample out, as in the model's own loss)."""
    def contrast(module, output, labels):
        classes = labels.argmax(-1) if labels.is_floating_point() else labels
        kept = classes != -100
        embeds = F.normalize(module.projections["flow"](output.flow_embeds[kept]), dim=-1)
        return weight * supervised_contrastive_loss(embeds, classes[kept], temperature)

    return add_training_term(model, contrast)


def variant_factory(encoder_state=None, conv_stem_width=0, views=(), scale_dropout=0.0, centred_channels=False,
                    overlap=(), patch_keep=None, mixstyle=0.0, scale_heads=0.0, supcon=0.0):
    """A `model_factory` for `train_fold_model`: the recipe's model with pretrained encoder weights, a conv
    stem before every patch projection, more scales (`views`: `add_view_scale`'s keyword arguments),
    `drop_scale_features` on every flow scale, `append_centred_motion` before it (the config must then
    have `flow_channels=5`), half-stride patches at the flow scales of `overlap` (`overlap_patches`), patch
    dropout (`drop_patches`, `patch_keep`: `{patch_size: keep}`) and/or MixStyle on the patch tokens of every flow
    scale of more than one patch, with probability `mixstyle` a batch (`mix_token_styles`), deep supervision
    of the flow scales at a loss weight of `scale_heads` (`add_scale_heads`) and/or a supervised contrastive
    term at a weight of `supcon` (`add_supervised_contrast`)."""

    def build(config):
        model = MMMERForMicroExpressionClassification(config)
        for patch_size in overlap:
            overlap_patches(model, patch_size)
        if centred_channels:
            model.register_forward_pre_hook(append_centred_motion, with_kwargs=True)
        for view in views:
            add_view_scale(model, **view)
        if scale_dropout:
            for scale in model.mmmer.encoders["flow"].scales:
                scale.register_forward_hook(drop_scale_features(scale_dropout))
        if mixstyle:
            for scale in model.mmmer.encoders["flow"].scales:
                if scale.embeddings.grid_size > 1:
                    scale.embeddings.register_forward_hook(mix_token_styles(mixstyle))
        for patch_size, keep in (patch_keep or {}).items():
            drop_patches(model, patch_size, keep)
        if scale_heads:
            add_scale_heads(model, scale_heads)
        if supcon:
            add_supervised_contrast(model, supcon)
        if encoder_state is not None:
            model.mmmer.load_state_dict(encoder_state)
        if conv_stem_width:
            for module in model.modules():
                if isinstance(module, MMMERPatchEmbeddings):
                    # The stem runs before the patch projection, which now reads its input's width.
                    linear = module.projection
                    module.stem = nn.Sequential(
                        nn.Conv2d(linear.in_channels, conv_stem_width, 3, padding=1),
                        nn.BatchNorm2d(conv_stem_width), nn.GELU(),
                    )
                    module.projection = nn.Conv2d(conv_stem_width, linear.out_channels, linear.kernel_size,
                                                  stride=linear.stride)
                    module.register_forward_pre_hook(lambda m, args: (m.stem(args[0]),))
        return model

    return build


MODEL_CHANGES = ("conv_stem_width", "views", "scale_dropout", "centred_channels", "overlap", "patch_keep",
                 "mixstyle", "scale_heads", "supcon")


def model_factory_of(change: dict, encoder_state=None):
    """The `variant_factory` of an idea's model changes: its keys among `MODEL_CHANGES`."""
    return variant_factory(encoder_state, **{key: change[key] for key in MODEL_CHANGES if key in change})


class ViewScale(nn.Module):
    """A flow scale of the package's own encoder over a view of the map: HTNet's four facial regions (their
    14x14 crops tiled 2x2, `benchmarks/htnet.py`), one token per region; or the whole map average-pooled by
    `pool`, one token (a smoother whole-map view than the recipe's 28-pixel one)."""

    def __init__(self, config, view: str, pool: int = 1):
        super().__init__()
        patch_size = 14 if view == "regions" else config.flow_image_size // pool
        self.view, self.pool = view, pool
        self.scale = MMMERScaleEncoder(config, "flow", patch_size, MMMEREncoder(config))
        self.embeddings = self.scale.embeddings  # read by callers that reshape importances
        if view == "whole":  # the embeddings' grid is sized for the full map; the pooled map is one patch
            self.embeddings.grid_size = 1
            self.embeddings.position_embeddings = nn.Parameter(torch.zeros(1, 2, config.hidden_size))

    @property
    def feature_size(self):
        return self.scale.feature_size

    def forward(self, pixel_values, *args):
        if self.view == "regions":
            return self.scale(htnet_regions(pixel_values) / 255, *args)  # htnet_regions scales to 0-255 pixels
        return self.scale(F.avg_pool2d(pixel_values, self.pool), *args)


class HalfStridePatchEmbeddings(MMMERPatchEmbeddings):
    """The package's patch embeddings with patches at half their side's stride, so neighbouring patches
    overlap by half: on the 28x28 map the 14-pixel grid becomes 3x3 patches instead of 2x2, and the face's
    midline (the brows' inner ends, where a frown pulls, the nose, the middle of the mouth) gets patches of
    its own instead of lying on the border between two."""

    def __init__(self, config, modality: str, patch_size: int):
        super().__init__(config, modality, patch_size)
        self.stride = patch_size // 2
        self.grid_size = (config.image_size(modality) - patch_size) // self.stride + 1
        self.position_embeddings = nn.Parameter(torch.zeros(1, 1 + self.grid_size**2, config.hidden_size))

    def forward(self, pixel_values):
        patches = F.unfold(pixel_values, self.patch_size, stride=self.stride).transpose(1, 2)
        tokens = F.linear(patches, self.projection.weight.flatten(1), self.projection.bias)
        cls = self.cls_token.expand(len(pixel_values), -1, -1)
        return self.dropout(torch.cat([cls, tokens], dim=1) + self.position_embeddings)


def overlap_patches(model, patch_size: int):
    """`model` with its flow scale of `patch_size` embedded by `HalfStridePatchEmbeddings` (new weights get the
    model's own initialisation)."""
    scale = model.mmmer.encoders["flow"].scales[model.mmmer.encoders["flow"].patch_sizes.index(patch_size)]
    scale.embeddings = HalfStridePatchEmbeddings(model.config, "flow", patch_size)
    scale.embeddings.apply(model._init_weights)
    return model


class PatchDropScale(nn.Module):
    """A package scale encoder that, in training, encodes [CLS] and a random `keep` share of each sample's patch
    tokens (PatchDropout, Liu et al. 2022), position embeddings added before the draw; in evaluation it is the
    package's, on every patch. No patch can carry a class alone, and the step is cheaper: the 7-pixel scale's
    16 patches are two thirds of the recipe's tokens. The weights are the wrapped scale's own."""

    def __init__(self, scale: MMMERScaleEncoder, keep: float):
        super().__init__()
        if scale.fusion == "cls":
            raise ValueError("patch dropout weights the kept patches by their fused attention; fusion 'cls' has none")
        self.scale, self.keep = scale, keep

    @property
    def embeddings(self):
        """The wrapped scale's (callers reshape importances by its grid); a property, not a second registration."""
        return self.scale.embeddings

    @property
    def feature_size(self):
        return self.scale.feature_size

    def forward(self, pixel_values, *args):
        if not self.training:
            return self.scale(pixel_values, *args)
        tokens = self.scale.embeddings(pixel_values)
        batch, count, width = tokens.shape
        kept = max(1, round(self.keep * (count - 1)))
        chosen = torch.rand(batch, count - 1, device=tokens.device).argsort(1)[:, :kept] + 1
        tokens = torch.cat([tokens[:, :1], tokens.gather(1, chosen.unsqueeze(-1).expand(-1, -1, width))], 1)
        # The package scale's pooling, repeated: its forward reshapes the importances onto the full grid.
        encoded, _, attentions = self.scale.encoder(tokens, need_weights=True)
        importance = fuse_patch_importance(attentions, self.scale.fusion)
        return torch.cat([encoded[:, 0], (importance.unsqueeze(-1) * encoded[:, 1:]).sum(1)], -1), None, None, None


def drop_patches(model, patch_size: int, keep: float):
    """`model` with its flow scale of `patch_size` wrapped in `PatchDropScale` (same weights)."""
    flow = model.mmmer.encoders["flow"]
    index = flow.patch_sizes.index(patch_size)
    flow.scales[index] = PatchDropScale(flow.scales[index], keep)
    return model


def mix_token_styles(probability: float, alpha: float = 0.1):
    """A forward hook for patch embeddings: MixStyle (Zhou et al., ICLR 2021) over the patch tokens. In training,
    with `probability` per batch, each sample's patch tokens (the embeddings' output: projected patches plus
    position embeddings) are standardised by their own mean and std over the tokens (per feature, statistics
    detached) and given a mix, weighted by Beta(`alpha`, `alpha`), of its own and another sample's statistics;
    [CLS] is left as it is. Each hooked scale draws its own coin, weights and partners. A map's token
    statistics carry how its subject and source moved, filmed and scaled the motion as much as which
    expression it is: the mix asks the model to read the pattern under another subject's style."""
    def hook(module, args, output):
        if not module.training or torch.rand(()) >= probability:
            return output
        cls, patches = output[:, :1], output[:, 1:]
        mean = patches.mean(1, keepdim=True).detach()
        std = (patches.var(1, keepdim=True) + 1e-6).sqrt().detach()
        weight = torch.distributions.Beta(alpha, alpha).sample((len(output), 1, 1)).to(output.device)
        other = torch.randperm(len(output), device=output.device)
        mixed_mean = weight * mean + (1 - weight) * mean[other]
        mixed_std = weight * std + (1 - weight) * std[other]
        return torch.cat([cls, (patches - mean) / std * mixed_std + mixed_mean], 1)

    return hook


def add_view_scale(model, view="regions", replace=None, pool=1):
    """`model` with a `ViewScale` after its flow scales, or in place of its `replace`-pixel one, and the flow
    projection rebuilt for the features; new weights get the model's own initialisation."""
    flow = model.mmmer.encoders["flow"]
    scale = ViewScale(model.config, view, pool)
    name = view if view == "regions" else f"whole/{pool}"
    if replace is not None:
        index = flow.patch_sizes.index(replace)
        flow.scales[index] = scale
        flow.patch_sizes = [*flow.patch_sizes[:index], name, *flow.patch_sizes[index + 1:]]
    else:
        flow.scales.append(scale)
        flow.patch_sizes = [*flow.patch_sizes, name]
    features = sum(scale.feature_size for scale in flow.scales)
    flow.projection = nn.Sequential(nn.Linear(features, model.config.hidden_size),
                                    nn.LayerNorm(model.config.hidden_size, eps=model.config.layer_norm_eps))
    scale.apply(model._init_weights)
    flow.projection.apply(model._init_weights)
    return model


def idea_setup(change: dict, epochs=None):
    """`(MMMERConfig, FoldRecipe)` of an idea's `config` and `recipe` changes; `epochs` overrides the
    recipe's (smoke tests)."""
    arguments = ExperimentArguments(**{**change.get("recipe", {}), **({} if epochs is None else {"epochs": epochs})})
    return MMMERConfig(**change.get("config", {})), FoldRecipe.from_arguments(arguments)


def augment_of(change: dict):
    """The `augment` of an idea: the recipe's `augment_batch`, followed by its `extra_augment` and/or its mix
    within classes (`class_mix`)."""
    augment = augment_batch
    if change.get("extra_augment"):
        augment = followed_by(augment, EXTRA_AUGMENTATIONS[change["extra_augment"]])
    return mixed_within_classes(augment) if change.get("class_mix") else augment


def init_worker(data, flow_zero, change, encoder_state, seed, folds=None):
    torch.set_num_threads(1)
    threadpool_limits(1)  # scikit-learn's BLAS too: two workers share two cores
    if change.get("subject_norm"):
        data.flow = normalise_subjects(data.flow, data.subjects)
    if change.get("center_flow"):
        data.flow = center_flow(data.flow, change["center_flow"])
    if change.get("texture_difference"):
        data.texture = texture_differences(data.texture, data.subjects)
    if change.get("drop_strain"):
        data.flow[:, 2] = flow_zero[2]
    if change.get("source_standardise"):
        data.flow = standardise_sources(data.flow, data.datasets)
    config, recipe = idea_setup(change)
    WORKER.update(data=data, change=change, seed=seed, recipe=recipe, config=config, flow_zero=flow_zero,
                  folds=folds, model_factory=model_factory_of(change, encoder_state),
                  augment=augment_of(change))


def plain_and_mirrored_scores(predict, flow, texture, flow_zero) -> list:
    """Softmax scores of `predict(flow, texture)` on the test samples and on their mirror images."""
    everyone = torch.ones(len(flow), dtype=torch.bool)
    mirrored, _ = flip_horizontal(flow, None, everyone, float(flow_zero[0]))
    with torch.no_grad():
        return [torch.softmax(predict(flow, texture), -1).numpy(),
                torch.softmax(predict(mirrored, None if texture is None else texture.flip(-1)), -1).numpy()]


def share_of_subjects(subjects, share: float, seed: int) -> np.ndarray:
    """A random `share` of the distinct `subjects` (at least one), drawn from `seed`."""
    distinct = np.unique(subjects)
    count = max(1, round(share * len(distinct)))
    return np.random.default_rng(seed).choice(distinct, count, replace=False)


def labels_mixed_with(data, train, teacher, share: float) -> torch.Tensor:
    """`(N, num_labels)` training targets: the one-hot labels, the `train` rows mixed with the teacher's
    probabilities `teacher` `(len(train), num_labels)` as `(1 - share) x label + share x teacher`."""
    targets = F.one_hot(data.labels, len(data.label_names)).float()
    targets[train] = (1 - share) * targets[train] + share * torch.as_tensor(teacher, dtype=torch.float32)
    return targets


def distillation_targets(data, train) -> torch.Tensor:
    """`labels_mixed_with` the fold's logistic regression's probabilities on its own training samples, or with
    `out_of_fold_teacher` each sample's from a regression that did not see its subject."""
    search = fit_logistic(data.flow, data.labels, data.subjects, train)
    features = flat_maps(data.flow[train])
    if WORKER["change"].get("out_of_fold_teacher"):
        teacher = cross_val_predict(search.best_estimator_, features, data.labels.numpy()[train],
                                    groups=np.asarray(data.subjects)[train], cv=search.cv, method="predict_proba")
    else:
        teacher = search.predict_proba(features)
    return labels_mixed_with(data, train, teacher, WORKER["change"]["distil_linear"])


def inner_splits(subjects: np.ndarray, train: np.ndarray, inner_folds: int):
    """`[(inner_train, inner_validation)]` sample indices: grouped folds over the training subjects."""
    folds = GroupKFold(n_splits=inner_folds).split(train, groups=subjects[train])
    return [(train[fit], train[held]) for fit, held in folds]


def out_of_fold_probabilities(data, train, fold, with_cnn=False) -> np.ndarray:
    """`(len(train), num_labels)`: each training sample's class probabilities from models that never saw its
    subject, the recipe's model trained on the other folds of an `INNER_FOLDS`-fold subject-grouped CV over
    `train` (`inner_splits`); with `with_cnn` averaged with the STSTNet-style CNN's (benchmarks/ststnet.py,
    200 epochs) trained on the same inner folds."""
    probabilities = np.zeros((len(data), len(data.label_names)))
    for i, (fit, held) in enumerate(inner_splits(np.asarray(data.subjects), train, INNER_FOLDS)):
        seed = fold_seed(WORKER["seed"], f"{fold}/inner{i}")
        model, _ = train_fold_model(WORKER["config"], data, fit, WORKER["recipe"], seed, WORKER["flow_zero"],
                                    model_factory=WORKER["model_factory"], augment=WORKER["augment"])
        probabilities[held] = predict_probabilities(model, data, held)
        if with_cnn:
            cnn = train_ststnet(data.flow, data.labels, torch.as_tensor(fit), seed)
            with torch.no_grad():
                cnn_probabilities = torch.softmax(cnn(data.flow[held]), -1).numpy()
            probabilities[held] = (probabilities[held] + cnn_probabilities) / 2
    return probabilities[train]


def log_of(probabilities: np.ndarray) -> np.ndarray:
    """The log of float32 probabilities, an underflowed 0 taken as the smallest positive float32 (no -inf)."""
    return np.log(np.maximum(probabilities, np.finfo(np.float32).tiny))


def inner_decision_bias(data, train, fold) -> np.ndarray:
    """`(num_labels,)` log-score biases for UF1, chosen on `train` alone: on the grid of `BIAS_STEPS` (class 0
    fixed at 0), the bias with the best UF1 of the recipe's out-of-fold predictions
    (`out_of_fold_probabilities`) wins; among equal UF1s the smallest sum of absolute biases, then the first in
    grid order."""
    labels, num_labels = data.labels.numpy()[train], len(data.label_names)
    log_scores = log_of(out_of_fold_probabilities(data, train, fold))
    grid = np.stack(np.meshgrid(*[BIAS_STEPS] * (num_labels - 1), indexing="ij"), -1).reshape(-1, num_labels - 1)
    biases = np.concatenate([np.zeros((len(grid), 1)), grid], 1)
    uf1 = [classification_scores(labels, (log_scores + bias).argmax(-1), num_labels)["uf1"] for bias in biases]
    return biases[max(range(len(biases)), key=lambda i: (uf1[i], -np.abs(biases[i]).sum()))]


def model_distillation_targets(data, train, fold) -> torch.Tensor:
    """`labels_mixed_with` the out-of-fold probabilities of the recipe's model, with `teacher_cnn` averaged with
    the CNN's (`out_of_fold_probabilities`), at a share of `distil_ensemble`."""
    change = WORKER["change"]
    teacher = out_of_fold_probabilities(data, train, fold, with_cnn=change.get("teacher_cnn", False))
    return labels_mixed_with(data, train, teacher, change["distil_ensemble"])


def run_fold(fold):
    """Scores `(members, 2 [plain, mirrored], n_test, num_labels)` of one fold (a held-out subject in LOSO,
    a held-out source in LODO)."""
    data, change, flow_zero = WORKER["data"], WORKER["change"], WORKER["flow_zero"]
    subjects, sources = np.asarray(data.subjects), np.asarray(data.datasets)
    train, test = held_out_split(data.subjects, WORKER["folds"][fold])
    if change.get("same_source"):
        train = train[sources[train] == sources[test[0]]]
    if change.get("subject_share"):
        train = train[np.isin(subjects[train], share_of_subjects(subjects[train], change["subject_share"],
                                                                 fold_seed(WORKER["seed"], fold)))]
    ensemble = change.get("ensemble", 1)
    if change.get("distil_linear") and change.get("distil_ensemble"):
        raise ValueError("an idea has one teacher: distil_linear or distil_ensemble, not both")
    targets = None
    if change.get("distil_linear"):
        targets = distillation_targets(data, train)
    elif change.get("distil_ensemble"):
        targets = model_distillation_targets(data, train, fold)
    test_flow = data.flow[test]
    scores = []
    for k in range(ensemble):
        seed = fold_seed(WORKER["seed"] * 100 + k if ensemble > 1 else WORKER["seed"], fold)
        model, _ = train_fold_model(WORKER["config"], data, train, WORKER["recipe"], seed, flow_zero,
                                    model_factory=WORKER["model_factory"], augment=WORKER["augment"],
                                    targets=targets)
        texture = data.texture[test] if "texture" in model.config.modalities else None
        scores.append(plain_and_mirrored_scores(
            lambda flow, texture: model(flow_values=flow, texture_values=texture).logits, test_flow, texture, flow_zero))
    if change.get("cnn_member"):
        cnn = train_ststnet(data.flow, data.labels, torch.as_tensor(train), fold_seed(WORKER["seed"], fold))
        scores.append(plain_and_mirrored_scores(lambda flow, _texture: cnn(flow), test_flow, None, flow_zero))
    if change.get("linear_member"):
        linear = fit_logistic(data.flow, data.labels, data.subjects, train)
        scores.append(plain_and_mirrored_scores(
            lambda flow, _texture: torch.as_tensor(linear.decision_function(flat_maps(flow))),
            test_flow, None, flow_zero))
    scores = np.asarray(scores)
    if change.get("decision_bias"):
        scores = torch.softmax(torch.as_tensor(log_of(scores) + inner_decision_bias(data, train, fold)), -1).numpy()
    return fold, test, scores


def largest_first(folds: dict, subjects) -> list:
    """The names of `folds` (`protocol_folds`), the fold holding the most samples first, so that the longest
    trainings of a sweep do not start last."""
    subjects = np.asarray(subjects)
    return sorted(folds, key=lambda fold: -np.isin(subjects, folds[fold]).sum())


def sweep(data, flow_zero, change, seed, processes, protocol="loso"):
    """One sweep of an idea over `protocol`'s folds: `(scores (members, 2, N, num_labels), seconds)`."""
    started = time.perf_counter()
    encoder_state = None
    if change.get("simclr_epochs"):
        torch.set_num_threads(processes)
        encoder_state = simclr_pretrain(idea_setup(change)[0], data.flow, flow_zero,
                                        change["simclr_epochs"], seed)
    folds = protocol_folds(data.subjects, protocol)
    order = largest_first(folds, data.subjects)
    context = multiprocessing.get_context("fork")
    worker_args = (data, flow_zero, change, encoder_state, seed, folds)
    with context.Pool(min(processes, len(order)), initializer=init_worker, initargs=worker_args) as pool:
        results = pool.map(run_fold, order, chunksize=1)
    members = len(results[0][2])  # as many as `run_fold` trained per fold
    scores = np.zeros((members, 2, len(data), len(data.label_names)))
    for _, test, fold_scores in results:
        scores[:, :, test] = fold_scores
    return scores, time.perf_counter() - started


def pool_scores(data, predictions) -> dict:
    """`{"all" | source: (UF1, UAR)}` of one predicted label per sample (pooled scores: any protocol)."""
    summary = summarize(data, predictions)
    pools = {"all": summary, **summary["per_dataset"]}
    return {name: (result["uf1"], result["uar"]) for name, result in pools.items()}


def uf1_uar(scores: tuple) -> str:
    """`(UF1, UAR)` as printed in the tables."""
    return f"{scores[0]:.4f} / {scores[1]:.4f}"


def parse_seeds(text: str) -> list:
    """`"0"`, `"0,1,2"` or `"0-9"` (ranges and lists may mix) as a list of distinct seeds."""
    seeds = []
    for part in text.split(","):
        low, dash, high = (side.strip() for side in part.partition("-"))
        if not low.isdigit() or (dash and not high.isdigit()) or (dash and int(high) < int(low)):
            raise ValueError(f"--seed takes a seed, a comma list or a range such as 0-9, got {text!r}")
        seeds.extend(range(int(low), int(high) + 1) if dash else [int(low)])
    if len(set(seeds)) < len(seeds):
        raise ValueError(f"--seed names a seed twice: {text!r}")
    return seeds


def seed_summary(uf1: dict, ideas: list, protocols: list, pools: list) -> list:
    """Markdown lines: per idea and protocol, the UF1 of each pool over the seeds (mean +- std, the spread of
    the per-seed values) and, paired seed by seed on the pooled UF1, the difference from the first idea listed.

    `uf1[(idea, protocol)][seed][pool]` is one sweep's UF1."""
    baseline = ideas[0]
    lines = ["| idea | protocol | seeds | " + " | ".join(pools) + f" | all, paired with {baseline} |",
             "| --- " * (len(pools) + 4) + "|"]
    for name, protocol in ((name, protocol) for name in ideas for protocol in protocols):
        runs = uf1[name, protocol]
        cells = []
        for pool in pools:
            values = np.array([runs[seed][pool] for seed in runs])
            cells.append(f"{values.mean():.4f} +- {values.std(ddof=1) if len(values) > 1 else 0.0:.4f}")
        differences = np.array([runs[seed]["all"] - uf1[baseline, protocol][seed]["all"] for seed in runs])
        paired = ("" if name == baseline else
                  f"{differences.mean():+.4f}, ahead in {(differences > 0).sum()} of {len(differences)}")
        lines.append(f"| {name} | {protocol} | {len(runs)} | " + " | ".join(cells) + f" | {paired} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--ideas", default=",".join(IDEAS), help=f"Comma list of: {', '.join(IDEAS)}")
    parser.add_argument("--seed", default="0", help="A seed, a comma list or a range such as 0-9: with several, "
                                                    "a summary over them follows the per-seed rows")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--protocols", default="loso", help="Comma list of: loso, lodo (CASME II <-> SMIC)")
    args = parser.parse_args()
    protocols = [name.strip() for name in args.protocols.split(",") if name.strip()]
    if not protocols or set(protocols) - {"loso", "lodo"}:
        parser.error(f"--protocols takes loso and/or lodo, got {args.protocols!r}")
    ideas = [name.strip() for name in args.ideas.split(",") if name.strip()]
    unknown = [name for name in ideas if name not in IDEAS]
    if unknown:
        parser.error(f"unknown idea(s) {unknown}; choose from {list(IDEAS)}")
    try:
        seeds = parse_seeds(args.seed)
    except ValueError as error:
        parser.error(str(error))
    data, flow_zero = load_data(args.data_dir)
    sources = sorted(set(data.datasets))
    print(f"Final-epoch (EMA) model, {args.processes} process(es); UF1 / UAR (in LODO a source's column is the fold "
          "that held it out)\n")
    print("| seed | idea | protocol | change | all | " + " | ".join(sources) + " | all, with flip TTA | wall s |")
    print("| --- " * (len(sources) + 7) + "|")
    uf1 = {}
    for seed, name, protocol in ((s, n, p) for s in seeds for n in ideas for p in protocols):
        description, change = IDEAS[name]
        scores, seconds = sweep(data, flow_zero, change, seed, args.processes, protocol)
        plain = pool_scores(data, scores[:, 0].mean(0).argmax(-1))
        tta = pool_scores(data, scores.mean((0, 1)).argmax(-1))
        uf1.setdefault((name, protocol), {})[seed] = {pool: plain[pool][0] for pool in plain}
        print(f"| {seed} | {name} | {protocol} | {description} | {uf1_uar(plain['all'])} | "
              + " | ".join(uf1_uar(plain[s]) for s in sources) + f" | {uf1_uar(tta['all'])} | {seconds:.0f} |",
              flush=True)
        if len(scores) > 1:
            members = ", ".join(uf1_uar(pool_scores(data, member.argmax(-1))["all"]) for member in scores[:, 0])
            wrong = scores[:, 0].argmax(-1) != data.labels.numpy()
            print(f"\n{name}: its members alone, all UF1 / UAR: {members}; samples wrong for every member: "
                  f"{wrong.all(0).sum()}, for at least one: {wrong.any(0).sum()} of {len(data)}\n", flush=True)
    if len(seeds) > 1:
        print("\nUF1 over the seeds:\n\n" + "\n".join(seed_summary(uf1, ideas, protocols, ["all", *sources])))


if __name__ == "__main__":
    main()
