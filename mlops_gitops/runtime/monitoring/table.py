"""The columns a monitoring signal compares, held as arrays rather than rows of text.

A column keeps what it was read as (an Arrow array from a CSV or Parquet file, a numpy array, or a list of text)
and turns it into what a signal asks for once: its numbers (float64, nulls and values that are not numbers
counted and dropped) or its text (nulls dropped). Reading CSV through pyarrow when it is installed (the
`monitoring` extra) keeps a 100,000-row window out of Python objects; without pyarrow the csv module reads it.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlops_gitops.runtime.monitoring.metrics import NULLS, SignalError

# how the CSV reader spells a null: the NULLS words in the case variants that files use
_NULL_SPELLINGS = sorted({s for word in NULLS for s in (word, word.upper(), word.title())} | {"NaN", "N/A", "n/a"})


def _is_null(text: str) -> bool:
    return text.strip().lower() in NULLS


def _parse_rows(values: Iterable[Any]) -> tuple[np.ndarray, int]:
    """Values one by one (the slow path): each row as a float (NaN where null or not a number), and how many
    were not numbers."""
    out: list[float] = []
    errors = 0
    for v in values:
        if v is None or (isinstance(v, str) and _is_null(v)):
            out.append(float("nan"))
            continue
        try:
            out.append(float(v))
        except ValueError:
            errors += 1
            out.append(float("nan"))
    return np.asarray(out, dtype=np.float64), errors


def _parse(values: Iterable[Any]) -> tuple[np.ndarray, int, int]:
    """The numbers among values, how many were null, how many were not numbers."""
    return _numbers_of(*_parse_rows(values))


def _numbers_of(rows: np.ndarray, errors: int) -> tuple[np.ndarray, int, int]:
    valid = rows[~np.isnan(rows)]
    return valid, len(rows) - len(valid) - errors, errors


# a number as float() reads one (what is not null and does not match is a data-type error)
_NUMBER = r"^\s*[-+]?((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[iI][nN][fF]([iI][nN][iI][tT][yY])?)\s*$"


def _arrow(values: Any) -> Any:
    """A list or object array of text as an Arrow string array (nulls for None), or None without pyarrow."""
    try:
        import pyarrow as pa
    except ImportError:
        return None
    try:
        return pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # values that are not text: the slow path reads them
        return None


class Column:
    """One column of a table; `numbers()` and `counts()` are computed once, on first use."""

    def __init__(self, source: Any, rows: int) -> None:
        self._source = source  # pyarrow Array/ChunkedArray, numpy array, or list of text
        self.rows = rows
        self._numbers: tuple[np.ndarray, int, int] | None = None
        self._counts: tuple[dict[str, int], int] | None = None

    def numbers(self) -> tuple[np.ndarray, int, int]:
        """(the values that are numbers, as float64; how many were null; how many were not numbers)."""
        if self._numbers is None:
            self._numbers = self._to_numbers()
        return self._numbers

    def counts(self) -> tuple[dict[str, int], int]:
        """(how often each value that is not null occurs, by its text; how many were null)."""
        if self._counts is None:
            self._counts = self._to_counts()
        return self._counts

    @property
    def kind(self) -> str:
        """numerical when (nearly: 1% slack) every value that is not null is a number, else categorical."""
        numbers, nulls, errors = self.numbers()
        return "numerical" if len(numbers) and errors <= 0.01 * max(1, self.rows - nulls) else "categorical"

    def row_values(self) -> Any:
        """Every row's value in order: float64 (NaN where null or not a number) for a numerical column, text
        (None where null) for a categorical one. For what needs rows side by side (feature importance)."""
        if self.kind == "numerical":
            return self._number_rows()[0]
        src = self._text_source()
        if isinstance(src, np.ndarray) and src.dtype.kind in "fiub":
            return [None if v != v else repr(float(v)) for v in src]
        if isinstance(src, np.ndarray | list):
            return [None if v is None or (isinstance(v, str) and _is_null(v)) else str(v) for v in src]
        import pyarrow as pa

        if pa.types.is_string(src.type) or pa.types.is_large_string(src.type):
            return _drop_nulls(src).to_pylist()
        return [None if v is None else str(v) for v in src.to_pylist()]

    def _text_source(self) -> Any:
        """The column as Arrow text where it can be (fast), else as it was given."""
        src = self._source
        if isinstance(src, list) or (isinstance(src, np.ndarray) and src.dtype.kind in "OUS"):
            converted = _arrow(src)
            if converted is not None:
                self._source = src = converted
        return src

    def _to_numbers(self) -> tuple[np.ndarray, int, int]:
        return _numbers_of(*self._number_rows())

    def _number_rows(self) -> tuple[np.ndarray, int]:
        """Each row as a float (NaN where null or not a number), and how many were not numbers."""
        src = self._source
        if isinstance(src, np.ndarray) and src.dtype.kind in "fiub":
            return src.astype(np.float64, copy=False), 0
        src = self._text_source()
        if isinstance(src, np.ndarray | list):
            return _parse_rows(src)
        import pyarrow as pa
        import pyarrow.compute as pc

        array = src
        errors = 0
        if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            array = _drop_nulls(array)
            numeric = pc.fill_null(pc.match_substring_regex(array, _NUMBER), True)
            errors = len(array) - (pc.sum(numeric).as_py() or 0)  # nulls count as numbers here
            array = pc.cast(pc.utf8_trim_whitespace(pc.if_else(numeric, array, pa.scalar(None, pa.string()))),
                            pa.float64())
        elif not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type)
                  or pa.types.is_boolean(array.type) or pa.types.is_null(array.type)):
            return _parse_rows([None if v is None else str(v) for v in array.to_pylist()])
        return np.asarray(pc.fill_null(pc.cast(array, pa.float64()), float("nan")), dtype=np.float64), errors

    def _to_counts(self) -> tuple[dict[str, int], int]:
        src = self._text_source()
        if isinstance(src, np.ndarray) and src.dtype.kind == "f":
            kept = [repr(float(v)) for v in src if v == v]
            return dict(Counter(kept)), len(src) - len(kept)
        if isinstance(src, np.ndarray | list):
            kept = [str(v) for v in src if v is not None and not (isinstance(v, str) and _is_null(v))
                    and not (isinstance(v, float) and v != v)]
            return dict(Counter(kept)), len(src) - len(kept)
        import pyarrow as pa
        import pyarrow.compute as pc

        array = _drop_nulls(src if pa.types.is_string(src.type) else pc.cast(src, pa.string()))
        found = pc.value_counts(array).to_pylist()
        counts = {row["values"]: row["counts"] for row in found if row["values"] is not None}
        return counts, self.rows - sum(counts.values())


def _drop_nulls(array: Any) -> Any:
    """Arrow text with the NULLS words (any case, any padding) made nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    null_word = pc.is_in(pc.utf8_lower(pc.utf8_trim_whitespace(array)), value_set=pa.array(list(NULLS)))
    return pc.if_else(pc.fill_null(null_word, True), pa.scalar(None, pa.string()), array)


@dataclass
class Table:
    columns: dict[str, Column]
    rows: int

    @classmethod
    def of(cls, columns: dict[str, Any]) -> Table:
        """A table of equally long columns: numpy arrays, lists of text, or Arrow arrays."""
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise SignalError(f"columns of different lengths: {sorted(lengths)}")
        rows = lengths.pop() if lengths else 0
        return cls({name: Column(values, rows) for name, values in columns.items()}, rows)

    @classmethod
    def from_arrow(cls, table: Any, skip: Sequence[str] = ()) -> Table:
        return cls({name: Column(table[name], table.num_rows) for name in table.column_names if name not in skip},
                   table.num_rows)

    @classmethod
    def read(cls, files: list[Path], what: str) -> Table:
        """CSV files with one header, as one table (`what` names them in errors)."""
        header: list[str] | None = None
        named: list[Path] = []
        for f in files:
            with f.open(encoding="utf-8", newline="") as handle:
                first = next(csv.reader(handle), None)
            if first is None:
                continue
            if header is None:
                header = first
            elif first != header:
                raise SignalError(f"{what}: {f.name} has other columns than {files[0].name}")
            named.append(f)
        if header is None:
            raise SignalError(f"{what} has no rows (an empty window)")
        try:
            table = cls._read_arrow(named, header)
        except (ImportError, ValueError):  # no pyarrow, or rows it refuses (too short or long): read them as text
            table = cls._read_text(named, header)
        if table.rows == 0:
            raise SignalError(f"{what} has no rows (an empty window)")
        return table

    @classmethod
    def _read_arrow(cls, files: list[Path], header: list[str]) -> Table:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        # every column as text: the signal decides (from the reference) whether a column is a number
        convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in header}, null_values=_NULL_SPELLINGS,
                                       strings_can_be_null=True)
        return cls.from_arrow(pa.concat_tables([pacsv.read_csv(f, convert_options=convert) for f in files]))

    @classmethod
    def _read_text(cls, files: list[Path], header: list[str]) -> Table:
        columns: dict[str, list[str]] = {c: [] for c in header}
        for f in files:
            with f.open(encoding="utf-8", newline="") as handle:
                reader = csv.reader(handle)
                next(reader, None)
                for row in reader:
                    row += [""] * (len(header) - len(row))  # a short row: its missing cells are nulls
                    for name, value in zip(header, row, strict=False):
                        columns[name].append(value)
        return cls.of(columns)
