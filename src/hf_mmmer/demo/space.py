"""Write the demo as a folder that runs as a Hugging Face Space (`hf-mmmer demo --export_space OUT --model DIR`).

The folder holds `app.py` (the demo of `hf_mmmer.demo.app` around `model/`), `model/` (a copy of the saved
model directory), `hf_mmmer/` (this package's source, since the Space cannot `pip install` it from a
registry), `requirements.txt` (the package's core dependencies; the Space brings Gradio itself, at the
`sdk_version` of the front-matter) and `README.md` with the Space's front-matter. `python app.py` in that
folder starts the same page as `hf-mmmer demo`.
"""

import os
import shutil
from importlib import metadata
from pathlib import Path

from ..cli import load_pipeline
from ..paths import is_within

PACKAGE_DIR = Path(__file__).resolve().parents[1]
DISTRIBUTION = "hf-mmmer"
TITLE = "hf-mmmer micro-expressions"
APP = '''"""A Hugging Face Space: the hf-mmmer micro-expression demo around ./model (written by `hf-mmmer demo
--export_space`). Run it with `python app.py`; the Space sets the host and port (GRADIO_SERVER_NAME/PORT)."""

from pathlib import Path

from hf_mmmer.demo.app import LAUNCH_OPTIONS, build_app

app = build_app(Path(__file__).resolve().parent / "model")

if __name__ == "__main__":
    app.launch(**LAUNCH_OPTIONS)
'''
README = """---
title: {title}
emoji: 🙂
colorFrom: indigo
colorTo: blue
sdk: gradio
sdk_version: {gradio_version}
app_file: app.py
pinned: false
license: apache-2.0
---

# {title}

Micro-expression recognition with hf-mmmer (a multi-modal multi-scale transformer after arXiv
2301.02969): give the neutral onset frame and the apex of an expression, or a short clip, and
the page shows the class scores ({labels}), the face crop, the optical flow and where the motion drove
the decision. The model is in `model/` (its card: `model/README.md`).
"""


def core_requirements() -> list[str]:
    """The installed package's dependencies without extras, as its metadata lists them."""
    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError as error:
        raise ValueError(f"{DISTRIBUTION} is not installed (pip install -e .): its requirements are unknown") from error
    return [requirement for requirement in requirements if "extra ==" not in requirement]


def export_space(model_dir, output_dir) -> Path:
    """Write the Space folder to `output_dir` (new or empty; never written over) and return its path.

    The model is loaded first, so a wrong model folder is refused before anything is written.
    """
    import gradio

    model_dir, output_dir = Path(model_dir), Path(output_dir)
    if os.path.lexists(output_dir) and not output_dir.exists():
        raise ValueError(f"{output_dir} is a symbolic link to nothing ({os.readlink(output_dir)}); the Space is "
                         "written only to a new or empty folder.")
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise ValueError(f"{output_dir} exists and is not an empty folder; the Space is written only to a new or "
                         "empty one.")
    if is_within(output_dir, model_dir):
        raise ValueError(f"{output_dir} lies inside the model folder {model_dir}; the Space copies that folder, so "
                         "write it elsewhere.")
    config = load_pipeline(model_dir).model.config
    requirements = core_requirements()
    output_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(model_dir, output_dir / "model")
    shutil.copytree(PACKAGE_DIR, output_dir / "hf_mmmer", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (output_dir / "app.py").write_text(APP)
    (output_dir / "requirements.txt").write_text("\n".join(requirements) + "\n")
    labels = ", ".join(config.id2label.values())
    (output_dir / "README.md").write_text(README.format(title=TITLE, gradio_version=gradio.__version__, labels=labels))
    return output_dir
