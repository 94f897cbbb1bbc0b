"""Write a trained model as one self-contained Hugging Face directory.

The directory holds what `AutoModel`, `AutoImageProcessor` and `pipeline(...)` need in a process that
never imported `hf_mmmer`: `model.safetensors`, `config.json` (with `auto_map` and
`custom_pipelines`), `preprocessor_config.json`, the code files, and a model card `README.md`. It is
written to a temporary sibling folder and renamed into place, so an interrupted save never leaves a
half-written model where a finished one is expected.
"""

import json
import shutil
from pathlib import Path

from ..data.checks import listing
from ..pipeline_mmmer import MicroExpressionClassificationPipeline
from .model_card import render_model_card
from .reporting import give_default_permissions


SAVED_SUFFIXES = (".json", ".safetensors", ".py", ".md")
"""The kinds of file `save_model_directory` writes (config, weights, code files, model card)."""
STAGING_MARKER = ".hf_mmmer-save-in-progress"
"""Written first into a save's staging folder and removed before it is renamed into place: a staging folder
holding it is an interrupted save's, which the next save may delete."""


def staging_folder(directory: Path) -> Path:
    """Where a save into `directory` is written before it is renamed into place."""
    return directory.with_name(f".{directory.name}.partial")


def files_a_save_does_not_write(staging: Path) -> list:
    """Names in a staging folder that are not the kinds of file a save writes (sorted)."""
    return sorted(p.name for p in staging.iterdir()
                  if p.name != STAGING_MARKER and (p.is_dir() or p.suffix not in SAVED_SUFFIXES))


def is_interrupted_save(staging: Path) -> bool:
    """Whether `staging` is what an interrupted save left: its marker, and only the kinds of file a save writes."""
    return (staging / STAGING_MARKER).is_file() and not files_a_save_does_not_write(staging)


def _saved_model_type(directory: Path):
    """The `model_type` of the saved model in `directory` (None when its config.json does not say)."""
    try:
        return json.loads((directory / "config.json").read_text()).get("model_type")
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        return None


def save_model_directory(model, processor, directory, *, metrics=None, dataset_name="unknown", training_args=None,
                         model_name=None):
    """Save `model` + `processor` (+ a model card when `metrics` are given) as one loadable directory.

    `model_name` titles the card (default: the directory name); the trainer passes the Hub repo id. An
    existing `directory` is replaced only when it is empty or a saved model of this kind (its `config.json`
    has this model's `model_type`) holding nothing this save would not write again.
    """
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()) and not (directory / "config.json").is_file():
        raise FileExistsError(f"{directory} is not empty and holds no saved model (no config.json); not replacing it")
    if (directory / "config.json").is_file() and _saved_model_type(directory) != model.config.model_type:
        raise FileExistsError(f"{directory} holds a saved model that is not an {model.config.model_type} one (its "
                              "config.json says otherwise); not replacing it")
    staging = staging_folder(directory)
    if staging.exists():  # an interrupted save's leftover (its marker says so) holding only what a save writes
        strays = files_a_save_does_not_write(staging)
        if strays:
            raise FileExistsError(f"{staging} holds files a model save does not write ({listing(strays)}); "
                                  "move or delete it")
        if not (staging / STAGING_MARKER).is_file():
            raise FileExistsError(f"{staging} is not the leftover of an interrupted save (no {STAGING_MARKER}); "
                                  "move or delete it")
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    (staging / STAGING_MARKER).touch()
    # Only `Pipeline.save_pretrained` writes `custom_pipelines` into config.json and copies the pipeline's
    # code (transformers has no other public call for it), so the model and processor are saved through one.
    pipeline = MicroExpressionClassificationPipeline(model=model, image_processor=processor, device=model.device)
    pipeline.save_pretrained(staging)
    if metrics is not None:
        card = render_model_card(metrics, model.config.to_dict(), dataset_name=dataset_name,
                                 model_name=model_name or directory.name, training_args=training_args)
        (staging / "README.md").write_text(card)
    give_default_permissions(staging)
    (staging / STAGING_MARKER).unlink()
    if directory.exists():
        # Replace a saved model only when it holds nothing this save would not write again.
        foreign = sorted({p.relative_to(directory).as_posix() for p in directory.rglob("*")}
                         - {p.relative_to(staging).as_posix() for p in staging.rglob("*")})
        if foreign:
            shutil.rmtree(staging)
            raise FileExistsError(f"{directory} holds files a saved model does not ({', '.join(foreign[:5])}); "
                                  "not replacing it")
        shutil.rmtree(directory)
    staging.rename(directory)
    return directory
