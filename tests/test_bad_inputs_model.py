"""Catalogue of bad or unusual inputs to the config, the model's forward and model loading (issue 15): each is fed
and its exact outcome asserted, either the right result or a one-line error that names the field, argument or file."""

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import tiny_config
from test_modeling import inputs
from safetensors.torch import load_file, save_file

from hf_mmmer import MMMERConfig, MMMERForMicroExpressionClassification, MMMERImageProcessor
from hf_mmmer.cli import load_pipeline
from hf_mmmer.training.export import save_model_directory


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MMMERForMicroExpressionClassification(tiny_config()).eval()


# Config


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(mlp_ratio=0.01), r"mlp_ratio=0.01 makes the MLP width .* = 0"),
        (dict(id2label={}), r"id2label must name at least 2 classes, got \{\}"),
        (dict(contrastive_weight=float("nan")), r"contrastive_weight must be a finite number >= 0, got nan"),
        (dict(mlp_ratio="2"), r"mlp_ratio must be a positive finite number, got '2'"),
        (dict(hidden_dropout_prob=None), r"hidden_dropout_prob must be a number in \[0, 1\), got None"),
        (dict(flow_patch_sizes=7), r"flow_patch_sizes must be a list, got 7"),
        (dict(modalities="flow"), r"modalities must be a list, got 'flow'"),
        (dict(share_scale_encoders="no"), r"share_scale_encoders must be true or false, got 'no'"),
        (dict(class_weights=[1.0, float("inf"), 1.0]), r"class_weights must be finite numbers >= 0"),
        (dict(id2label={0: "a", 1: "b"}, class_weights=[1.0, 1.0, 1.0]),
         r"class_weights has 3 entries but id2label names 2 classes"),
        (dict(hiden_size=8), r"MMMERConfig has no field\(s\) \['hiden_size'\].*known fields: .*'hidden_size'"),
        (dict(id2label={0: "a", 2: "b", 5: "c"}), r"id2label must map the class indices 0..2, got the keys \[0, 2, 5\]"),
        (dict(id2label={0: 1, 1: None}), r"id2label labels must be non-empty strings, got \[1, None\]"),
        (dict(id2label={0: "a", 1: " "}), r"id2label labels must be non-empty strings, got \[' '\]"),
        (dict(id2label={0: "a", 1: "a"}), r"id2label names two classes alike: \['a'\]"),
        (dict(id2label={0: "a", 1: "b"}, label2id={"a": 1, "b": 0}), r"label2id .* is not the inverse of id2label"),
    ],
)
def test_config_refuses_a_bad_field_by_name(fields, message):
    with pytest.raises(ValueError, match=message):
        MMMERConfig(**fields)


def test_config_json_with_a_misspelt_key_is_refused_on_load(tmp_path):
    MMMERConfig().save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    saved = json.loads(path.read_text())
    assert {"transformers_version", "model_type", "id2label"} <= set(saved)
    assert MMMERConfig.from_pretrained(tmp_path).architecture() == MMMERConfig().architecture()
    path.write_text(json.dumps({**saved, "num_atention_heads": 8}))
    with pytest.raises(ValueError, match=r"no field\(s\) \['num_atention_heads'\].*'num_attention_heads'"):
        MMMERConfig.from_pretrained(tmp_path)


# Forward


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_inputs_are_refused(model, bad):
    batch = inputs(model.config)
    batch["texture_values"][1, 0, 2, 3] = bad
    with pytest.raises(ValueError, match=r"^texture_values contains NaN or inf values"):
        model(**batch)


def test_empty_batch_is_refused(model):
    batch = inputs(model.config, batch=0)
    with pytest.raises(ValueError, match=r"^flow_values is an empty batch \(shape \(0, 3, 28, 28\)\)"):
        model(**batch, labels=torch.zeros(0, dtype=torch.long))


def test_ignored_labels_leave_the_loss_defined(model):
    batch = inputs(model.config)
    all_ignored = model(**batch, labels=torch.full((3,), -100))
    assert all_ignored.classification_loss.item() == 0.0 and torch.isfinite(all_ignored.loss)
    partly = model(**batch, labels=torch.tensor([2, -100, 0]))
    logits = model(**batch).logits
    expected = torch.nn.functional.cross_entropy(logits[[0, 2]], torch.tensor([2, 0]))
    torch.testing.assert_close(partly.classification_loss, expected)


def test_a_training_step_with_every_label_ignored_runs():
    model = MMMERForMicroExpressionClassification(tiny_config()).train()
    output = model(**inputs(model.config), labels=torch.full((3,), -100))
    output.loss.backward()
    assert torch.isfinite(output.loss)


@pytest.mark.parametrize(
    "labels, message",
    [
        (torch.tensor([[0.5, 0.5, 0.5]] * 3), r"soft labels must be class probabilities, each row non-negative and summing to 1"),
        (torch.tensor([[1.5, -0.5, 0.0]] * 3), r"soft labels must be class probabilities"),
        (torch.full((3, 5), 0.2), r"labels has shape \(3, 5\); soft labels need \(batch, num_labels\) = \(3, 3\)"),
        (torch.tensor([0, 1, 7]), r"labels hold \[7\]; class indices run 0\.\.2"),
        (torch.tensor([0, 1]), r"labels has shape \(2,\) and dtype torch.int64; expected \(3,\) class indices"),
        (torch.tensor([True, False, True]), r"labels has shape \(3,\) and dtype torch.bool"),
    ],
    ids=["rows_not_summing_to_1", "negative", "wrong_width", "out_of_range", "wrong_batch", "bool"],
)
def test_bad_labels_are_named(model, labels, message):
    with pytest.raises(ValueError, match=message):
        model(**inputs(model.config), labels=labels)


@pytest.mark.parametrize("weights", [[1.0, 2.0], [1.0, float("nan"), 1.0], [1.0, -1.0, 1.0]])
def test_class_weights_set_on_a_model_are_checked(weights):
    model = MMMERForMicroExpressionClassification(tiny_config())
    with pytest.raises(ValueError, match=r"class weights must be 3 finite numbers >= 0 \(one per class of id2label\)"):
        model.set_class_weights(weights)


def test_class_weights_set_on_a_model_weight_its_loss(model):
    batch, labels = inputs(model.config), torch.tensor([0, 2, 1])
    unweighted = model(**batch, labels=labels).loss
    model.set_class_weights([1.0, 1.0, 1.0])
    torch.testing.assert_close(model(**batch, labels=labels).loss, unweighted)
    model.set_class_weights([3.0, 0.0, 0.0])  # only the class-0 sample counts
    expected = torch.nn.functional.cross_entropy(model(**batch).logits[:1], labels[:1])
    try:
        torch.testing.assert_close(model(**batch, labels=labels).classification_loss, expected)
    finally:
        model.set_class_weights(None)


def test_soft_labels_that_are_distributions_equal_hard_ones(model):
    batch, hard = inputs(model.config), torch.tensor([0, 2, 1])
    soft = torch.nn.functional.one_hot(hard, 3).float()
    torch.testing.assert_close(model(**batch, labels=soft).loss, model(**batch, labels=hard).loss)


def test_float64_and_numpy_inputs_are_cast_and_integer_ones_refused(model):
    batch = inputs(model.config)
    with torch.no_grad():
        expected = model(**batch).logits
        torch.testing.assert_close(model(**{k: v.double() for k, v in batch.items()}).logits, expected)
        torch.testing.assert_close(model(**{k: v.numpy() for k, v in batch.items()}, labels=[0, 1, 2]).logits, expected)
    with pytest.raises(ValueError, match=r"^flow_values has dtype torch.uint8; expected float values"):
        model(**{**batch, "flow_values": torch.zeros(3, 3, 28, 28, dtype=torch.uint8)})
    with pytest.raises(TypeError, match=r"^texture_values is a list; expected a float tensor"):
        model(**{**batch, "texture_values": batch["texture_values"].tolist()})


# Loading for inference


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    return save_model_directory(model, MMMERImageProcessor.from_config(model.config), tmp_path_factory.mktemp("m") / "m")


def damaged_copy(saved, tmp_path, edit_weights=None, edit_config=None, file="config.json"):
    directory = tmp_path / "copy"
    shutil.copytree(saved, directory)
    if edit_weights is not None:
        weights = load_file(directory / "model.safetensors")
        edit_weights(weights)
        save_file(weights, directory / "model.safetensors", metadata={"format": "pt"})
    if edit_config is not None:
        path = directory / file
        path.write_text(json.dumps(edit_config(json.loads(path.read_text()))))
    return directory


def test_saving_never_touches_a_file_that_has_its_staging_name(model, tmp_path, monkeypatch):
    monkeypatch.setattr("hf_mmmer.modeling_mmmer.secrets.token_hex", lambda size: "abcd1234")
    taken = tmp_path / ".model.safetensors.abcd1234.partial"
    taken.parent.mkdir(parents=True, exist_ok=True)
    taken.write_text("mine")
    with pytest.raises(FileExistsError):
        model.save_pretrained(tmp_path)
    assert taken.read_text() == "mine"


def test_the_saved_model_loads_complete(model, saved):
    loaded = load_pipeline(saved).model
    assert not loaded.loading_info["missing_keys"]
    batch = inputs(model.config)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits)


def test_missing_tensors_are_refused(saved, tmp_path):
    directory = damaged_copy(saved, tmp_path, edit_weights=lambda w: w.pop("classifier.2.weight"))
    with pytest.raises(ValueError, match=r"copy: model.safetensors lacks 1 tensor\(s\) .*\(classifier.2.weight\)"):
        load_pipeline(directory)


def test_non_finite_weights_are_refused(saved, tmp_path):
    directory = damaged_copy(saved, tmp_path, edit_weights=lambda w: w["classifier.2.bias"].fill_(float("nan")))
    with pytest.raises(ValueError, match=r"copy: 1 weight tensor\(s\) hold NaN or inf values \(classifier.2.bias\)"):
        load_pipeline(directory)


@pytest.mark.parametrize("damage", [lambda b: b"garbage" * 20, lambda b: b[: len(b) // 2]], ids=["garbage", "truncated"])
def test_unreadable_weights_file_is_named(saved, tmp_path, damage):
    directory = damaged_copy(saved, tmp_path)
    path = directory / "model.safetensors"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=r"copy: model.safetensors cannot be read \(.*\); the file is damaged"):
        load_pipeline(directory)


def test_an_edited_architecture_field_is_refused(saved, tmp_path):
    directory = damaged_copy(saved, tmp_path, edit_config=lambda c: {**c, "num_attention_heads": 4})
    with pytest.raises(ValueError, match=r"does not describe its weights \(num_attention_heads: 2 when saved, 4 now\)"):
        load_pipeline(directory)


def test_a_class_count_edited_in_config_json_is_named_not_a_size_mismatch_traceback(saved, tmp_path, capsys):
    two_classes = {"id2label": {"0": "a", "1": "b"}, "label2id": {"a": 0, "b": 1}}
    directory = damaged_copy(saved, tmp_path, edit_config=lambda c: {**c, **two_classes})
    with pytest.raises(ValueError, match=r"does not describe its weights \(num_labels: 3 when saved, 2 now\)"):
        load_pipeline(directory)
    from hf_mmmer.cli import main

    capsys.readouterr()
    assert main(["predict", "--model", str(directory), "--flow", str(tmp_path / "map.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "num_labels: 3 when saved, 2 now" in err  # no load report before it
    # The same change passed to from_pretrained, as keyword arguments or as a config, is named alike.
    two = {"id2label": {0: "a", 1: "b"}, "label2id": {"a": 0, "b": 1}}
    with pytest.raises(ValueError, match=r"keyword arguments given\) does not describe its weights \(num_labels: 3"):
        MMMERForMicroExpressionClassification.from_pretrained(saved, **two)
    for config in (directory, MMMERConfig.from_pretrained(directory)):
        with pytest.raises(ValueError, match=r"does not describe its weights \(num_labels: 3 when saved, 2 now\)"):
            MMMERForMicroExpressionClassification.from_pretrained(saved, config=config)


def test_keyword_arguments_to_from_pretrained_are_checked_and_fine_tuning_is_by_consent(saved):
    """Keyword arguments reach the config after its own checks: a bad label map would load, save, and then
    fail on the next load. A new head of another class count is the fine-tuning pattern, with consent."""
    with pytest.raises(ValueError, match=r"id2label names two classes alike: \['a'\]"):
        MMMERForMicroExpressionClassification.from_pretrained(saved, id2label={0: "a", 1: "a", 2: "b"})
    with pytest.raises(ValueError, match=r"num_labels: 3 when saved, 4 now"):
        MMMERForMicroExpressionClassification.from_pretrained(saved, num_labels=4)
    tuned = MMMERForMicroExpressionClassification.from_pretrained(saved, num_labels=4, ignore_mismatched_sizes=True)
    assert tuned.config.num_labels == 4 and tuned.classifier[-1].out_features == 4


def test_a_processor_that_does_not_fit_the_model_names_preprocessor_config(saved, tmp_path):
    directory = damaged_copy(saved, tmp_path, edit_config=lambda c: {**c, "texture_size": 56},
                             file="preprocessor_config.json")
    with pytest.raises(ValueError, match=r"preprocessor_config.json\) makes texture inputs of 56x56 .*expects 28x28"):
        load_pipeline(directory)


def test_a_config_json_that_is_not_an_object_is_named(saved, tmp_path):
    directory = damaged_copy(saved, tmp_path, edit_config=lambda c: [1, 2])
    with pytest.raises(ValueError, match=r"config.json must hold a JSON object of config fields, got a list"):
        load_pipeline(directory)


def test_a_flow_map_alone_for_a_model_that_reads_the_apex_too_asks_for_the_apex(tmp_path):
    config = tiny_config()  # flow and texture
    model = MMMERForMicroExpressionClassification(config).eval()
    directory = save_model_directory(model, MMMERImageProcessor.from_config(config), tmp_path / "m")
    flow = np.random.default_rng(0).integers(0, 256, (28, 28, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"reads the apex face as well as the flow map .*give the apex with the flow"):
        load_pipeline(directory)({"flow": flow})


def test_a_missing_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^no model folder at .*nowhere/model$"):
        load_pipeline(tmp_path / "nowhere" / "model")


def test_transformers_pipeline_refuses_missing_tensors_in_a_fresh_process(saved, tmp_path, fresh_python):
    """The loader that users reach through `pipeline(...)` runs the saved code, which must refuse as loudly."""
    directory = damaged_copy(saved, tmp_path, edit_weights=lambda w: w.pop("classifier.2.weight"))
    out = fresh_python(
        f"""
        from transformers import pipeline
        try:
            pipeline("micro-expression-classification", model={str(directory)!r}, trust_remote_code=True)
        except ValueError as error:
            print(error)
        """
    )
    assert "model.safetensors lacks 1 tensor(s) the model needs (classifier.2.weight)" in out


def test_auto_class_and_pipeline_name_what_is_wrong_with_a_saved_folder(saved, tmp_path, fresh_python):
    """Through the saved code, as users load it: an architecture field edited in config.json (the Auto class
    and the pipeline pass a config object and loading options, which must not be taken for config fields), a
    bad value in preprocessor_config.json (the pipeline's loader swallows it and would call the file
    missing), and a folder whose only weights are a pickle (never unpickled unless asked)."""
    edited = damaged_copy(saved, tmp_path / "edited", edit_config=lambda c: {**c, "num_attention_heads": 4})
    processor = damaged_copy(saved, tmp_path / "processor", edit_config=lambda c: {**c, "flow_method": "bogus"},
                             file="preprocessor_config.json")
    pickled = damaged_copy(saved, tmp_path / "pickled")
    torch.save(load_file(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    out = fresh_python(
        f"""
        from transformers import AutoModelForImageClassification, pipeline
        for name, load in [
            ("auto", lambda: AutoModelForImageClassification.from_pretrained({str(edited)!r}, trust_remote_code=True)),
            ("pipeline", lambda: pipeline("micro-expression-classification", model={str(edited)!r},
                                          trust_remote_code=True)),
            ("processor", lambda: pipeline("micro-expression-classification", model={str(processor)!r},
                                           trust_remote_code=True)),
            ("pickle", lambda: AutoModelForImageClassification.from_pretrained({str(pickled)!r},
                                                                                trust_remote_code=True)),
        ]:
            try:
                load()
                print(name, "loaded")
            except (ValueError, OSError) as error:
                print(name, str(error).splitlines()[-1] if name == "pipeline" else error)
        model = AutoModelForImageClassification.from_pretrained({str(pickled)!r}, trust_remote_code=True,
                                                                use_safetensors=False)
        print("consented", type(model).__name__)
        """
    )
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert "does not describe its weights (num_attention_heads: 2 when saved, 4 now)" in lines["auto"]
    assert "num_attention_heads: 2 when saved, 4 now" in out.split("pipeline", 1)[1]  # inside transformers' wrapper
    assert lines["processor"].endswith("preprocessor_config.json: Unknown flow_method 'bogus'; available: "
                                       "['dis', 'farneback', 'tvl1'].")
    assert "holds pytorch_model.bin, a pickle, and no model.safetensors" in lines["pickle"]
    assert lines["consented"] == "MMMERForMicroExpressionClassification"
