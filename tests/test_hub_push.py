"""Hub push: the real ``huggingface_hub`` client, unmodified, uploads a saved model folder to a
Hub-compatible server on 127.0.0.1 that the tests start (``hub_server.LocalHub``)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import child_env
from safetensors.numpy import save_file

import hf_mmmer.training.hub as hub_module
from hf_mmmer.training.hub import DEFAULT_COMMIT_MESSAGE, push_folder_to_hub
from hub_server import ROUTES, LocalHub

# huggingface_hub reads HF_ENDPOINT and HF_HUB_DISABLE_XET when it is imported, so pushes run in a
# child process with the environment set. One process runs every push, and it loads hub.py alone (it
# needs only huggingface_hub): importing the hf_mmmer package would cost seconds of torch and transformers.
PUSH_SCRIPT = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("hub", sys.argv[2])
hub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hub)
push_folder_to_hub = hub.push_folder_to_hub
results = []
for job in json.loads(sys.argv[1]):
    try:
        results.append({"url": push_folder_to_hub(**job)})
    except Exception as err:
        results.append({"error": type(err).__name__, "message": str(err)})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def hub():
    server = LocalHub().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A folder shaped like the trainer's ``final_model/``, plus a byte-code cache that must stay home."""
    folder = tmp_path_factory.mktemp("final_model")
    rng = np.random.default_rng(0)
    save_file(
        {"classifier.weight": rng.standard_normal((3, 16)).astype(np.float32),
         "flow_embed.p7.weight": rng.standard_normal((16, 3, 7, 7)).astype(np.float32)},
        str(folder / "model.safetensors"),
    )
    config = {"model_type": "mmmer", "num_labels": 3, "auto_map": {"AutoModel": "modeling_mmmer.MMMERModel"}}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "preprocessor_config.json").write_text(json.dumps({"do_crop_face": True, "flow_method": "dis"}))
    (folder / "modeling_mmmer.py").write_text('"""Model code saved next to the weights."""\n\nclass MMMERModel:\n    pass\n')
    (folder / "README.md").write_text("---\nlibrary_name: transformers\nlicense: apache-2.0\n---\n\n# MMMER\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "modeling_mmmer.cpython-311.pyc").write_bytes(b"\x00\x01cache")
    return folder


def _expected_files(folder) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def pushes(hub, model_dir, tmp_path_factory):
    """Runs the pushes, in order, in one fresh process pointed at the local server; returns their results."""
    jobs = {
        "first": dict(folder=str(model_dir), repo_id="alice/mmmer-casme2", commit_message="Add LOSO model"),
        "unchanged": dict(folder=str(model_dir), repo_id="alice/mmmer-casme2"),
        "bare_private": dict(folder=str(model_dir), repo_id="mmmer-private", private=True),
        "wrong_token": dict(folder=str(model_dir), repo_id="alice/refused", token="hf_not_the_token"),
    }
    workdir = tmp_path_factory.mktemp("push")
    env = child_env(workdir, HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_TOKEN=hub.token, HF_HUB_OFFLINE="0",
                    HF_HUB_DISABLE_PROGRESS_BARS="1")
    result = subprocess.run(
        [sys.executable, "-c", PUSH_SCRIPT, json.dumps(list(jobs.values())), hub_module.__file__],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return dict(zip(jobs, json.loads(result.stdout.strip().splitlines()[-1])))


def test_every_file_lands_byte_identical(hub, model_dir, pushes):
    repo = hub.repos["alice/mmmer-casme2"]
    assert repo.files == _expected_files(model_dir)
    assert repo.lfs_paths == {"model.safetensors"}  # the weights took the LFS route, the rest went inline
    assert not repo.private
    assert repo.commits[0]["summary"] == "Add LOSO model"
    assert pushes["first"] == {"url": f"{hub.url}/alice/mmmer-casme2/commit/{repo.commits[0]['oid']}"}


def test_unchanged_push_makes_no_new_commit(hub, pushes):
    assert len(hub.repos["alice/mmmer-casme2"].commits) == 1
    assert pushes["unchanged"] == pushes["first"]


def test_bare_name_goes_to_the_token_user_and_private_is_kept(hub, model_dir, pushes):
    repo = hub.repos[f"{hub.user}/mmmer-private"]
    assert repo.private
    assert repo.files == _expected_files(model_dir)
    assert repo.commits[0]["summary"] == DEFAULT_COMMIT_MESSAGE
    assert pushes["bare_private"]["url"].startswith(f"{hub.url}/{hub.user}/mmmer-private/commit/")


def test_token_argument_overrides_the_environment(hub, pushes):
    assert pushes["wrong_token"]["error"] == "HfHubHTTPError"
    assert "401" in pushes["wrong_token"]["message"]
    assert "alice/refused" not in hub.repos


def test_client_calls_exactly_the_served_endpoints(hub, pushes):
    assert hub.unhandled == []
    assert set(hub.calls) == set(ROUTES)


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        push_folder_to_hub(tmp_path / "absent", "alice/model")


def test_empty_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="holds no files"):
        push_folder_to_hub(tmp_path, "alice/model")


@pytest.mark.parametrize("repo_id", ["", None, "alice/team/model", "alice/bad..name", "-model", "alice/model.git"])
def test_invalid_repo_id_is_refused_before_any_request(model_dir, repo_id):
    with pytest.raises(ValueError, match="invalid Hub repo id"):
        push_folder_to_hub(model_dir, repo_id)
