"""Write the model card (the saved folder's ``README.md``) from measured metrics and the model config.

The metadata block goes through ``huggingface_hub``'s ``ModelCardData`` and ``EvalResult``, so the
``model-index`` is in the form the Hub parses into its evaluation results; the prose is a Jinja2
template rendered by ``ModelCard.from_template``.

Where the template lives: inside the package, ``hf_mmmer/training/templates/model_card_template.md``,
shipped as package data (``[tool.setuptools.package-data]`` in ``pyproject.toml``) and read with
``importlib.resources``. That one location works from a source checkout, an editable install and a
wheel alike, which a file in the repository's top-level ``model_cards/`` would not (a wheel does not
carry it); ``model_cards/README.md`` points here, so there is one template and no copy to keep in sync.
"""

from __future__ import annotations

from importlib import resources

from huggingface_hub import EvalResult, ModelCard, ModelCardData

TEMPLATE = "model_card_template.md"

# The task the Hub knows that is closest to ours; the custom pipeline task
# ("micro-expression-classification") is not one of the Hub's task ids.
TASK_TYPE = "image-classification"
TASK_NAME = "Micro-expression recognition"
# metrics.json key -> (Hub metric id, display name). UF1 is macro F1 and UAR macro recall.
METRICS = {"uf1": ("f1", "UF1"), "uar": ("recall", "UAR"), "accuracy": ("accuracy", "Accuracy")}
# Config fields a reader needs to understand what was trained (those the public interface names), in card order.
CONFIG_SUMMARY_FIELDS = (
    "modalities", "flow_image_size", "flow_channels", "flow_patch_sizes", "texture_image_size",
    "texture_channels", "texture_patch_sizes", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "fusion", "contrastive_weight",
)
TAGS = ["micro-expression-recognition", "facial-expression", "optical-flow", "vision-transformer",
        "multi-modal", "hf-mmmer", "custom_code"]


def render_model_card(
    metrics: dict,
    config: dict,
    *,
    dataset_name: str,
    model_name: str,
    training_args: dict | None = None,
    license: str = "apache-2.0",
) -> str:
    """Return the text of a model card for a model evaluated with ``metrics`` (``metrics.json`` shape).

    ``config`` is the model config as a dict (``config.to_dict()``); ``training_args`` (optional) is
    listed as a table of hyperparameters, entries set to ``None`` left out. ``license`` is the
    card's licence id; the code's is apache-2.0, but weights trained on research-only datasets may
    call for another.
    """
    labels = _labels(config)
    card_data = ModelCardData(
        model_name=model_name,
        library_name="transformers",
        license=license,
        tags=TAGS,
        datasets=[dataset_name],
        metrics=[hub_id for hub_id, _ in METRICS.values()],
        eval_results=_eval_results(metrics, dataset_name),
    )
    per_dataset = metrics.get("per_dataset") or {}
    results = [{"name": "All samples", **_scores(metrics)}]
    results += [{"name": name, **_scores(scores)} for name, scores in per_dataset.items()]
    config_rows = [(name, _format(config[name])) for name in CONFIG_SUMMARY_FIELDS if name in config]
    config_rows.append(("labels", _format(labels)))
    template = resources.files(__package__) / "templates" / TEMPLATE
    card = ModelCard.from_template(
        card_data,
        template_str=template.read_text(encoding="utf-8"),
        model_name=model_name,
        dataset_name=dataset_name,
        sources=list(per_dataset),
        labels=labels,
        modalities=config.get("modalities", ["flow", "texture"]),
        fusion=config.get("fusion", "rollout"),
        protocol=metrics["protocol"],
        epochs=metrics["epochs"],
        seed=metrics["seed"],
        n=metrics["n"],
        folds=(training_args or {}).get("folds", "all"),
        num_folds=metrics.get("num_folds"),
        results=results,
        config_rows=config_rows,
        training_rows=[(name, _format(value)) for name, value in (training_args or {}).items() if value is not None],
    )
    return str(card)


def _eval_results(metrics: dict, dataset_name: str) -> list[EvalResult]:
    """One ``EvalResult`` per metric for all samples, and per source dataset as the dataset ``config``."""
    evaluation_sets = [(None, metrics)] + list((metrics.get("per_dataset") or {}).items())
    return [
        EvalResult(
            task_type=TASK_TYPE,
            task_name=TASK_NAME,
            dataset_type=dataset_name,
            dataset_name=dataset_name,
            dataset_config=source,
            dataset_split=metrics["protocol"],  # the pooled held-out subjects of the protocol
            metric_type=hub_id,
            metric_name=display,
            metric_value=round(float(scores[key]), 4),
        )
        for source, scores in evaluation_sets
        for key, (hub_id, display) in METRICS.items()
    ]


def _scores(scores: dict) -> dict:
    return {"n": int(scores["n"]), **{key: float(scores[key]) for key in METRICS}}


def _labels(config: dict) -> list[str]:
    """Class names in class-index order; ``id2label`` keys are ints in memory, strings after JSON."""
    id2label = config.get("id2label") or {}
    return [id2label[key] for key in sorted(id2label, key=int)]


def _format(value) -> str:
    """A table cell: lists joined by commas, ``|`` escaped so a value cannot break the Markdown table."""
    text = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return text.replace("|", "\\|")
