"""Shared fixtures: tiny model configs, one saved tiny model and one tiny trained run per session, and fresh
Python processes (benchmark scripts included).

Most of the suite's time used to go to starting Python processes (each one imports torch and
transformers for seconds) and to training the same tiny run again in them. So a session starts one
fork server that has imported those libraries (and never `hf_mmmer`), and every "fresh process" of a
test is a fork of it: a new process that has never imported `hf_mmmer`, without the import wait. The
tiny trained run is made once per session, and the runs that are compared with it share its dataset
cache. `make test` runs two pytest-xdist workers, each a session of its own, and hands them whole files,
those of `slow` tests first.
"""

import collections
import importlib.util
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest

# torch and hf_mmmer are imported where they are used: pytest-xdist's controller loads this file too, and
# runs no test.
REPO = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO / "examples" / "train.py"
PACKAGE_SOURCE = str(Path(importlib.util.find_spec("hf_mmmer").origin).resolve().parents[1])  # hf_mmmer's folder
TINY_FLOW_OVERRIDES = "hidden_size=16,num_hidden_layers=1,num_attention_heads=2,flow_patch_sizes=[7,14]"
"""`--config_overrides` of a tiny model of the default modalities (flow alone)."""
TINY_OVERRIDES = TINY_FLOW_OVERRIDES + ",texture_image_size=28,texture_patch_sizes=[14]"
"""The same tiny model, with texture sizes that also fit a texture branch."""
# Three subjects of six clips: three LOSO folds of about a second, long enough for a kill to land between them.
TINY_RUN = ["--dataset", "synthetic", "--num_subjects", "3", "--samples_per_subject", "6", "--epochs", "20",
            "--batch_size", "8", "--config_overrides", TINY_OVERRIDES, "--num_threads", "1"]


def pytest_collection_modifyitems(items):
    """Files with more `slow` tests first, each file's tests in their order: `make test` hands whole files to
    its workers in this order, so the long ones start early instead of leaving one worker alone at the end."""
    slow = collections.Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One torch/OpenMP thread in the tests and in the processes they start.

    On a 2-core machine with any other job running, a second intra-op thread waits for a time slice at
    every parallel op (benchmarks/RESULTS.md, inference section); tiny test models gain nothing from it,
    and one thread also makes CPU results repeatable across processes.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        yield
    torch.set_num_threads(threads)


def tiny_config(**overrides):
    """An `MMMERConfig` small enough for a CPU test: both modalities, 28x28 flow and texture, one layer, width 16."""
    from hf_mmmer import MMMERConfig

    sizes = dict(
        modalities=["flow", "texture"], flow_image_size=28, flow_patch_sizes=[7, 14], texture_image_size=28, texture_patch_sizes=[14],
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, projection_dim=8,
    )
    return MMMERConfig(**{**sizes, **overrides})


def save_tiny_model(directory, **config_overrides) -> Path:
    """An untrained `tiny_config` model (seed 0) saved by `save_model_directory` with the processor of
    `tiny_config()` (face crop off, the default: the texture has no face)."""
    import torch

    from hf_mmmer import MMMERForMicroExpressionClassification, MMMERImageProcessor
    from hf_mmmer.training.export import save_model_directory

    torch.manual_seed(0)
    model = MMMERForMicroExpressionClassification(tiny_config(**config_overrides)).eval()
    return save_model_directory(model, MMMERImageProcessor.from_config(tiny_config()), directory)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """One saved tiny model for the session; tests only read it (a test that changes it works on a copy)."""
    return save_tiny_model(tmp_path_factory.mktemp("saved") / "model")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_env(tmp_path, **extra) -> dict:
    """The environment of a process a test starts: offline, one thread, Hugging Face caches under
    `tmp_path`, and this session's `hf_mmmer` first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update({"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                "PYTHONPATH": PACKAGE_SOURCE, **extra})
    return env


@pytest.fixture(scope="session")
def train_args(tmp_path_factory) -> list:
    """`TINY_RUN` with one prepared-dataset cache for the whole session (`--cache_dir` never changes results)."""
    return [*TINY_RUN, "--cache_dir", str(tmp_path_factory.mktemp("datasets"))]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, train_args):
    """`(output_dir, metrics)` of the tiny synthetic LOSO run with its final model, trained once per session
    (in this process); tests only read it."""
    from hf_mmmer.training.cli import train_from_argv as train

    output = tmp_path_factory.mktemp("trained") / "run"
    return output, train([*train_args, "--output_dir", str(output)])


# The fork server: reads one job (JSON) a line, forks one child per run of it, answers the children's
# pids, then their exit codes. A child takes the job's cwd, environment, argv and output files, then runs
# the code, script or module as `__main__`. Environment variables that libraries read at import time keep the
# server's values (offline, one thread, the session's HF_HOME).
FORK_SERVER = r"""
import json, os, runpy, sys, traceback
# The slow imports, paid once: what a saved model needs, and the libraries hf_mmmer's trainer uses.
import torch, transformers, transformers.pipelines
import accelerate, datasets, matplotlib.pyplot, pandas, sklearn.metrics

def child(job, run):
    os.chdir(job["cwd"])
    os.environ.update(run["env"])
    for fd, name in ((1, run["stdout"]), (2, run["stderr"])):
        os.dup2(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.stdin = open(os.devnull)
    sys.argv = job["argv"]
    sys.path[:0] = job["path"]
    code = 0
    try:
        if job["script"]:
            sys.path.insert(0, os.path.dirname(job["script"]))
            runpy.run_path(job["script"], run_name="__main__")
        elif job["module"]:
            runpy.run_module(job["module"], run_name="__main__", alter_sys=True)
        else:
            exec(compile(job["code"], "<fresh process>", "exec"), {"__name__": "__main__"})
    except SystemExit as exit_:  # as the interpreter does: an int is the exit code, a message goes to stderr
        if exit_.code is None or isinstance(exit_.code, int):
            code = exit_.code or 0
        else:
            print(exit_.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

for line in sys.stdin:
    job = json.loads(line)
    pids = []
    for run in job["runs"]:
        pid = os.fork()
        if pid == 0:
            child(job, run)
        pids.append(pid)
    print(json.dumps(pids), flush=True)
    print(json.dumps([os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]), flush=True)
"""


class ForkServer:
    """A Python process that has imported torch, transformers and the trainer's libraries (never hf_mmmer)
    and forks on request."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        env = child_env(workdir, TRANSFORMERS_VERBOSITY="error")
        del env["PYTHONPATH"]  # a user's process: hf_mmmer only where a job puts it on the path
        self.process = subprocess.Popen([sys.executable, "-c", FORK_SERVER], cwd=workdir, env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.replies = queue.Queue()
        threading.Thread(target=lambda: [self.replies.put(json.loads(line)) for line in self.process.stdout],
                         daemon=True).start()

    def start(self, cwd, *, code=None, script=None, module=None, argv=(), envs=({},), path=()) -> list:
        """Fork one child per entry of `envs` (its extra environment) to run `code`, a `script` file or a
        `module` (as `python -m` would); return their pids.

        Each child's output goes to `cwd/fork-<i>.out` and `.err`; `path` goes first on its `sys.path`.
        """
        runs = [{"env": env, "stdout": str(Path(cwd) / f"fork-{i}.out"), "stderr": str(Path(cwd) / f"fork-{i}.err")}
                for i, env in enumerate(envs)]
        self.runs = runs
        job = {"cwd": str(cwd), "code": code, "script": script and str(script), "module": module,
               "argv": [str(a) for a in argv], "path": [str(p) for p in path], "runs": runs}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        self.pids = self.replies.get(timeout=600)  # the first job waits for the server's imports
        return self.pids

    def running(self) -> bool:
        """Whether a child of the last job is still running (its exit codes have not come back)."""
        return self.replies.empty()

    def wait(self, timeout: float) -> list:
        """The exit codes of the last started children, with their stdout and stderr: `[(code, out, err)]`."""
        try:
            codes = self.replies.get(timeout=timeout)
        except queue.Empty:
            for pid in self.pids:
                os.kill(pid, signal.SIGKILL)
            self.replies.get(timeout=60)
            raise TimeoutError(f"forked process still running after {timeout} s; killed") from None
        return [(code, Path(run["stdout"]).read_text(), Path(run["stderr"]).read_text())
                for code, run in zip(codes, self.runs)]

    def close(self):
        self.process.kill()  # it holds nothing but imported modules
        self.process.wait(timeout=60)
        shutil.rmtree(self.workdir, ignore_errors=True)


FORK_SERVER_KEY = pytest.StashKey[ForkServer]()


def pytest_collection_finish(session):
    """Start the fork server as soon as a collected test needs it, so its imports overlap the first tests."""
    if any("fork_server" in getattr(item, "fixturenames", ()) for item in session.items):
        session.config.stash[FORK_SERVER_KEY] = ForkServer(Path(tempfile.mkdtemp(prefix="hf_mmmer_fork_server")))


@pytest.fixture(scope="session")
def fork_server(request):
    server = request.config.stash.get(FORK_SERVER_KEY, None)
    if server is None:  # requested at run time (`request.getfixturevalue`), not seen at collection
        server = ForkServer(Path(tempfile.mkdtemp(prefix="hf_mmmer_fork_server")))
    yield server
    server.close()


@pytest.fixture
def fresh_python(tmp_path, fork_server):
    """Run code in a new process that has never imported hf_mmmer (cwd `tmp_path`, offline); return stdout.

    The code runs as it would for a user who only has a saved directory: the test asserts inside the
    snippet that `hf_mmmer` was never imported.
    """

    def run(code: str, timeout: int = 120) -> str:
        fork_server.start(tmp_path, code=textwrap.dedent(code), argv=["-c"])
        [(status, out, err)] = fork_server.wait(timeout)
        if status != 0:
            raise AssertionError(f"fresh process failed:\n{out}\n{err}")
        return out

    return run


@pytest.fixture
def run_benchmark(tmp_path, fork_server):
    """Run `benchmarks/<script>` with its arguments in a fork (cwd `tmp_path`, offline, its dataset cache
    there); return `(exit code, stdout, stderr)`.

    The trainer processes a benchmark starts are new interpreters, given this session's `hf_mmmer` first
    on their path.
    """

    def run(script: str, *argv, timeout: int = 600) -> tuple:
        path = REPO / "benchmarks" / script
        fork_server.start(tmp_path, script=path, argv=[path, *argv], path=[PACKAGE_SOURCE],
                          envs=[{"PYTHONPATH": PACKAGE_SOURCE, "HF_MMMER_DATASETS_CACHE": str(tmp_path / "datasets")}])
        [result] = fork_server.wait(timeout)
        return result

    return run
