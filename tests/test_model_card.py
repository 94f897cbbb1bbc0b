"""Model card: rendered from a metrics.json-shaped dict, parsed back with huggingface_hub's ModelCard."""

import json
from importlib import resources
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from hf_mmmer import MMMERConfig
from hf_mmmer.training.model_card import TEMPLATE, render_model_card

METRICS = {
    "uf1": 0.712345, "uar": 0.70111, "accuracy": 0.75, "n": 442,
    "per_dataset": {
        "casme2": {"uf1": 0.81234, "uar": 0.79, "accuracy": 0.82, "n": 145},
        "samm": {"uf1": 0.6, "uar": 0.61, "accuracy": 0.7, "n": 133},
        "smic": {"uf1": 0.65, "uar": 0.66789, "accuracy": 0.68, "n": 164},
    },
    "per_fold": {"casme2/sub01": {"uf1": 1.0, "uar": 1.0, "accuracy": 1.0, "n": 9}},
    "protocol": "loso", "seed": 7, "epochs": 30,
}


def _render(metrics=METRICS, config=None, **kwargs) -> ModelCard:
    config = MMMERConfig().to_dict() if config is None else config
    kwargs = {"dataset_name": "megc2019", "model_name": "mmmer-megc2019", **kwargs}
    return ModelCard(render_model_card(metrics, config, **kwargs))


def _table(text: str, header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header row starts with ``header``, as cell lists."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def test_model_index_holds_every_metric_overall_and_per_dataset():
    card = _render()
    found = {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results}
    expected = {}
    for source, scores in [(None, METRICS), *METRICS["per_dataset"].items()]:
        expected.update({(source, "f1"): round(scores["uf1"], 4), (source, "recall"): round(scores["uar"], 4),
                         (source, "accuracy"): round(scores["accuracy"], 4)})
    assert found == expected
    result = card.data.eval_results[0]
    assert (result.task_type, result.dataset_type, result.dataset_name, result.dataset_split) == (
        "image-classification", "megc2019", "megc2019", "loso")
    assert {r.metric_name for r in card.data.eval_results} == {"UF1", "UAR", "Accuracy"}
    assert card.data.model_name == "mmmer-megc2019"


def test_metadata():
    data = _render().data
    assert data.library_name == "transformers"
    assert data.license == "apache-2.0"
    assert data.datasets == ["megc2019"]
    assert "micro-expression-recognition" in data.tags
    assert _render(license="other").data.license == "other"


def test_results_table_lists_all_samples_then_each_source_dataset():
    rows = _table(_render().text, "Evaluation set")
    assert rows == [
        ["All samples", "442", "0.7123", "0.7011", "0.7500"],
        ["casme2", "145", "0.8123", "0.7900", "0.8200"],
        ["samm", "133", "0.6000", "0.6100", "0.7000"],
        ["smic", "164", "0.6500", "0.6679", "0.6800"],
    ]


def test_sections_usage_and_protocol():
    text = _render().text
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[:6] == ["## Model description", "## Intended use and limitations", "## How to use",
                            "## Training data and evaluation protocol", "## Results", "## Configuration"]
    assert 'pipeline("micro-expression-classification", model=model_id, trust_remote_code=True)' in text
    assert "AutoImageProcessor.from_pretrained(model_id, trust_remote_code=True)" in text
    assert "leave-one-subject-out" in text and "after the final epoch (30 epochs)" in text
    assert "**Seed**: 7." in text


def test_config_summary_and_training_arguments():
    # As read back from config.json: string keys, in any order.
    config = json.loads(json.dumps(MMMERConfig(texture_patch_sizes=[14, 56]).to_dict()))
    config["id2label"] = {"2": "surprise", "0": "negative", "1": "positive"}
    card = _render(config=config, training_args={"learning_rate": 0.001, "folds": None, "note": "a|b"})
    settings = dict(_table(card.text, "Setting"))
    assert settings["`texture_patch_sizes`"] == "14, 56"
    assert settings["`fusion`"] == "rollout"
    assert settings["`labels`"] == "negative, positive, surprise"
    assert _table(card.text, "Argument") == [["`learning_rate`", "0.001"], ["`note`", "a\\|b"]]


def test_a_run_of_some_folds_says_so():
    """--folds 2 of a 40-fold LOSO: the card must not present two subjects' results as the protocol's."""
    partial = _render({**METRICS, "num_folds": 2}, training_args={"folds": "2"}).text
    assert "**Partial run**: only 2 fold(s) ran (`--folds 2`)" in partial
    assert "source datasets evaluated: casme2, samm, smic" in partial
    for training_args in ({"folds": "all"}, None):
        assert "Partial run" not in _render({**METRICS, "num_folds": 40}, training_args=training_args).text


def test_single_dataset_holdout_run():
    metrics = {**METRICS, "per_dataset": {}, "protocol": "holdout"}
    card = _render(metrics, dataset_name="casme2", training_args=None)
    assert len(card.data.eval_results) == 3
    assert [row[0] for row in _table(card.text, "Evaluation set")] == ["All samples"]
    assert "leave-one-subject-out" not in card.text and "`holdout`" in card.text
    assert "### Training arguments" not in card.text


def test_template_ships_as_package_data():
    template = resources.files("hf_mmmer.training") / "templates" / TEMPLATE
    assert template.is_file()
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package_dir = root / "src" / "hf_mmmer" / "training"
    shipped = {path for pattern in patterns["hf_mmmer.training"] for path in package_dir.glob(pattern)}
    assert package_dir / "templates" / TEMPLATE in shipped
