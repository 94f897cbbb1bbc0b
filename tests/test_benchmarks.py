"""The benchmark scripts on tiny precomputed trees and tensors (the real folder is never needed).

They guard the MEGC2019 script's command line and its `--output` JSON (keys named in the design's
interfaces), the nested selection's command line, and the data transforms and trainer variants of the
recipe ideas, which no other test exercises: a benchmark that has rotted is found out only when a long run
fails, and a wrong transform only as a wrong number.
"""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import PACKAGE_SOURCE, TINY_FLOW_OVERRIDES, tiny_config

from test_data_fixtures import precomputed_tree

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_megc2019_benchmark_writes_per_seed_mean_std_and_references(tmp_path, run_benchmark):
    data = precomputed_tree(tmp_path / "pre")
    output = tmp_path / "results.json"
    code, stdout, stderr = run_benchmark(
        "megc2019.py", "--data_dir", data, "--seeds", "2", "--processes", "1", "--output", output,
        "--work_dir", tmp_path / "work", "--baseline", "--baseline_epochs", "1",
        "--train_args", f"--epochs 1 --batch_size 4 --config_overrides {TINY_FLOW_OVERRIDES}")
    assert code == 0, stderr[-3000:]
    report = json.loads(output.read_text())
    sources = {"casme2", "smic", "samm", "other"}
    assert set(report["seeds"]) == {"0", "1"}
    for metrics in report["seeds"].values():
        assert {"uf1", "uar", "accuracy", "n", "per_dataset", "per_fold"} <= set(metrics)
        assert metrics["n"] == 8 and set(metrics["per_dataset"]) == sources
    seeds = [report["seeds"][s]["uf1"] for s in ("0", "1")]
    for summary in ("mean", "std"):  # the shape of metrics.json, as the interface says
        assert set(report[summary]) == {"uf1", "uar", "accuracy", "per_dataset"}
        assert set(report[summary]["per_dataset"]) == sources
        assert set(report[summary]["per_dataset"]["smic"]) == {"uf1", "uar", "accuracy"}
    assert report["mean"]["uf1"] == pytest.approx(np.mean(seeds))
    assert report["std"]["uf1"] == pytest.approx(np.std(seeds, ddof=1))
    assert set(report["test_selected"]["0"]["per_dataset"]) == sources
    assert report["baseline"]["final"]["n"] == 8 and set(report["baseline"]["test_selected"]["per_dataset"]) == sources
    assert report["linear_reference"]["n"] == 8 and set(report["linear_reference"]["per_dataset"]) == sources
    assert sum(report["linear_reference"]["chosen_C"].values()) == 7  # one choice per subject fold
    assert "| all | 8 |" in stdout and "STSTNet CNN on the flow maps" in stdout
    assert "Logistic regression on the raw flow maps" in stdout


def test_megc2019_benchmark_reads_a_folder_without_samples_csv_as_the_maps_layout(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from precomputed_data import dataset_name

    assert dataset_name(precomputed_tree(tmp_path / "pre")) == "precomputed"
    (tmp_path / "clone").mkdir()
    assert dataset_name(tmp_path / "clone") == "megc2019_maps"


@pytest.mark.slow
def test_nested_selection_scores_every_candidate_and_the_nested_choice_loso_and_lodo(tmp_path, fork_server):
    data = precomputed_tree(tmp_path / "pre")
    outputs = {}
    for protocol in ("loso", "lodo"):  # a config candidate, then a model variant (overlapping patches)
        candidates = "recipe,one_layer" if protocol == "loso" else "recipe,overlap_14"
        fork_server.start(tmp_path, module="benchmarks.research.nested_selection", path=[REPO, PACKAGE_SOURCE],
                          argv=["nested_selection.py", "--data_dir", data, "--candidates", candidates,
                                "--protocol", protocol, "--inner_folds", "2", "--epochs", "1", "--processes", "1"],
                          envs=[{"HF_MMMER_DATASETS_CACHE": str(tmp_path / "datasets")}])
        [(code, outputs[protocol], stderr)] = fork_server.wait(600)
        assert code == 0, stderr[-3000:]
    stdout = outputs["loso"]
    assert "| candidate `recipe` |" in stdout and "| candidate `one_layer` |" in stdout
    assert "| nested: chosen per fold on its training subjects |" in stdout
    chosen = stdout.split("Folds choosing each candidate: ")[1].split()
    assert int(chosen[1].rstrip(",")) + int(chosen[3]) == 7  # one choice per held-out subject
    stdout = outputs["lodo"]
    assert stdout.startswith("Nested LODO") and "| candidate `overlap_14` |" in stdout
    per_source = stdout.split("Chosen per held-out source: ")[1].strip().split(", ")
    assert sorted(entry.split()[0] for entry in per_source) == ["casme2", "other", "samm", "smic"]
    assert {entry.split()[1] for entry in per_source} <= {"recipe", "overlap_14"}


def test_recipe_ideas_centring_and_subject_share(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.research.recipe_ideas import center_flow, share_of_subjects

    flow = torch.rand(2, 3, 28, 28)
    flow[1, :2] = flow[1, :2] * 0.2 + 0.7  # a map whose zero motion sits off the middle
    centered = center_flow(flow, "median")
    assert torch.allclose(centered[:, :2].flatten(2).median(-1).values, torch.zeros(2, 2), atol=1e-6)
    assert torch.equal(centered[:, 2], flow[:, 2])  # strain untouched
    assert centered[:, :2].sub(flow[:, :2]).flatten(2).std(-1).max() < 1e-6  # a shift, nothing else
    scaled = center_flow(flow, "median_maxabs")
    assert torch.allclose(scaled[:, :2].flatten(2).abs().amax(-1), torch.ones(2, 2))

    subjects = np.repeat([f"s{i:02d}" for i in range(39)], 3)
    half = share_of_subjects(subjects, 0.5, seed=7)
    assert len(half) == 20 and len(set(half)) == 20 and set(half) <= set(subjects)
    assert list(half) == list(share_of_subjects(subjects, 0.5, seed=7))  # the fold's seed decides
    assert len(share_of_subjects(subjects[:3], 0.25, seed=0)) == 1  # never an empty training set


def test_recipe_ideas_blur_smooth_noise_centred_channels_and_overlap(monkeypatch):
    """The sixth attempt's ideas: blur spreads motion without moving or losing it, the noise is smooth, the
    centred channels reach the model beside the map, and half-stride patches overlap."""
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.research import recipe_ideas
    from benchmarks.research.recipe_ideas import add_smooth_noise, blur_maps
    from hf_mmmer.data.loso import protocol_folds
    from hf_mmmer.training.encoding import EncodedDataset

    generator = torch.Generator().manual_seed(0)
    impulse = torch.zeros(8, 3, 28, 28)
    impulse[:, :, 14, 14] = 1.0
    blurred = blur_maps(impulse, generator, None)
    assert torch.allclose(blurred.sum((-2, -1)), torch.ones(8, 3))  # away from the edges nothing is lost
    assert torch.allclose(blurred, blurred.flip(-1).roll(1, -1)) and torch.allclose(blurred, blurred.transpose(-2, -1))
    peaks = blurred[:, 0, 14, 14]
    assert len(set(peaks.tolist())) > 4  # each map its own sigma
    assert 0.162 < peaks.min() < 0.3  # up to 1 pixel: a sigma of 1 keeps 0.1621 of an impulse at its centre
    assert torch.equal(blurred[:, 0], blurred[:, 1])  # one sigma for the three channels of a map
    constant = torch.full((2, 3, 28, 28), 0.3)
    assert torch.allclose(blur_maps(constant, generator, None), constant)  # edges replicated, not zero-filled
    maps = torch.randn(2, 3, 28, 28)
    assert torch.allclose(blur_maps(maps, generator, None, max_sigma=1e-6), maps)

    noise = add_smooth_noise(torch.zeros(256, 3, 28, 28), generator, None)
    assert 0.07 < noise.std() < 0.11
    neighbours = torch.corrcoef(torch.stack([noise[..., 10, 10].flatten(), noise[..., 10, 11].flatten()]))[0, 1]
    assert neighbours > 0.95  # where the recipe's own noise is independent from pixel to pixel

    model = recipe_ideas.variant_factory(centred_channels=True)(tiny_config(modalities=["flow"], flow_channels=5))
    seen = []
    model.mmmer.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["flow_values"]),
                                          with_kwargs=True)
    maps = torch.rand(2, 3, 28, 28) + torch.tensor([0.5, -0.3, 0.0]).view(1, 3, 1, 1)
    assert model(flow_values=maps).logits.shape == (2, 3)
    assert torch.equal(seen[0][:, :3], maps)  # the map as scaled, then u and v centred
    assert torch.allclose(seen[0][:, 3:].flatten(2).abs().amax(-1), torch.ones(2, 2))
    assert seen[0][:, 3:].flatten(2).median(-1).values.abs().max() < 1e-6

    model = recipe_ideas.variant_factory(overlap=[14])(tiny_config(modalities=["flow"])).eval()
    embeddings = model.mmmer.encoders["flow"].scales[1].embeddings
    tokens = embeddings(maps)[:, 1:] - embeddings.position_embeddings[:, 1:]
    convolved = torch.nn.functional.conv2d(maps, embeddings.projection.weight, embeddings.projection.bias, stride=7)
    assert torch.allclose(tokens, convolved.flatten(2).transpose(1, 2), atol=1e-5)  # 3x3 patches at stride 7
    assert model(flow_values=maps).patch_importance["flow/p14"].shape == (2, 3, 3)

    # Every model change an idea can make reaches `variant_factory`, in recipe_ideas and in nested_selection.
    import inspect

    from benchmarks.research.nested_selection import candidate_setup
    assert set(recipe_ideas.MODEL_CHANGES) == set(inspect.signature(recipe_ideas.variant_factory).parameters) - {
        "encoder_state"}
    config, _, factory = candidate_setup("overlap_14")
    assert factory(config).mmmer.encoders["flow"].scales[1].embeddings.grid_size == 3

    # Both variants through the worker and the trainer: EMA copy, scoring, and a LODO fold.
    sources = ["a"] * 9 + ["b"] * 6
    subjects = [f"{source}/s{i % 3}" for i, source in enumerate(sources)]
    data = EncodedDataset(flow=torch.randn(15, 3, 28, 28, generator=generator), texture=None,
                          labels=torch.arange(15) % 3, sample_ids=[str(i) for i in range(15)], subjects=subjects,
                          datasets=sources, label_names=["x", "y", "z"])
    recipe_ideas.init_worker(data, torch.zeros(3), {"overlap": [14], "centred_channels": True}, None, seed=0,
                             folds=protocol_folds(subjects, "lodo"))
    recipe_ideas.WORKER.update(config=tiny_config(modalities=["flow"], flow_channels=5),
                               recipe=recipe_ideas.idea_setup({"recipe": {"batch_size": 4}}, epochs=1)[1])
    fold, test, scores = recipe_ideas.run_fold("b")
    assert test.tolist() == list(range(9, 15)) and scores.shape == (1, 2, 6, 3)
    assert np.allclose(scores.sum(-1), 1, atol=1e-5)


def test_recipe_ideas_mixstyle_and_patch_dropout(monkeypatch):
    """The seventh attempt's ideas: MixStyle mixes only the patch tokens' statistics and only in training; patch
    dropout encodes the kept patches in training and is the package's scale, same weights, in evaluation."""
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.research import recipe_ideas
    from benchmarks.research.recipe_ideas import PatchDropScale, mix_token_styles

    torch.manual_seed(0)
    hook = mix_token_styles(1.0)
    module = torch.nn.Identity()
    tokens = torch.randn(6, 17, 8) * torch.arange(1, 7).view(6, 1, 1) + torch.arange(6).view(6, 1, 1)
    mixed = hook(module.train(), (), tokens)
    assert torch.equal(mixed[:, 0], tokens[:, 0])  # [CLS] untouched
    assert not torch.allclose(mixed[:, 1:], tokens[:, 1:])
    means, mixed_means = tokens[:, 1:].mean(1), mixed[:, 1:].mean(1)
    low, high = means.min(0).values - 1e-4, means.max(0).values + 1e-4
    assert ((mixed_means >= low) & (mixed_means <= high)).all()  # a mix of the batch's statistics
    standardised = lambda x: (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)  # noqa: E731
    assert torch.allclose(standardised(mixed[:, 1:]), standardised(tokens[:, 1:]), atol=1e-4)  # the pattern kept
    same = tokens[:1].expand(6, -1, -1)
    assert torch.allclose(hook(module, (), same), same, atol=1e-5)  # one style: nothing to mix
    assert hook(module.eval(), (), tokens) is tokens
    leaf, probe = tokens.clone().requires_grad_(), torch.randn(6, 16, 8)
    (hook(module.train(), (), leaf)[:, 1:] * probe).sum().backward()
    # The statistics are constants (detached): each token's gradient is the probe times its sample's scale
    # factor, one per sample and feature; through the statistics every token would feel all the others.
    factor = leaf.grad[:, 1:] / probe
    assert torch.allclose(factor, factor[:, :1].expand_as(factor), rtol=1e-4) and (factor > 0).all()
    assert mix_token_styles(0.0)(module.train(), (), tokens) is tokens

    config = tiny_config(modalities=["flow"], flow_patch_sizes=[7, 14, 28])
    torch.manual_seed(1)
    recipe = recipe_ideas.variant_factory()(config).eval()
    torch.manual_seed(1)
    variant = recipe_ideas.variant_factory(patch_keep={7: 0.5}, mixstyle=1.0)(config).eval()
    scales = variant.mmmer.encoders["flow"].scales
    assert isinstance(scales[0], PatchDropScale) and scales[0].keep == 0.5
    assert [scale.embeddings.grid_size for scale in scales if scale.embeddings._forward_hooks] == [4, 2]
    maps = torch.randn(3, 3, 28, 28)
    assert torch.equal(variant(flow_values=maps).logits, recipe(flow_values=maps).logits)  # same weights, eval
    assert variant(flow_values=maps).patch_importance["flow/p7"].shape == (3, 4, 4)

    seen = []
    scales[0].scale.encoder.register_forward_hook(lambda module, args, output: seen.append(args[0].shape))
    variant.train()(flow_values=maps).logits.sum().backward()
    assert seen == [(3, 1 + 8, 16)]  # [CLS] and 8 of the 16 patches
    assert scales[0].scale.embeddings.projection.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="fusion 'cls'"):
        recipe_ideas.variant_factory(patch_keep={7: 0.5})(tiny_config(modalities=["flow"], fusion="cls"))


def test_recipe_ideas_scale_heads_supcon_and_mix_within_classes(monkeypatch):
    """Deep supervision and the supervised contrastive term add to the training loss and leave predictions to
    the model's own head; the mix within classes blends only maps of one class and keeps the targets."""
    monkeypatch.syspath_prepend(str(REPO))
    import torch.nn.functional as F

    from benchmarks.research import recipe_ideas

    config = tiny_config(modalities=["flow"], flow_patch_sizes=[7, 14, 28], hidden_dropout_prob=0.0,
                         drop_path_rate=0.0, classifier_dropout=0.0)
    torch.manual_seed(1)
    plain = recipe_ideas.variant_factory()(config).eval()
    torch.manual_seed(1)
    model = recipe_ideas.variant_factory(scale_heads=0.3)(config)
    model.set_class_weights([1.0, 2.0, 0.5])
    maps, labels = torch.randn(4, 3, 28, 28), F.one_hot(torch.tensor([0, 1, 2, 1]), 3).float()
    evaluated = model.eval()(flow_values=maps, labels=labels)
    assert torch.equal(evaluated.logits, plain(flow_values=maps).logits)  # the same weights; the heads only add
    assert torch.allclose(evaluated.loss, F.cross_entropy(evaluated.logits, labels, weight=model.class_weights))
    output = model.train()(flow_values=maps, labels=labels)
    scales = model.mmmer.encoders["flow"].scales
    expected = sum(F.cross_entropy(head(scale(maps)[0]), labels, weight=model.class_weights)
                   for head, scale in zip(model.scale_heads, scales)) / 3
    main = F.cross_entropy(output.logits, labels, weight=model.class_weights)
    assert torch.allclose(output.loss, main + 0.3 * expected, atol=1e-5)
    model(flow_values=maps, labels=labels).loss.backward()  # each forward reads its own scales' features
    assert all(head.weight.grad.abs().sum() > 0 for head in model.scale_heads)
    assert all(scale.last_feature is None for scale in scales)  # no graph kept past the step
    # The EMA copy (a deep copy, hooks included) keeps its own features and heads.
    from torch.optim.swa_utils import AveragedModel

    average = AveragedModel(model).module.train()
    with torch.no_grad():
        average.scale_heads[0].weight.add_(torch.randn_like(average.scale_heads[0].weight))
    copied_output = average(flow_values=maps, labels=labels)
    assert not torch.allclose(copied_output.loss, model(flow_values=maps, labels=labels).loss)
    average(flow_values=maps)  # a forward without labels leaves the copy's features, never the model's
    assert all(scale.last_feature is None for scale in scales)

    # SupCon against its definition, written out sample by sample.
    embeds = F.normalize(torch.randn(6, 4), dim=-1)
    classes = torch.tensor([0, 1, 0, 2, 1, 0])
    terms = []
    for i in range(6):
        others = [a for a in range(6) if a != i]
        positives = [p for p in others if classes[p] == classes[i]]
        if positives:
            denominator = torch.logsumexp(torch.stack([embeds[i] @ embeds[a] / 0.1 for a in others]), 0)
            terms.append(-sum(embeds[i] @ embeds[p] / 0.1 - denominator for p in positives) / len(positives))
    contrast = recipe_ideas.supervised_contrastive_loss(embeds, classes, 0.1)
    assert torch.allclose(contrast, torch.stack(terms).mean(), atol=1e-5)
    assert recipe_ideas.supervised_contrastive_loss(embeds[:3], torch.arange(3), 0.1) == 0  # no class twice
    torch.manual_seed(1)
    contrasted = recipe_ideas.variant_factory(supcon=0.1)(config).train()
    output = contrasted(flow_values=maps, labels=labels)
    projected = F.normalize(contrasted.projections["flow"](output.flow_embeds), dim=-1)
    expected = F.cross_entropy(output.logits, labels) + 0.1 * recipe_ideas.supervised_contrastive_loss(
        projected, labels.argmax(-1), 0.1)
    assert torch.allclose(output.loss, expected, atol=1e-5)
    indices = torch.tensor([0, 1, 2, -100])  # class indices as the model takes them; -100 leaves a sample out
    hard = contrasted(flow_values=maps, labels=indices)
    projected = F.normalize(contrasted.projections["flow"](hard.flow_embeds[:3]), dim=-1)
    expected = F.cross_entropy(hard.logits, indices) + 0.1 * recipe_ideas.supervised_contrastive_loss(
        projected, indices[:3], 0.1)
    assert torch.allclose(hard.loss, expected, atol=1e-5)
    assert torch.equal(contrasted.eval()(flow_values=maps).logits, plain(flow_values=maps).logits)

    identity = lambda flow, texture, targets, config, generator, flow_zero: (flow, texture, targets)  # noqa: E731
    classes = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0])
    flow = torch.randn(8, 3, 28, 28) * 0.01 + classes.view(-1, 1, 1, 1) * 10.0
    targets = F.one_hot(classes, 3).float()
    generator = torch.Generator().manual_seed(0)
    mixed, _, mixed_targets = recipe_ideas.mixed_within_classes(identity, probability=1.0)(
        flow, None, targets, None, generator, None)
    assert torch.equal(mixed_targets, targets)
    assert ((mixed - classes.view(-1, 1, 1, 1) * 10.0).abs() < 0.05).all()  # never across classes
    assert not torch.allclose(mixed[classes == 0], flow[classes == 0])  # but within them
    unmixed = recipe_ideas.mixed_within_classes(identity, probability=0.0)
    kept, _, _ = unmixed(flow, None, targets, None, generator, None)
    assert torch.equal(kept, flow)
    assert recipe_ideas.augment_of({"class_mix": True}) is not recipe_ideas.augment_batch
    assert recipe_ideas.augment_of({}) is recipe_ideas.augment_batch


def test_recipe_ideas_vary_the_trainer_through_its_parameters(monkeypatch):
    """A model variant and cutout reach `train_fold_model` as arguments; the trainer's module is untouched."""
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.research import recipe_ideas

    import hf_mmmer.training.fold_training as fold_training

    before = dict(vars(fold_training))
    data = SimpleNamespace(flow=torch.zeros(2, 3, 28, 28), texture=None, subjects=["a/1", "a/2"])
    recipe_ideas.init_worker(data, torch.zeros(3), {"extra_augment": "cutout", "conv_stem_width": 4}, None, seed=0)
    assert vars(fold_training) == before
    worker = recipe_ideas.WORKER
    assert worker["augment"] is not fold_training.augment_batch
    model = worker["model_factory"](tiny_config(modalities=["flow"]))
    stems = [m.stem for m in model.modules() if hasattr(m, "stem")]
    assert stems and all(stem[0].out_channels == 4 for stem in stems)
    logits = model(flow_values=torch.randn(2, 3, 28, 28)).logits
    assert logits.shape == (2, 3)


# The tiny data's inner folds miss a class, which scikit-learn's out-of-fold probabilities warn about.
@pytest.mark.filterwarnings("ignore:Number of classes in training fold")
def test_recipe_ideas_regions_source_standardising_distillation_and_lodo(monkeypatch):
    """Issue 17's ideas: the region scale, per-source standardising, distillation targets, and a LODO fold."""
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.research import recipe_ideas
    from hf_mmmer.data.loso import protocol_folds
    from hf_mmmer.training.encoding import EncodedDataset

    replaced = recipe_ideas.variant_factory(views=[{"view": "regions", "replace": 14}])(
        tiny_config(modalities=["flow"]))
    assert replaced.mmmer.encoders["flow"].patch_sizes == [7, "regions"]
    assert replaced(flow_values=torch.randn(2, 3, 28, 28)).logits.shape == (2, 3)
    model = recipe_ideas.variant_factory(views=[{"view": "regions"}, {"view": "whole", "pool": 4}])(
        tiny_config(modalities=["flow"]))
    flow_encoder = model.mmmer.encoders["flow"]
    assert flow_encoder.patch_sizes == [7, 14, "regions", "whole/4"] and len(flow_encoder.scales) == 4
    output = model(flow_values=torch.randn(2, 3, 28, 28), output_patch_importance=True)
    assert output.logits.shape == (2, 3) and output.patch_importance["flow/pregions"].shape == (2, 2, 2)
    assert output.patch_importance["flow/pwhole/4"].shape == (2, 1, 1)  # the 7x7 pooled map is one token

    generator = torch.Generator().manual_seed(0)
    flow = torch.randn(12, 3, 28, 28, generator=generator)
    flow[6:] = flow[6:] * 3 + 2  # the second source on its own scale
    sources = ["a"] * 6 + ["b"] * 6
    standardised = recipe_ideas.standardise_sources(flow, sources)
    for half in (standardised[:6], standardised[6:]):
        assert torch.allclose(half.mean((0, 2, 3)), flow.mean((0, 2, 3)), atol=1e-5)
        assert torch.allclose(half.std((0, 2, 3)), flow.std((0, 2, 3)), atol=1e-5)

    subjects = [f"{source}/s{i % 3}" for i, source in enumerate(sources)]
    data = EncodedDataset(flow=flow, texture=None, labels=torch.arange(12) % 3, sample_ids=[str(i) for i in range(12)],
                          subjects=subjects, datasets=sources, label_names=["x", "y", "z"])
    folds = protocol_folds(subjects, "lodo")
    recipe_ideas.init_worker(data, torch.zeros(3), {"distil_linear": 0.5}, None, seed=0, folds=folds)
    recipe_ideas.WORKER.update(config=tiny_config(modalities=["flow"]),
                               recipe=recipe_ideas.idea_setup({"recipe": {"batch_size": 4}}, epochs=1)[1])
    train = np.arange(6)
    targets = recipe_ideas.distillation_targets(data, train)
    assert torch.allclose(targets.sum(-1), torch.ones(12))
    assert (targets[train].gather(1, data.labels[train, None]) >= 0.5).all()  # the label keeps half the mass
    assert torch.equal(targets[6:], torch.nn.functional.one_hot(data.labels[6:], 3).float())
    recipe_ideas.WORKER["change"] = {"distil_linear": 0.5, "out_of_fold_teacher": True}
    out_of_fold = recipe_ideas.distillation_targets(data, train)
    assert torch.allclose(out_of_fold.sum(-1), torch.ones(12)) and not torch.allclose(out_of_fold, targets)
    recipe_ideas.WORKER["change"] = {"distil_linear": 0.5}
    fold, test, scores = recipe_ideas.run_fold("b")
    assert fold == "b" and test.tolist() == list(range(6, 12)) and scores.shape == (1, 2, 6, 3)


def test_recipe_ideas_seeds_summary_and_decision_bias(monkeypatch):
    """Several seeds in one run, their paired summary, and the inner CV's decision rule and teacher."""
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.research import recipe_ideas
    from hf_mmmer.data.loso import protocol_folds
    from hf_mmmer.training.encoding import EncodedDataset

    assert recipe_ideas.parse_seeds("3") == [3]
    assert recipe_ideas.parse_seeds("0-2,7") == [0, 1, 2, 7]
    assert recipe_ideas.parse_seeds("1 - 3") == [1, 2, 3]
    for bad in ("", "a", "2-1", "-1", "0-"):
        with pytest.raises(ValueError, match="--seed takes"):
            recipe_ideas.parse_seeds(bad)
    with pytest.raises(ValueError, match="names a seed twice"):
        recipe_ideas.parse_seeds("0-2,1")

    uf1 = {("recipe", "lodo"): {0: {"all": 0.70, "x": 0.8}, 1: {"all": 0.72, "x": 0.6}},
           ("idea", "lodo"): {0: {"all": 0.71, "x": 0.9}, 1: {"all": 0.70, "x": 0.7}}}
    lines = recipe_ideas.seed_summary(uf1, ["recipe", "idea"], ["lodo"], ["all", "x"])
    assert lines[2] == "| recipe | lodo | 2 | 0.7100 +- 0.0141 | 0.7000 +- 0.1414 |  |"
    assert lines[3] == "| idea | lodo | 2 | 0.7050 +- 0.0071 | 0.8000 +- 0.1414 | -0.0050, ahead in 1 of 2 |"

    generator = torch.Generator().manual_seed(0)
    sources = ["a"] * 9 + ["b"] * 6
    subjects = [f"{source}/s{i % 3}" for i, source in enumerate(sources)]
    data = EncodedDataset(flow=torch.randn(15, 3, 28, 28, generator=generator), texture=None,
                          labels=torch.arange(15) % 3, sample_ids=[str(i) for i in range(15)], subjects=subjects,
                          datasets=sources, label_names=["x", "y", "z"])
    recipe_ideas.init_worker(data, torch.zeros(3), {"decision_bias": True}, None, seed=0,
                             folds=protocol_folds(subjects, "lodo"))
    recipe_ideas.WORKER.update(config=tiny_config(modalities=["flow"]),
                               recipe=recipe_ideas.idea_setup({"recipe": {"batch_size": 4}}, epochs=1)[1])
    bias = recipe_ideas.inner_decision_bias(data, np.arange(9), "b")
    assert bias.shape == (3,) and bias[0] == 0 and np.isin(bias[1:], recipe_ideas.BIAS_STEPS).all()
    fold, test, scores = recipe_ideas.run_fold("b")
    assert fold == "b" and test.tolist() == list(range(9, 15)) and scores.shape == (1, 2, 6, 3)
    assert np.allclose(scores.sum(-1), 1, atol=1e-5)  # still probabilities after the bias

    train = np.arange(9)
    for teacher_cnn in (True, False):
        recipe_ideas.WORKER["change"] = {"distil_ensemble": 0.5, "teacher_cnn": teacher_cnn}
        targets = recipe_ideas.model_distillation_targets(data, train, "b")
        assert torch.allclose(targets.sum(-1), torch.ones(15))
        assert (targets[train].gather(1, data.labels[train, None]) >= 0.5).all()  # the label keeps half the mass
        assert (targets[train] > 0).all()  # every class gets some of the teacher's mass
        assert torch.equal(targets[9:], torch.nn.functional.one_hot(data.labels[9:], 3).float())
    recipe_ideas.WORKER["change"] = {"distil_ensemble": 0.5, "distil_linear": 0.5}
    with pytest.raises(ValueError, match="one teacher"):
        recipe_ideas.run_fold("b")


def test_recipe_ideas_inner_models_never_see_the_subjects_they_predict(monkeypatch):
    """Out-of-fold probabilities: every inner model (the recipe's and the CNN) trains on training subjects
    only, and never on a subject whose rows it then predicts."""
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.research import recipe_ideas
    from hf_mmmer.training.encoding import EncodedDataset

    subjects = [f"s{i % 5}" for i in range(20)]
    data = EncodedDataset(flow=torch.randn(20, 3, 28, 28), texture=None, labels=torch.arange(20) % 3,
                          sample_ids=[str(i) for i in range(20)], subjects=subjects, datasets=["a"] * 20,
                          label_names=["x", "y", "z"])
    recipe_ideas.init_worker(data, torch.zeros(3), {}, None, seed=0)
    recipe_ideas.WORKER.update(config=tiny_config(modalities=["flow"]),
                               recipe=recipe_ideas.idea_setup({"recipe": {"batch_size": 4}}, epochs=1)[1])
    trained, predicted = [], []
    real_train, real_cnn = recipe_ideas.train_fold_model, recipe_ideas.train_ststnet
    real_predict = recipe_ideas.predict_probabilities

    def train_recorded(config, data, indices, *args, **kwargs):
        trained.append(set(np.asarray(indices).tolist()))
        return real_train(config, data, indices, *args, **kwargs)

    def cnn_recorded(flow, labels, indices, seed):
        trained.append(set(np.asarray(indices).tolist()))
        return real_cnn(flow, labels, indices, seed)

    def predict_recorded(model, data, indices):
        predicted.append(set(np.asarray(indices).tolist()))
        return real_predict(model, data, indices)

    monkeypatch.setattr(recipe_ideas, "train_fold_model", train_recorded)
    monkeypatch.setattr(recipe_ideas, "train_ststnet", cnn_recorded)
    monkeypatch.setattr(recipe_ideas, "predict_probabilities", predict_recorded)
    train = np.flatnonzero(np.asarray(subjects) != "s4")  # s4 is the outer fold's test subject
    probabilities = recipe_ideas.out_of_fold_probabilities(data, train, "s4", with_cnn=True)
    assert probabilities.shape == (len(train), 3) and np.allclose(probabilities.sum(-1), 1, atol=1e-5)
    assert len(trained) == 2 * recipe_ideas.INNER_FOLDS and len(predicted) == recipe_ideas.INNER_FOLDS
    subject_of = np.asarray(subjects)
    for fold in range(recipe_ideas.INNER_FOLDS):
        rows = predicted[fold]
        for model_rows in trained[2 * fold: 2 * fold + 2]:  # the recipe's model and the CNN of this inner fold
            assert model_rows <= set(train.tolist())
            assert not set(subject_of[list(model_rows)]) & set(subject_of[list(rows)])
    assert set().union(*predicted) == set(train.tolist())
