"""The command line's error contract: a user's mistake is one line on stderr and exit status 1.

The package signals a problem with what the user gave it (an argument, a file, a folder, a sample) by
raising one of the standard exceptions in `USER_ERRORS`, with a message that names the field, file or
sample; library code everywhere already does, so no package-specific exception type is needed. The
commands (`hf-mmmer ...`, `examples/train.py`) catch exactly these at their boundary and print the
message alone. Anything else is a bug and keeps its traceback. Malformed command lines are argparse's
(usage line and exit status 2).
"""

import sys

USER_ERRORS = (
    ValueError,  # a bad value: argument, config field, sample, label
    TypeError,  # a value of the wrong type, e.g. a config field
    FileNotFoundError,
    FileExistsError,  # an output that exists and may not be replaced without consent
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)


def exit_status(command: str, run, *args) -> int:
    """Call `run(*args)`; return 0, or print a user error as `command: error: message` and return 1."""
    try:
        run(*args)
    except USER_ERRORS as error:
        print(f"{command}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    return 0
