"""The command line's error contract: a user's mistake is one line on stderr and exit status 1.

The package signals a problem with what the user gave it (an argument, a file, a folder, a sample) by
raising one of the standard exceptions in `USER_ERRORS`, with a message that names the field, file or
sample; library code everywhere already does, so no package-specific exception type is needed. The
commands (`hf-mmmer ...`, `examples/train.py`) catch exactly these at their boundary and print the
message alone (a user error that `datasets` wrapped while building a dataset is unwrapped first).
Anything else is a bug and keeps its traceback. Malformed command lines are argparse's
(usage line and exit status 2).
"""

import os
import sys

USER_ERRORS = (
    ValueError,  # a bad value: argument, config field, sample, label
    TypeError,  # a value of the wrong type, e.g. a config field
    # A missing, misplaced or unreadable file or folder, an output that may not be replaced without consent
    # (FileExistsError), a full disk; transformers reports a model folder without weights this way too.
    OSError,
)


def _wrapped_by_datasets(error: BaseException) -> bool:
    """Whether `datasets` wrapped `error` while building a dataset. Only a command that builds one imports
    `datasets`; the others (predict, spot, demo) start without paying for it."""
    exceptions = sys.modules.get("datasets.exceptions")
    return exceptions is not None and isinstance(error, exceptions.DatasetGenerationError)


def user_error(error: BaseException):
    """The user error `error` is, or that `datasets` wrapped in it (a builder's refusal of a sample); else None."""
    while _wrapped_by_datasets(error):
        error = error.__cause__
    return error if isinstance(error, USER_ERRORS) else None


def quiet_native_decoders():
    """Keep OpenCV's and FFmpeg's own warnings ("PNG input buffer is incomplete", "moov atom not found") off
    stderr: the package's one-line error names the file and says what is wrong, and theirs came first."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when the first video is opened


def is_main_process() -> bool:
    """Whether this is the process that reports: under `torchrun` or `accelerate launch` every process meets the
    same bad input, and one line per process would bury it (the launcher's own report follows anyway)."""
    return os.environ.get("RANK", "0") == "0"


def exit_status(command: str, run, *args) -> int:
    """Call `run(*args)`; return 0, or print a user error as `command: error: message` (from the main process
    only) and return 1."""
    quiet_native_decoders()
    try:
        run(*args)
    except Exception as error:  # noqa: BLE001 -- anything but a user error is raised again, traceback intact
        if user_error(error) is None:
            raise
        if is_main_process():
            print(f"{command}: error: {' '.join(str(user_error(error)).split())}", file=sys.stderr)
        return 1
    return 0
