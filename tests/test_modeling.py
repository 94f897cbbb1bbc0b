import json
import math

import pytest
import torch
from conftest import tiny_config

from hf_mmmer import MMMERForMicroExpressionClassification, MMMERModel
from hf_mmmer.modeling_mmmer import (
    MMMERDropout,
    MMMERDropPath,
    MMMERPatchEmbeddings,
    MMMERSelfAttention,
    attention_rollout,
    cross_modal_contrastive_loss,
    fuse_patch_importance,
    randomly_kept,
)


def inputs(config, batch=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    size = lambda m: (batch, config.channels(m), config.image_size(m), config.image_size(m))  # noqa: E731
    return {f"{m}_values": torch.randn(*size(m), generator=generator) for m in config.modalities}


@pytest.mark.parametrize("drop_prob", [0.1, 0.5, 0.9])
def test_dropout_keeps_each_element_with_probability_one_minus_p_and_rescales_it(drop_prob):
    torch.manual_seed(0)
    kept = randomly_kept(torch.ones(400_000), drop_prob)
    torch.testing.assert_close(kept.unique(), torch.tensor([0.0, 1 / (1 - drop_prob)]))
    assert (kept == 0).float().mean().item() == pytest.approx(drop_prob, abs=0.005)
    assert kept.mean().item() == pytest.approx(1.0, abs=0.02)  # unbiased, as F.dropout


def test_drop_path_drops_whole_samples_and_both_are_identities_in_eval():
    torch.manual_seed(0)
    x = torch.randn(2000, 5, 8)
    dropped = MMMERDropPath(0.3).train()(x)
    zero_samples = (dropped == 0).flatten(1).all(1)
    assert zero_samples.float().mean().item() == pytest.approx(0.3, abs=0.04)
    torch.testing.assert_close(dropped[~zero_samples], x[~zero_samples] / 0.7)
    assert torch.equal(MMMERDropPath(0.3).eval()(x), x) and torch.equal(MMMERDropout(0.3).eval()(x), x)


CONFIGS = {
    "both": {},
    "flow_only": dict(modalities=["flow"]),
    "texture_only": dict(modalities=["texture"], texture_image_size=56, texture_patch_sizes=[8, 14, 28]),
    "rgb_texture_two_layers": dict(texture_channels=3, num_hidden_layers=2, fusion="last"),
    "shared_encoders_mean": dict(share_scale_encoders=True, fusion="mean"),
    "plain_cls": dict(fusion="cls"),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_output_shapes(name):
    config = tiny_config(**CONFIGS[name])
    model = MMMERForMicroExpressionClassification(config).eval()
    out = model(**inputs(config), labels=torch.tensor([0, 1, 2]), output_attentions=True, output_hidden_states=True,
                output_patch_importance=True)
    assert out.logits.shape == (3, 3)
    assert out.loss.shape == () and out.classification_loss.shape == ()
    both = len(config.modalities) == 2
    assert (out.contrastive_loss is not None) == both
    for modality in ("flow", "texture"):
        embeds = getattr(out, f"{modality}_embeds")
        assert (embeds is not None) == (modality in config.modalities)
        if embeds is not None:
            assert embeds.shape == (3, config.hidden_size)
    expected_keys = {f"{m}/p{p}" for m in config.modalities for p in config.patch_sizes(m)}
    assert set(out.patch_importance) == expected_keys == set(out.attentions) == set(out.hidden_states)
    for key, importance in out.patch_importance.items():
        modality, patch = key.split("/p")
        grid = config.image_size(modality) // int(patch)
        assert importance.shape == (3, grid, grid)
        tokens = 1 + grid * grid
        assert len(out.attentions[key]) == config.num_hidden_layers
        assert out.attentions[key][0].shape == (3, config.num_attention_heads, tokens, tokens)
        assert len(out.hidden_states[key]) == config.num_hidden_layers + 1
        assert out.hidden_states[key][-1].shape == (3, tokens, config.hidden_size)

    base = MMMERModel(config).eval()(**inputs(config))
    assert base.pooled_output.shape == (3, config.hidden_size * len(config.modalities))


@pytest.mark.parametrize("fusion", ["rollout", "last", "mean"])
def test_patch_importances_are_a_distribution(fusion):
    config = tiny_config(fusion=fusion, num_hidden_layers=2)
    out = MMMERModel(config).eval()(**inputs(config, batch=4))
    assert out.patch_importance, "token-weighting fusion must return importances by default"
    for importance in out.patch_importance.values():
        assert (importance >= 0).all()
        torch.testing.assert_close(importance.sum(dim=(1, 2)), torch.ones(4))


def test_plain_cls_fusion_skips_importances_unless_asked():
    config = tiny_config(fusion="cls")
    model = MMMERModel(config).eval()
    assert model(**inputs(config)).patch_importance == {}
    assert len(model(**inputs(config), output_patch_importance=True).patch_importance) == 3


def test_rollout_matches_hand_computation():
    # Layer 1 (heads average to A1) and layer 2 (A2) over 3 tokens: [CLS], patch 1, patch 2.
    a1 = torch.tensor([[0.5, 0.25, 0.25], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    a2 = torch.tensor([[0.2, 0.6, 0.2], [0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    # Two heads whose mean is A1: the rollout must average heads first.
    layer1 = torch.stack([a1 + 0.1 * torch.eye(3) - 0.1 * a1, a1 - 0.1 * torch.eye(3) + 0.1 * a1])[None]
    layer2 = a2[None, None]
    # By hand: (A+I) row-normalised is [[.75,.125,.125],[0,1,0],[0,0,1]] and [[.6,.3,.1],[.25,.75,0],[0,.25,.75]];
    # row 0 of the product (layer 2 after layer 1) is [.45, .375, .175]; patches renormalised: [15/22, 7/22].
    rollout = attention_rollout([layer1, layer2])
    torch.testing.assert_close(rollout[0, 0], torch.tensor([0.45, 0.375, 0.175]))
    torch.testing.assert_close(fuse_patch_importance([layer1, layer2], "rollout")[0], torch.tensor([15 / 22, 7 / 22]))
    torch.testing.assert_close(fuse_patch_importance([layer1, layer2], "last")[0], torch.tensor([0.75, 0.25]))
    torch.testing.assert_close(fuse_patch_importance([layer1, layer2], "mean")[0], torch.tensor([0.85 / 1.3, 0.45 / 1.3]))


def test_contrastive_loss_matches_hand_computation_and_is_symmetric():
    a = torch.eye(3)
    b = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    scale = torch.tensor(0.0)  # exp(0) = 1: logits are plain cosines
    e = math.e
    # a->b rows are [1,0,1], [0,1,0], [0,0,0]; b->a rows are [1,0,0], [0,1,0], [1,0,0].
    a_to_b = (-math.log(e / (2 * e + 1)) - math.log(e / (e + 2)) - math.log(1 / 3)) / 3
    b_to_a = (-math.log(e / (e + 2)) - math.log(e / (e + 2)) - math.log(1 / (e + 2))) / 3
    expected = 0.5 * (a_to_b + b_to_a)
    assert cross_modal_contrastive_loss(a, b, scale).item() == pytest.approx(expected, rel=1e-6)
    assert cross_modal_contrastive_loss(b, a, scale).item() == pytest.approx(expected, rel=1e-6)
    # Supervised variant: distinct labels reduce to the plain loss; shared labels add positives.
    assert cross_modal_contrastive_loss(a, b, scale, torch.tensor([0, 1, 2])).item() == pytest.approx(expected, rel=1e-6)
    # Labels [0, 1, 0]: rows 0 and 2 have positives {0, 2}. a->b row 0: -(log p0 + log p2)/2 with p = e, 1, e over 2e+1.
    row0 = -(math.log(e / (2 * e + 1)) + math.log(e / (2 * e + 1))) / 2
    row2 = -(math.log(1 / 3) + math.log(1 / 3)) / 2
    a_to_b_sup = (row0 - math.log(e / (e + 2)) + row2) / 3
    # b->a rows [1,0,0], [0,1,0], [1,0,0]: row 0 positives {0,2}: (e, 1); row 2 positives {0,2}: (e, 1).
    pair = -(math.log(e / (e + 2)) + math.log(1 / (e + 2))) / 2
    b_to_a_sup = (pair - math.log(e / (e + 2)) + pair) / 3
    got = cross_modal_contrastive_loss(a, b, scale, torch.tensor([0, 1, 0])).item()
    assert got == pytest.approx(0.5 * (a_to_b_sup + b_to_a_sup), rel=1e-6)
    # Unknown labels (-100) are not one shared class: two of them pair only with themselves.
    unknown = cross_modal_contrastive_loss(a, b, scale, torch.tensor([-100, 1, -100])).item()
    assert unknown == pytest.approx(expected, rel=1e-6)


def test_fused_attention_equals_explicit_attention():
    torch.manual_seed(0)
    attention = MMMERSelfAttention(tiny_config()).eval()
    x = torch.randn(2, 17, 16)
    fused, no_probs = attention(x, need_weights=False)
    explicit, probs = attention(x, need_weights=True)
    assert no_probs is None and probs.shape == (2, 2, 17, 17)
    torch.testing.assert_close(fused, explicit)


@pytest.mark.parametrize("modality, patch_size", [("flow", 7), ("flow", 28), ("texture", 14)])
def test_patch_embedding_equals_its_strided_convolution(modality, patch_size):
    torch.manual_seed(0)
    config = tiny_config(texture_channels=3)
    embed = MMMERPatchEmbeddings(config, modality, patch_size).eval()
    torch.nn.init.normal_(embed.position_embeddings)
    size = config.image_size(modality)
    pixels = torch.randn(2, config.channels(modality), size, size)
    by_convolution = embed.projection(pixels).flatten(2).transpose(1, 2)
    expected = torch.cat([embed.cls_token.expand(2, -1, -1), by_convolution], 1) + embed.position_embeddings
    torch.testing.assert_close(embed(pixels), expected)


def test_tiny_model_overfits_random_samples():
    torch.manual_seed(0)
    config = tiny_config(hidden_dropout_prob=0.0, drop_path_rate=0.0, classifier_dropout=0.0)
    model = MMMERForMicroExpressionClassification(config)
    batch = inputs(config, batch=16, seed=1)
    labels = torch.arange(16) % 3
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(300):
        loss = model(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(**batch).logits.argmax(-1) == labels).float().mean().item()
    assert accuracy == 1.0


def test_supervised_contrastive_and_class_weights_train():
    config = tiny_config(supervised_contrastive=True, class_weights=[1.0, 2.0, 3.0], label_smoothing=0.1)
    model = MMMERForMicroExpressionClassification(config).train()
    out = model(**inputs(config, batch=4), labels=torch.tensor([0, 0, 1, 2]))
    assert torch.isfinite(out.loss) and out.contrastive_loss > 0
    torch.testing.assert_close(out.loss, out.classification_loss + config.contrastive_weight * out.contrastive_loss)
    out.loss.backward()
    assert model.logit_scale.grad is not None


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda x: {**x, "flow_values": x["flow_values"][:, :2]}, r"flow_values has shape \(3, 2, 28, 28\); expected \(batch, 3, 28, 28\)"),
        (lambda x: {**x, "texture_values": torch.zeros(3, 1, 32, 32)}, r"texture_values has shape .*expected \(batch, 1, 28, 28\)"),
        (lambda x: {**x, "texture_values": x["texture_values"][:2]}, r"batch sizes differ.*flow_values.*texture_values"),
        (lambda x: {"flow_values": x["flow_values"]}, r"texture_values is missing.*expected \(batch, 1, 28, 28\)"),
        (lambda x: {**x, "flow_values": torch.zeros(3, 28, 28)}, r"flow_values has shape \(3, 28, 28\)"),
    ],
)
def test_bad_inputs_name_the_tensor_and_expected_shape(change, message):
    config = tiny_config()
    model = MMMERForMicroExpressionClassification(config)
    with pytest.raises(ValueError, match=message):
        model(**change(inputs(config)))


def test_save_and_load_in_fresh_process(tmp_path, fresh_python):
    config = tiny_config()
    model = MMMERForMicroExpressionClassification(config).eval()
    batch = inputs(config)
    with torch.no_grad():
        expected = model(**batch).logits
    model.save_pretrained(tmp_path / "saved")
    torch.save(batch, tmp_path / "batch.pt")
    files = {p.name for p in (tmp_path / "saved").iterdir()}
    assert {"model.safetensors", "config.json", "modeling_mmmer.py", "configuration_mmmer.py"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pth")) for name in files)
    out = fresh_python(
        f"""
        import sys, torch
        from transformers import AutoConfig, AutoModel, AutoModelForImageClassification
        path = {str(tmp_path / "saved")!r}
        batch = torch.load({str(tmp_path / "batch.pt")!r})
        config = AutoConfig.from_pretrained(path, trust_remote_code=True)
        classifier = AutoModelForImageClassification.from_pretrained(path, trust_remote_code=True).eval()
        base = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
        with torch.no_grad():
            torch.save(classifier(**batch).logits, {str(tmp_path / "logits.pt")!r})
            base(**batch)
        assert "hf_mmmer" not in sys.modules
        print(type(config).__name__, type(classifier).__name__, type(base).__name__)
        """
    )
    assert out.split() == ["MMMERConfig", "MMMERForMicroExpressionClassification", "MMMERModel"]
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt"), expected)

    auto_map = json.loads((tmp_path / "saved" / "config.json").read_text())["auto_map"]
    assert {"AutoConfig", "AutoModel", "AutoModelForImageClassification"} <= set(auto_map)
