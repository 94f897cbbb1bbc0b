"""Upload a saved model directory to the Hugging Face Hub, or to any Hub-compatible endpoint.

A folder upload rather than ``model.push_to_hub``: ``push_to_hub`` sends only the model's own files,
while the trainer's ``final_model/`` also holds the processor config, the custom pipeline and model
code and the model card. ``HfApi.upload_folder`` sends all of it in one commit.

Where the files go is decided the way ``huggingface_hub`` always decides it: ``HF_ENDPOINT`` (read
once, when ``huggingface_hub`` is first imported), else https://huggingface.co. Credentials are
``token`` or the client's usual lookup (``HF_TOKEN``, then the token saved by ``hf auth login``).
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.utils import HFValidationError, validate_repo_id

DEFAULT_COMMIT_MESSAGE = "Upload hf-mmmer model"

# Byte-code caches appear in a model folder when its code files were imported from there; they are
# interpreter-specific and never belong on the Hub.
_IGNORE_PATTERNS = ["*__pycache__*", "*.pyc"]


def push_folder_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
) -> str:
    """Create the model repo ``repo_id`` if needed and upload every file of ``folder`` in one commit.

    ``repo_id`` is ``"namespace/name"`` or a bare ``"name"`` (then the Hub puts it under the token's
    user). ``private`` applies only when the repo is created; an existing repo keeps its visibility.
    Pushing unchanged files again makes no new commit.

    Returns the URL of the commit (of the current head commit when nothing changed).

    Raises ``FileNotFoundError`` for a missing folder, ``ValueError`` for an empty folder or a
    malformed repo id (both before anything is sent), and the client's ``HfHubHTTPError`` subclasses
    for what the server refuses.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot push {str(folder)!r}: no such directory (expected a saved model folder)")
    if not any(path.is_file() for path in folder.rglob("*")):
        raise ValueError(f"cannot push {str(folder)!r}: the folder holds no files")
    if not isinstance(repo_id, str) or not repo_id:
        raise ValueError(f"invalid Hub repo id {repo_id!r}: expected 'namespace/name' or 'name'")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"invalid Hub repo id {repo_id!r}: {err}") from err

    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
    # The server's answer names the full repo id, so a bare name resolves to the token's namespace.
    commit = api.upload_folder(
        folder_path=folder,
        repo_id=repo_url.repo_id,
        commit_message=commit_message,
        ignore_patterns=_IGNORE_PATTERNS,
    )
    return commit.commit_url
