import pytest

from hf_mmmer import MMMERConfig


def test_defaults_are_valid_and_three_class():
    config = MMMERConfig()
    assert config.num_labels == 3
    assert config.id2label == {0: "negative", 1: "positive", 2: "surprise"}
    assert config.modalities == ["flow"]  # the measured recipe; texture is one switch away
    assert MMMERConfig(modalities=["flow", "texture"]).modalities == ["flow", "texture"]


def test_round_trip_keeps_every_field(tmp_path):
    config = MMMERConfig(flow_patch_sizes=[7], fusion="mean", class_weights=[1.0, 2.0, 3.0])
    config.save_pretrained(tmp_path)
    loaded = MMMERConfig.from_pretrained(tmp_path)
    assert loaded.flow_patch_sizes == [7] and loaded.fusion == "mean" and loaded.class_weights == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(flow_patch_sizes=[5]), "flow_patch_sizes"),
        (dict(texture_patch_sizes=[8, 30]), "texture_patch_sizes"),
        (dict(modalities=[]), "modalities"),
        (dict(modalities=["flow", "audio"]), "modalities"),
        (dict(hidden_size=0), "hidden_size"),
        (dict(flow_image_size=-28), "flow_image_size"),
        (dict(num_attention_heads=5), "num_attention_heads"),
        (dict(fusion="max"), "fusion"),
        (dict(hidden_dropout_prob=1.5), "hidden_dropout_prob"),
        (dict(contrastive_temperature=0), "contrastive_temperature"),
        (dict(class_weights=[1.0, 2.0]), "class_weights"),
    ],
)
def test_invalid_sizes_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        MMMERConfig(**overrides)
