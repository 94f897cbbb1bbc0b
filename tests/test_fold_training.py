"""Fold-level training pieces: class weights, seeds, EMA, fold planning and override parsing."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import tiny_config

from hf_mmmer.training.arguments import ExperimentArguments, parse_overrides
from hf_mmmer import MMMERForMicroExpressionClassification
from hf_mmmer.training.augmentation import augment_batch
from hf_mmmer.training.encoding import EncodedDataset
from hf_mmmer.training.subject_adversary import SubjectAdversary, subject_ids
from hf_mmmer.training.evaluation import predict_probabilities
from hf_mmmer.training.experiment import plan_folds
from hf_mmmer.training.fold_training import (
    EpochOrder,
    FoldRecipe,
    batches,
    balanced_class_weights,
    fold_seed,
    train_fold_model,
)


def encoded(n=12, subjects=("casme2/sub01", "casme2/sub02", "smic/s01")):
    generator = torch.Generator().manual_seed(0)
    return EncodedDataset(
        flow=torch.randn(n, 3, 28, 28, generator=generator), texture=torch.randn(n, 1, 28, 28, generator=generator),
        labels=torch.arange(n) % 3, sample_ids=[f"x{i}" for i in range(n)],
        subjects=[subjects[i % len(subjects)] for i in range(n)],
        datasets=[subjects[i % len(subjects)].split("/")[0] for i in range(n)], label_names=["a", "b", "c"],
    )


def test_balanced_class_weights_follow_training_counts():
    weights = balanced_class_weights(torch.tensor([0, 0, 0, 0, 1, 1, 2, 2]), 4)
    assert weights == pytest.approx([8 / (4 * 4), 8 / (4 * 2), 8 / (4 * 2), 1.0])  # absent class: weight 1
    softened = balanced_class_weights(torch.tensor([0, 0, 0, 0, 1, 1, 2, 2]), 4, power=0.5)
    assert softened == pytest.approx([0.5 ** 0.5, 1.0, 1.0, 1.0])


def test_sqrt_balanced_weighting_gives_the_fold_model_the_square_roots():
    recipe = FoldRecipe.from_arguments(ExperimentArguments(epochs=1, batch_size=4, class_weighting="sqrt_balanced"))
    model, _ = train_fold_model(tiny_config(), encoded(), np.arange(10), recipe, 0, torch.zeros(3))
    assert model.class_weights.tolist() == pytest.approx([(10 / 12) ** 0.5, (10 / 9) ** 0.5, (10 / 9) ** 0.5])


def test_balanced_sampling_draws_every_class_equally_often():
    labels = torch.tensor([0] * 80 + [1] * 15 + [2] * 5)
    indices = torch.arange(100, 200)
    generator = torch.Generator().manual_seed(0)
    drawn = torch.tensor([i for _ in range(30) for i in EpochOrder(indices, labels, "balanced_sampling", generator)])
    shares = torch.bincount(labels[drawn - 100], minlength=3) / len(drawn)
    assert shares.tolist() == pytest.approx([1 / 3] * 3, abs=0.03)  # the raw shares are 0.80 / 0.15 / 0.05
    shuffled = list(EpochOrder(indices, labels, "balanced", generator))
    assert sorted(shuffled) == indices.tolist() and shuffled != indices.tolist()  # every sample once, shuffled


def test_unknown_class_weighting_is_named():
    recipe = FoldRecipe.from_arguments(ExperimentArguments(epochs=1, class_weighting="oversample"))
    with pytest.raises(ValueError, match="'oversample'"):
        train_fold_model(tiny_config(), encoded(), np.arange(8), recipe, 0, torch.zeros(3))


def test_model_factory_and_augmentation_are_the_callers():
    """Experiments vary the network and the augmentation through parameters, never module attributes."""
    built, augmented = [], []

    class Wider(MMMERForMicroExpressionClassification):
        def __init__(self, config):
            super().__init__(config)
            built.append(config)

    def counting_augment(flow, texture, labels, config, generator, flow_zero):
        augmented.append(len(flow))
        return augment_batch(flow, texture, labels, config, generator, flow_zero)

    recipe = FoldRecipe.from_arguments(ExperimentArguments(epochs=2, batch_size=4, class_weighting="balanced"))
    model, _ = train_fold_model(tiny_config(), encoded(), np.arange(10), recipe, 0, torch.zeros(3),
                                model_factory=Wider, augment=counting_augment)
    assert isinstance(model, Wider) and len(built) == 1
    assert augmented == [4, 4, 2, 4, 4, 2]  # every batch of both epochs, the last one short
    # The fold's class weights (4 / 3 / 3 training samples of 3 classes) reach its model, not the shared config.
    assert model.class_weights.tolist() == pytest.approx([10 / 12, 10 / 9, 10 / 9])
    assert built[0].class_weights is None and "class_weights" not in model.state_dict()


def test_targets_replace_the_one_hot_labels_and_default_to_them():
    """Soft per-sample targets reach the loss; without them the fold trains exactly as on one-hot labels."""
    data, seen = encoded(), []
    recipe = FoldRecipe.from_arguments(ExperimentArguments(epochs=1, batch_size=4, flip_prob=0.0))

    def recording_augment(flow, texture, labels, config, generator, flow_zero):
        seen.append(labels)
        return augment_batch(flow, texture, labels, config, generator, flow_zero)

    one_hot = torch.nn.functional.one_hot(data.labels, 3).float()
    plain, _ = train_fold_model(tiny_config(), data, np.arange(8), recipe, 0, torch.zeros(3))
    explicit, _ = train_fold_model(tiny_config(), data, np.arange(8), recipe, 0, torch.zeros(3), targets=one_hot)
    for a, b in zip(plain.state_dict().values(), explicit.state_dict().values()):
        assert torch.equal(a, b)
    soft = torch.full((12, 3), 1 / 3)
    train_fold_model(tiny_config(), data, np.arange(8), recipe, 0, torch.zeros(3), augment=recording_augment,
                     targets=soft)
    assert len(seen) == 2 and all(torch.equal(batch, torch.full((len(batch), 3), 1 / 3)) for batch in seen)
    with pytest.raises(ValueError, match=r"targets must have shape \(12, 3\)"):
        train_fold_model(tiny_config(), data, np.arange(8), recipe, 0, torch.zeros(3), targets=soft[:8])


def test_subject_adversary_head_learns_as_is_and_the_encoder_gets_the_gradient_reversed():
    torch.manual_seed(0)
    adversary = SubjectAdversary(width=8, num_subjects=4, strength=0.5)
    pooled, subjects = torch.randn(6, 8, requires_grad=True), torch.arange(6) % 4
    head_grad, pooled_grad = torch.autograd.grad(adversary(pooled, subjects), [adversary.head[0].weight, pooled])
    plain = torch.nn.functional.cross_entropy(adversary.head(pooled), subjects)
    plain_head_grad, plain_pooled_grad = torch.autograd.grad(plain, [adversary.head[0].weight, pooled])
    torch.testing.assert_close(head_grad, plain_head_grad)
    torch.testing.assert_close(pooled_grad, -0.5 * plain_pooled_grad)
    assert pooled_grad.abs().sum() > 0


def test_subject_ids_travel_with_their_samples_and_the_adversary_changes_training_not_the_saved_model():
    data = encoded()
    ids, count = subject_ids(data.subjects)
    assert count == 3 and [sorted(set(data.subjects))[i] for i in ids] == data.subjects
    order = EpochOrder(torch.arange(12), data.labels, "balanced", torch.Generator().manual_seed(0))
    for flow, _, _, batch_ids in batches(data, order, 5, torch.zeros(12, 3), torch.arange(12)):
        assert all(torch.equal(map_, data.flow[i]) for map_, i in zip(flow, batch_ids))
    models = {}
    for strength in (0.0, 0.25, 0.5):
        recipe = FoldRecipe.from_arguments(ExperimentArguments(epochs=1, batch_size=4, subject_adversary=strength))
        models[strength], history = train_fold_model(tiny_config(), data, np.arange(8), recipe, 0, torch.zeros(3))
        assert ("train_subject_loss" in history[0]) == (strength > 0)
    assert type(models[0.5]) is MMMERForMicroExpressionClassification
    assert models[0.5].state_dict().keys() == models[0.0].state_dict().keys()
    # Two strengths draw the same random numbers; only the reversed gradient reaching the encoder differs.
    weaker, stronger = models[0.25].state_dict().values(), models[0.5].state_dict().values()
    assert any(not torch.equal(a, b) for a, b in zip(weaker, stronger))


def test_fold_seed_is_stable_and_distinct():
    assert fold_seed(0, "casme2/sub01") == fold_seed(0, "casme2/sub01")
    assert len({fold_seed(s, f) for s in (0, 1) for f in ("a", "b")}) == 4


def test_ema_model_is_scored_and_differs_from_last_weights():
    data = encoded()
    recipe = FoldRecipe.from_arguments(ExperimentArguments(epochs=3, batch_size=4, ema_decay=0.5))
    raw = FoldRecipe.from_arguments(ExperimentArguments(epochs=3, batch_size=4, ema_decay=0.0))
    zero = torch.zeros(3)
    ema_model, history = train_fold_model(tiny_config(), data, np.arange(8), recipe, 0, zero, eval_indices=[8, 9])
    last_model, _ = train_fold_model(tiny_config(), data, np.arange(8), raw, 0, zero)
    assert len(history) == 3 and {"train_loss", "train_accuracy", "eval_accuracy"} <= set(history[0])
    ema_scores = predict_probabilities(ema_model, data, [8, 9, 10])
    assert ema_scores.shape == (3, 3) and np.allclose(ema_scores.sum(-1), 1, atol=1e-5)
    assert not np.allclose(ema_scores, predict_probabilities(last_model, data, [8, 9, 10]))


def test_plan_folds_by_protocol_and_bad_names():
    data = encoded()
    folds = plan_folds(data, SimpleNamespace(protocol="loso", folds="all", test_subjects=None))
    assert list(folds) == ["casme2/sub01", "casme2/sub02", "smic/s01"]
    assert sorted(np.concatenate(list(folds.values()))) == list(range(12))
    assert list(plan_folds(data, SimpleNamespace(protocol="loso", folds="2", test_subjects=None))) == [
        "casme2/sub01", "casme2/sub02"]
    one = plan_folds(data, SimpleNamespace(protocol="loso", folds="s01", test_subjects=None))
    assert list(one) == ["smic/s01"]
    holdout = plan_folds(data, SimpleNamespace(protocol="holdout", folds="all", test_subjects="sub02,s01"))
    assert sorted({data.subjects[i] for i in holdout["holdout"]}) == ["casme2/sub02", "smic/s01"]
    with pytest.raises(ValueError, match="sub99"):
        plan_folds(data, SimpleNamespace(protocol="loso", folds="sub99", test_subjects=None))
    # An unknown --protocol and holdout without --test_subjects are refused with the other arguments
    # (ExperimentArguments; tests/test_bad_inputs_files.py), before any data are read.


def test_parse_overrides():
    assert parse_overrides('hidden_size=32,flow_patch_sizes=[7,14],modalities=["flow"],fusion=mean') == {
        "hidden_size": 32, "flow_patch_sizes": [7, 14], "modalities": ["flow"], "fusion": "mean"}
    assert parse_overrides(None) == {}
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides("hidden_size")
