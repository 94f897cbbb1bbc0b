"""What a command may write, continue, replace or delete in an output folder, and nothing more.

A training run is recognised by `run_manifest.json`, which lists every file the run owns (written at
the start, before the first result). The rules, checked before anything is written:

- A new or empty folder is written into.
- A non-empty folder that is not a run is never written into, with or without `--overwrite`.
- `--resume` continues a run (the caller checks that its arguments and data are unchanged).
- `--overwrite` replaces a run only when every file in it is the run's own: the new run is built in a
  hidden sibling (`.NAME.overwrite`) and swapped in at the end, so a failure keeps the old run whole;
  the old run's files are then deleted, and anything else that appeared meanwhile is kept, in
  `.NAME.replaced`, and named.
- An evaluation (`hf-mmmer evaluate --output_dir`) never writes into a training run or anywhere inside
  one, and writes into another non-empty folder only with `--overwrite` (replacing its two files, touching
  nothing else).
- Neither writes inside its inputs (the data folder; for an evaluation, the model folder too).
"""

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..data.checks import listing
from ..paths import is_within
from .export import is_interrupted_save, staging_folder as save_staging_folder
from .reporting import write_json

logger = logging.getLogger(__name__)
MANIFEST_FILE = "run_manifest.json"
RUN_ARGS_FILE = "run_args.json"  # the arguments of the run; older versions wrote it without a manifest
FINAL_MODEL_STAGING = save_staging_folder(Path("final_model")).name
"""Where the final model is saved before it is renamed to `final_model/` (`export.save_model_directory`): the
run's own when it is an interrupted save (`export.is_interrupted_save`). `final_model/`'s own files are listed
in the manifest once saved (`record_owned`), so a file a user put beside them is kept."""
TEMPORARY_FILE = re.compile(r"\.(.+)\.[0-9a-f]{8}\.tmp")
"""A leftover of `atomic_files.atomic_path` writing the file named by the group."""


@dataclass(frozen=True)
class RunPlacement:
    """Where a run ends up (`output_dir`) and where it writes meanwhile (`work_dir`)."""

    output_dir: Path
    work_dir: Path

    @property
    def replaces_a_run(self) -> bool:
        return self.work_dir != self.output_dir


def staging_folder(output_dir: Path) -> Path:
    return output_dir.with_name(f".{output_dir.name}.overwrite")


def replaced_folder(output_dir: Path) -> Path:
    return output_dir.with_name(f".{output_dir.name}.replaced")


def read_record(path: Path, is_valid, what: str, consequence: str = "the run cannot be resumed from it; start a "
                "new run (another --output_dir, or --overwrite)"):
    """The JSON of `path`, a file a run wrote, or a `ValueError` naming the file when it does not parse or
    `is_valid(record)` is false (it is not `what`): an edited or truncated record would otherwise fail later
    as a KeyError, or be trusted."""
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is damaged ({error}); {consequence}") from None
    if not is_valid(record):
        raise ValueError(f"{path} is damaged (not {what}); {consequence}")
    return record


def read_manifest(folder: Path):
    """The set of files a run in `folder` owns, or None when `folder` holds no run."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        return None
    record = read_record(path, lambda r: isinstance(r, dict) and isinstance(r.get("files"), list),
                         'a {"files": [...]} list', "the folder cannot be treated as a run")
    return set(record["files"])


def is_owned(relative: str, owned: set, folder: Path) -> bool:
    """Whether the file at `relative` (a POSIX path inside the run in `folder`) is the run's own."""
    parts = relative.split("/")
    if relative in owned:
        return True
    if parts[0] == FINAL_MODEL_STAGING and len(parts) == 2:
        return is_interrupted_save(Path(folder) / FINAL_MODEL_STAGING)
    temporary = TEMPORARY_FILE.fullmatch(parts[-1])
    return temporary is not None and "/".join([*parts[:-1], temporary.group(1)]) in owned


def foreign_files(folder: Path, owned: set) -> list:
    """Files under `folder` that the run there did not write, as sorted relative paths. A symbolic link counts
    as a file, a link to a folder too: the run writes none, and what it points to is the user's."""
    files = (path.relative_to(folder).as_posix() for path in Path(folder).rglob("*")
             if path.is_symlink() or not path.is_dir())
    return sorted(relative for relative in files if not is_owned(relative, owned, folder))


def delete_owned(folder: Path, owned: set) -> None:
    """Delete the files of the run in `folder` that it owns, then its folders (those holding a file it owns)
    left empty; keep everything else.

    Which files are the run's is decided before the first is deleted (an interrupted save is recognised by a
    marker that is itself deleted).
    """
    folder = Path(folder)
    paths = sorted(folder.rglob("*"), reverse=True)
    foreign = set(foreign_files(folder, owned))
    mine = [path for path in paths if not path.is_dir() and path.relative_to(folder).as_posix() not in foreign]
    its_folders = {parent for path in mine for parent in path.relative_to(folder).parents} - {Path(".")}
    for path in mine:
        path.unlink()
    for path in paths:
        if path.relative_to(folder) in its_folders and path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _is_empty(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


def checked_output_dir(output_dir, inputs: dict) -> Path:
    """`output_dir` as an absolute path, refused when it cannot hold results (empty text, a file, a folder
    under a file) or lies inside one of `inputs` (option -> folder, or None when not given). Absolute, since
    the rules above put folders beside it by its name, which `.` and `x/..` do not give."""
    if not str(output_dir).strip():
        raise ValueError("--output_dir is empty; name the folder for the results")
    output_dir = Path(os.path.abspath(output_dir))
    existing = next(folder for folder in (output_dir, *output_dir.parents) if folder.exists())
    if not existing.is_dir():
        where = "is a file" if existing == output_dir else f"lies under {existing}, which is a file"
        raise NotADirectoryError(f"--output_dir {output_dir} {where}, not a folder")
    for option, folder in inputs.items():
        if folder is not None and is_within(output_dir, folder):
            raise FileExistsError(f"--output_dir {output_dir} lies inside {option} {folder}: results are never "
                                  "written into an input folder; choose a folder outside it")
    return output_dir


def place_run(output_dir, resume: bool, overwrite: bool, inputs: dict | None = None) -> RunPlacement:
    """Decide where a run writes, refusing what the rules above forbid; reads only, writes nothing.
    `inputs`: as `checked_output_dir` takes them."""
    output_dir = checked_output_dir(output_dir, inputs or {})
    if replaced_folder(output_dir).exists():
        raise FileExistsError(f"{replaced_folder(output_dir)} holds what was left of a run replaced in {output_dir} "
                              "(files it did not write, or an interrupted swap): look at it, then move or delete it")
    if _is_empty(output_dir):
        return RunPlacement(output_dir, output_dir)
    owned = read_manifest(output_dir)
    if owned is None and (output_dir / RUN_ARGS_FILE).is_file():
        raise FileExistsError(f"{output_dir} holds a run of an older hf-mmmer (no {MANIFEST_FILE}), which cannot be "
                              "resumed or replaced safely; move or delete it yourself, or choose another --output_dir")
    if owned is None:
        raise FileExistsError(f"--output_dir {output_dir} is not empty and holds no hf-mmmer run ({MANIFEST_FILE}): "
                              "it is never written into or deleted; choose a new or empty folder")
    if resume:
        return RunPlacement(output_dir, output_dir)
    if not overwrite:
        raise FileExistsError(f"{output_dir} already holds a run; pass --resume to continue it or --overwrite to "
                              "replace it")
    if is_within(os.getcwd(), output_dir):  # the swap would leave the shell in the replaced, deleted folder
        raise FileExistsError(f"--overwrite would replace {output_dir}, the folder this command runs in (or one "
                              "holding it); run it from outside that folder")
    foreign = foreign_files(output_dir, owned)
    if foreign:
        raise FileExistsError(f"--overwrite refused: {output_dir} holds files the run did not write "
                              f"({listing(foreign)}); move them out first")
    staging = staging_folder(output_dir)
    if not _is_empty(staging):
        # `start_run` deletes it: only an earlier run's (whose manifest is written first) that owns all of it.
        staged = read_manifest(staging)
        if staged is None or foreign_files(staging, staged):
            raise FileExistsError(f"{staging} (where --overwrite builds the new run) holds files hf-mmmer did not "
                                  "write; move or delete it")
    return RunPlacement(output_dir, staging)


def start_run(placement: RunPlacement, records: dict, owned_files) -> None:
    """Create the run's folder and write its `records` (`{file name: JSON payload}`) and manifest.

    `owned_files` are the paths (relative to the run) the run will write; a resumed run keeps owning
    what it owned before.
    """
    work_dir = placement.work_dir
    if placement.replaces_a_run and work_dir.exists():  # an earlier --overwrite's unfinished run
        delete_owned(work_dir, read_manifest(work_dir) or set())
        if any(work_dir.iterdir()):  # place_run found none, but a file may have appeared since
            raise FileExistsError(f"{work_dir} (where --overwrite builds the new run) holds files hf-mmmer did not "
                                  f"write ({listing(foreign_files(work_dir, set()))}); move or delete it")
    work_dir.mkdir(parents=True, exist_ok=True)
    record_owned(work_dir, {*records, *owned_files})
    for name, payload in records.items():
        write_json(work_dir / name, payload)


def record_owned(work_dir: Path, relatives) -> None:
    """Add `relatives` (paths inside the run, POSIX) to the files the run in `work_dir` owns."""
    owned = {MANIFEST_FILE, *relatives} | (read_manifest(work_dir) or set())
    write_json(work_dir / MANIFEST_FILE, {"written_by": "hf_mmmer", "files": sorted(owned)})


def finish_run(placement: RunPlacement) -> None:
    """Swap a replacing run into place, then delete the old run's own files (and nothing else)."""
    if not placement.replaces_a_run:
        return
    old = replaced_folder(placement.output_dir)
    os.rename(placement.output_dir, old)
    os.rename(placement.work_dir, placement.output_dir)
    owned = read_manifest(old)
    delete_owned(old, owned)
    if any(old.iterdir()):
        logger.warning("kept files the replaced run did not write in %s: %s", old, listing(foreign_files(old, owned)))
    else:
        old.rmdir()


def is_run_folder(folder) -> bool:
    return any((Path(folder) / name).is_file() for name in (MANIFEST_FILE, RUN_ARGS_FILE))


def check_evaluation_folder(output_dir, overwrite: bool, inputs: dict | None = None) -> None:
    """Refuse an evaluation's `--output_dir` that is or lies in a training run, lies inside one of `inputs`
    (as `checked_output_dir` takes them), or is non-empty without `--overwrite`."""
    output_dir = checked_output_dir(output_dir, inputs or {})
    real = Path(os.path.realpath(output_dir))  # a link's path can lead into a run that the typed path does not show
    run = next((folder for path in (output_dir, real) for folder in (path, *path.parents) if is_run_folder(folder)),
               None)
    if run is not None:
        where = "holds" if run in (output_dir, real) else f"lies inside {run},"
        raise FileExistsError(f"--output_dir {output_dir} {where} "
                              "a training run, whose metrics.json and predictions.csv are its LOSO results: an "
                              "evaluation never writes there; choose another folder")
    if not overwrite and not _is_empty(output_dir):
        raise FileExistsError(f"--output_dir {output_dir} is not empty; pass --overwrite to replace its metrics.json "
                              "and predictions.csv (nothing else is touched), or choose a new folder")
