"""Annotation sheets: finding them, reading them with pandas, and normalising their cells.

Releases of the same dataset differ in file dates, preamble rows and whether ids are text or numbers,
so nothing here hard-codes a row number or a cell type: the header row is found by its first cell, ids
are normalised to one spelling, and a frame cell that is not a frame number ("/", empty, negative)
becomes "not annotated" for the caller to handle explicitly.
"""

import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .checks import AnnotationWarning, is_debris, listing
from .features import ACTION_UNITS, APEX_FRAME, EMOTION, OFFSET_FRAME, ONSET_FRAME, SUBJECT

CLIP = "clip"
"""The source's name of a clip (its folder), e.g. `EP02_01f`; `sample_id` is `{subject}_{clip}`."""
CLIP_DIR = "clip_dir"
"""The folder that holds the clip's frames."""
FRAME_COLUMNS = (ONSET_FRAME, APEX_FRAME, OFFSET_FRAME)


def release_stamp(name: str, pattern: str):
    """The numbers of the date or version that `pattern`'s one `*` stands for in `name` (`20190701`, `2.1`), or
    None when that part is anything else (a backup's `20190701_old`, a copy's `20190701 (1)`)."""
    prefix, suffix = pattern.split("*")
    stamp = name[len(prefix):len(name) - len(suffix)]
    return tuple(int(part) for part in stamp.split(".")) if re.fullmatch(r"\d+(\.\d+)*", stamp) else None


def find_file(directory: Path, pattern: str, what: str) -> Path:
    """The file matching glob `pattern` (one `*`, a release's date or version) in `directory`; of several, the
    newest release, said in an `AnnotationWarning`. Hidden files (macOS's `._name.xlsx`) do not count. A match
    that is not a release's name (a backup, a copy), or two of one release, is an error: which sheet holds
    the labels is never guessed."""
    matches = sorted(path for path in directory.glob(pattern) if path.is_file() and not is_debris(path.name))
    if not matches:
        raise FileNotFoundError(f"{what}: expected a file matching {pattern!r} in {directory}; found none")
    if len(matches) == 1:
        return matches[0]
    stamps = {path: release_stamp(path.name, pattern) for path in matches}
    newest = max((stamp for stamp in stamps.values() if stamp is not None), default=None)
    if None in stamps.values() or list(stamps.values()).count(newest) > 1:
        raise ValueError(f"{what}: {len(matches)} files match {pattern!r} in {directory} "
                         f"({', '.join(path.name for path in matches)}); keep the one to read there and move the "
                         "others out")
    chosen = next(path for path, stamp in stamps.items() if stamp == newest)
    warnings.warn(f"{what}: {len(matches)} releases in {directory}; reading the newest, {chosen.name}",
                  AnnotationWarning)
    return chosen


def require_columns(table: pd.DataFrame, columns, where) -> None:
    missing = [name for name in columns if name not in table.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}; the columns found are {list(table.columns)}")


def csv_line(index: int) -> str:
    """Where row `index` of a table read with `read_csv_table` is in its file (the header is line 1)."""
    return f"line {index + 2}"


def sheet_row(index: int) -> str:
    """Where row `index` of a raw sheet (`read_sheet` keeps the sheet's row index) is in the workbook."""
    return f"row {index + 1}"


def require_filled(table: pd.DataFrame, columns, where, place=csv_line) -> None:
    """Every cell of `columns` holds something; empty ones are named by `place(row index)` and column."""
    empty = [f"{place(index)} {column}" for index, row in table.iterrows() for column in columns
             if pd.isna(row[column]) or not str(row[column]).strip()]
    if empty:
        raise ValueError(f"{where}: empty cells ({listing(empty)})")


def read_csv_table(path: Path) -> pd.DataFrame:
    """A CSV table with every cell as text, surrounding spaces stripped (spreadsheet exports add them), and rows
    of empty cells dropped (an export's trailing `,,,,`); the index stays the row's (`csv_line`).

    An empty file, a header without rows or a file the CSV parser rejects is an error naming the file,
    never an empty dataset or a parser traceback.
    """
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty; expected a header line and one line per sample") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        reason = str(error).strip().splitlines()[-1]
        raise ValueError(f"{path} is not a readable CSV table ({reason})") from None
    table = table.set_axis([str(name).strip() for name in table.columns], axis=1).map(str.strip)
    table = table[(table != "").any(axis=1)]
    if table.empty:
        raise ValueError(f"{path} has a header line but no samples")
    return table


def read_sheet(path: Path, columns: dict[str, str], header_first_cell: str, required=()) -> pd.DataFrame:
    """The table of the first sheet of `path` whose header row starts with `header_first_cell`.

    `columns` maps our column names to the sheet's; the result has ours, in that order. Rows that are
    entirely empty (or spaces) are dropped (spreadsheets often end in a few); an empty cell of a `required`
    column (ours) in any other row is an error naming the cell.
    """
    try:
        raw = pd.read_excel(path, header=None, dtype=object)
    except (ValueError, KeyError, zipfile.BadZipFile) as error:  # what pandas and openpyxl raise on non-workbooks
        raise ValueError(f"{path} is not a readable .xlsx workbook ({type(error).__name__}: {error})") from None
    if raw.empty:
        raise ValueError(f"{path}: its first sheet is empty; expected a table whose header starts with "
                         f"{header_first_cell!r}")
    first_cells = raw.iloc[:, 0].astype(str).str.strip()
    header_rows = first_cells.index[first_cells == header_first_cell]
    if header_rows.empty:
        raise ValueError(f"{path}: no header row whose first cell is {header_first_cell!r}")
    header = header_rows[0]
    table = raw.loc[header + 1 :].set_axis([str(name).strip() for name in raw.loc[header]], axis=1)
    require_columns(table, columns.values(), path)
    table = table[list(columns.values())]
    table = table.mask(table.map(lambda cell: isinstance(cell, str) and not cell.strip())).dropna(how="all")
    if table.empty:
        raise ValueError(f"{path}: no rows under the header row ({sheet_row(header)})")
    require_filled(table, [columns[name] for name in required], path, place=sheet_row)
    return table.set_axis(list(columns), axis=1).reset_index(drop=True)


def normalize_id(value, prefix: str, width: int) -> str:
    """`'01'`, `1`, `1.0` or `'sub01'` -> `'sub01'` for prefix `'sub'` and width 2."""
    text = str(value).strip()
    digits = re.fullmatch(rf"(?:{re.escape(prefix)})?(\d+)(?:\.0+)?", text, flags=re.IGNORECASE)
    if digits is None:
        raise ValueError(f"subject {value!r} is not a subject number (expected e.g. {prefix}{'1'.zfill(width)})")
    return prefix + digits.group(1).lstrip("0").zfill(width)


def frame_numbers(cells: pd.Series) -> pd.Series:
    """Frame numbers as nullable integers; a cell that is not a non-negative whole number is missing (`<NA>`):
    a frame `49.6` is a typo or a time, not frame 50, so the caller handles it as not annotated."""
    numbers = pd.to_numeric(cells, errors="coerce")
    frames = (numbers >= 0) & (numbers < 2**31) & (numbers == numbers.round())  # inf and 1e30 are not frames
    return numbers.where(frames).round().astype("Int64")


def normalize_cells(table: pd.DataFrame) -> pd.DataFrame:
    """Emotions in lower case, action units as text ("" when absent), frame cells as frame numbers."""
    return table.assign(
        **{
            EMOTION: table[EMOTION].astype(str).str.strip().str.lower(),
            ACTION_UNITS: table[ACTION_UNITS].fillna("").astype(str).str.strip(),
            **{column: frame_numbers(table[column]) for column in FRAME_COLUMNS},
        }
    )


@dataclass(frozen=True)
class SheetLayout:
    """Where a dataset's annotation sheet is and how its columns and subject ids are spelled."""

    pattern: str
    columns: dict[str, str]
    subject_prefix: str
    subject_width: int
    header_first_cell: str = "Subject"

    def read(self, data_dir: Path, frames_root: Path, sheet: Path | None = None) -> pd.DataFrame:
        """The annotation table, with each clip's folder `frames_root/{subject}/{clip}`."""
        sheet = sheet or find_file(data_dir, self.pattern, "annotation sheet")
        table = read_sheet(sheet, self.columns, self.header_first_cell, required=(SUBJECT, CLIP, EMOTION))
        try:
            subjects = table[SUBJECT].map(lambda value: normalize_id(value, self.subject_prefix, self.subject_width))
        except ValueError as error:
            raise ValueError(f"{sheet}: {error}") from None
        clips = table[CLIP].astype(str).str.strip()
        return table.assign(
            **{
                SUBJECT: subjects,
                CLIP: clips,
                CLIP_DIR: [str(frames_root / subject / clip) for subject, clip in zip(subjects, clips)],
            }
        )
