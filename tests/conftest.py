"""Shared fixtures: tiny model configs and a fresh Python process that has never imported hf_mmmer."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from hf_mmmer import MMMERConfig


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One torch/OpenMP thread in the tests and in the processes they start.

    On a 2-core machine with any other job running, a second intra-op thread waits for a time slice at
    every parallel op (benchmarks/RESULTS.md, inference section: ~200x slower forwards); tiny test
    models gain nothing from it, and one thread also makes CPU results repeatable across processes.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        yield
    torch.set_num_threads(threads)


def tiny_config(**overrides) -> MMMERConfig:
    """A model small enough for a CPU test: both modalities, 28x28 flow and texture, one layer, width 16."""
    sizes = dict(
        modalities=["flow", "texture"], flow_image_size=28, flow_patch_sizes=[7, 14], texture_image_size=28, texture_patch_sizes=[14],
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, projection_dim=8,
    )
    return MMMERConfig(**{**sizes, **overrides})


@pytest.fixture
def fresh_python(tmp_path):
    """Run code in a new interpreter (cwd outside the repo, offline, private HF_HOME); return stdout.

    The code runs as it would for a user who only has a saved directory: the test asserts inside the
    snippet that `hf_mmmer` was never imported.
    """

    def run(code: str, timeout: int = 120) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=timeout,
        )
        if result.returncode != 0:
            raise AssertionError(f"fresh process failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    return run
