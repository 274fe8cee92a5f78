"""Reader for the Taobao `UserBehavior.csv` event log.

The file is a CSV without header and without quoting, one event per line:
`user_id,item_id,category_id,behavior,timestamp`, where `behavior` is one of
`pv`, `cart`, `fav`, `buy` and `timestamp` is a unix time in seconds. The full
file holds about 100M lines (3.6 GB), so it is read in byte chunks cut at line
ends, each parsed by `pyarrow.csv` and validated with vectorised
`pyarrow.compute` kernels; no Python loop runs over lines.

Bad input follows the same rules as the ranking readers: a malformed line
(wrong field count, an empty line, an id that is not a non-negative decimal
integer, a timestamp that is not a decimal integer, an unknown behavior) stops
reading with a `DataFormatError` naming the file, the 1-based line number and
the defect. With `on_bad_lines="skip"` such lines are skipped, counted
(`TaobaoEvents.num_skipped_lines`) and a warning logs the count and the first
five skipped lines with their defects.
Nothing is coerced: `" 5"`, `"+5"`, `"0x10"` or `"5.0"` are defects.
"""

import contextlib
import dataclasses
import gzip
import io
import logging
import os
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import tensorflow as tf

from keras_adrec.data._files import UTF8_BOM
from keras_adrec.data._files import check_not_empty
from keras_adrec.data._files import count_lines
from keras_adrec.data._files import open_text_bytes
from keras_adrec.data.errors import DataFormatError

BEHAVIORS = ("pv", "cart", "fav", "buy")
"""Behavior names; an event's behavior code is its index here plus one.

Code 0 is kept free for "unknown" (the target position of a point)."""

COLUMN_NAMES = ("user_id", "item_id", "category_id", "behavior", "timestamp")
_ID_COLUMNS = ("user_id", "item_id", "category_id")
# At most 18 digits, so that every accepted value fits in int64.
_MAX_DIGITS = 18
_TIMESTAMP_PATTERN = r"^-?[0-9]{1,18}$"
# Skipped lines named in the warning of `on_bad_lines="skip"`.
_NUM_EXAMPLES = 5
_GZIP_MAGIC = b"\x1f\x8b"

_logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, eq=False)
class TaobaoEvents:
    """The events of a Taobao `UserBehavior.csv` file, in file order.

    Args:
        user_id: int64 array `[N]`, raw user ids.
        item_id: int64 array `[N]`, raw item ids.
        category_id: int64 array `[N]`, raw category ids.
        behavior: int8 array `[N]`, codes 1..4 for `BEHAVIORS`
            (`pv`, `cart`, `fav`, `buy`).
        timestamp: int64 array `[N]`, unix seconds.
        num_skipped_lines: int. Malformed lines skipped while reading
            (always 0 with `on_bad_lines="error"`).
        path: str or None. The file the events came from.
    """

    user_id: np.ndarray
    item_id: np.ndarray
    category_id: np.ndarray
    behavior: np.ndarray
    timestamp: np.ndarray
    num_skipped_lines: int = 0
    path: str | None = None

    def __post_init__(self):
        n = len(self.user_id)
        for name in ("item_id", "category_id", "behavior", "timestamp"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"All event arrays must have the same length. Received: "
                    f"len(user_id)={n}, len({name})="
                    f"{len(getattr(self, name))}"
                )

    @classmethod
    def from_arrays(cls, user_id, item_id, category_id, behavior, timestamp):
        """Build events from sequences; `behavior` holds names or codes.

        Example:

        >>> events = TaobaoEvents.from_arrays(
        ...     [1, 1], [10, 11], [5, 5], ["pv", "buy"], [100, 200])
        >>> events.behavior.tolist()
        [1, 4]
        """
        behavior = np.asarray(behavior)
        if behavior.dtype.kind in "US":
            lookup = {name: code + 1 for code, name in enumerate(BEHAVIORS)}
            unknown = sorted(set(behavior.tolist()) - set(lookup))
            if unknown:
                raise ValueError(
                    f"`behavior` must hold names in {BEHAVIORS}. "
                    f"Received unknown names: {unknown[:5]}"
                )
            behavior = np.array([lookup[b] for b in behavior.tolist()])
        elif behavior.size and (behavior.min() < 1 or behavior.max() > 4):
            raise ValueError(
                "`behavior` codes must be in [1, 4]. Received: "
                f"min={behavior.min()}, max={behavior.max()}"
            )
        return cls(
            user_id=np.asarray(user_id, dtype=np.int64),
            item_id=np.asarray(item_id, dtype=np.int64),
            category_id=np.asarray(category_id, dtype=np.int64),
            behavior=behavior.astype(np.int8),
            timestamp=np.asarray(timestamp, dtype=np.int64),
        )

    @property
    def num_events(self):
        return len(self.user_id)

    def __len__(self):
        return self.num_events

    def behavior_counts(self):
        """Return `{behavior name: number of events}`."""
        counts = np.bincount(self.behavior, minlength=len(BEHAVIORS) + 1)
        return {name: int(counts[i + 1]) for i, name in enumerate(BEHAVIORS)}


def read_taobao_events(path, on_bad_lines="error", block_size=64 << 20):
    """Read a Taobao `UserBehavior.csv` file.

    Args:
        path: str or path-like. The CSV file (no header); gzip-compressed
            files are recognised by their first bytes, and paths with a
            scheme (`gs://...`) go through `tf.io.gfile`.
        on_bad_lines: `"error"` or `"skip"`. What to do with a malformed line:
            raise `DataFormatError` naming file, line and defect, or skip it,
            count it in `num_skipped_lines` and log the count. Defaults to
            `"error"`.
        block_size: int. Bytes read and parsed at a time (a chunk is
            extended to the next line end). Bounds the transient memory.
            Defaults to 64 MiB.

    Returns:
        A `TaobaoEvents` in file order.

    Raises:
        FileNotFoundError: if `path` does not exist.
        DataFormatError: if the file is empty, holds no valid line, or (with
            `on_bad_lines="error"`) holds a malformed line.

    Example:

    >>> events = read_taobao_events("UserBehavior_head84k.csv")
    >>> events.num_events
    84475
    """
    if on_bad_lines not in ("error", "skip"):
        raise ValueError(
            "`on_bad_lines` must be 'error' or 'skip'. "
            f"Received: on_bad_lines={on_bad_lines!r}"
        )
    if not isinstance(block_size, int) or block_size <= 0:
        raise ValueError(
            f"`block_size` must be a positive int. Received: "
            f"block_size={block_size!r}"
        )
    path = os.fspath(path)
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise FileNotFoundError(
            f"Taobao events file {path} does not exist. Pass the path of "
            "UserBehavior.csv (user_id,item_id,category_id,behavior,"
            "timestamp; no header)."
        )
    check_not_empty(path)

    parts = []
    num_skipped = 0
    examples = []
    first_line = 1
    with _open_bytes(path) as f, _broken_stream_errors(path):
        for chunk in _line_chunks(f, block_size):
            if first_line == 1 and chunk.startswith(UTF8_BOM):
                chunk = chunk[len(UTF8_BOM) :]
            chunk = _replace_non_utf8(chunk)
            columns, defects = _parse_chunk(chunk, first_line)
            if defects:
                if on_bad_lines == "error":
                    line, column, defect = min(defects)
                    raise DataFormatError(
                        path, line, defect, column=column or None
                    )
                num_skipped += len(defects)
                examples.extend(
                    sorted(defects)[: _NUM_EXAMPLES - len(examples)]
                )
            parts.append(columns)
            first_line += chunk.count(b"\n")
            if not chunk.endswith(b"\n"):
                first_line += 1

    arrays = {
        name: np.concatenate([part[name] for part in parts])
        for name in parts[0]
    }
    if len(arrays["user_id"]) == 0:
        raise DataFormatError(
            path,
            None,
            f"no valid line ({num_skipped} malformed lines skipped)",
        )
    if num_skipped:
        _logger.warning(
            "%s: skipped %d malformed lines (on_bad_lines='skip'); first: %s",
            path,
            num_skipped,
            "; ".join(_describe(*example) for example in examples),
        )
    return TaobaoEvents(
        user_id=arrays["user_id"],
        item_id=arrays["item_id"],
        category_id=arrays["category_id"],
        behavior=arrays["behavior"],
        timestamp=arrays["timestamp"],
        num_skipped_lines=num_skipped,
        path=path,
    )


@contextlib.contextmanager
def _broken_stream_errors(path):
    """Turn a truncated or corrupt gzip stream into `DataFormatError`.

    The chunked reader loses the line where the stream broke; a line count
    (which decompresses with small reads) names it.
    """
    try:
        yield
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        count_lines(path)  # Raises, naming the line.
        raise DataFormatError(
            path, None, f"the gzip stream is corrupt ({error})"
        ) from None


def _replace_non_utf8(chunk):
    """Bytes that are not UTF-8 become U+FFFD, which fails every field's
    check, so the line is reported (or skipped) with its column."""
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return chunk.decode("utf-8", errors="replace").encode("utf-8")
    return chunk


def _open_bytes(path):
    """Open `path` for decompressed bytes; local files skip `tf.io.gfile`."""
    if "://" in path:
        return open_text_bytes(path)
    f = open(path, "rb")
    if f.read(2) == _GZIP_MAGIC:
        f.seek(0)
        return gzip.GzipFile(fileobj=f, mode="rb")
    f.seek(0)
    return f


def _line_chunks(f, block_size):
    """Yield byte chunks of about `block_size`, each ending at a line end."""
    rest = b""
    while True:
        block = f.read(block_size)
        if not block:
            if rest:
                yield rest
            return
        block = rest + block
        cut = block.rfind(b"\n")
        if cut < 0:
            rest = block
            continue
        rest = block[cut + 1 :]
        yield block[: cut + 1]


def _parse_chunk(chunk, first_line):
    """Parse and validate one chunk.

    Returns `(columns, defects)`: numpy columns of the valid rows, and a list
    of `(line number, column, defect)` for the malformed lines of the chunk
    (`column` is "" for a defect of the whole line).
    """
    # Parse with threads; if the parser dropped lines (wrong field count),
    # parse again single-threaded, where `row.number` (the 1-based line in
    # the chunk) is known.
    table, field_count_defects = _read_csv(chunk, use_threads=True)
    if field_count_defects:
        table, field_count_defects = _read_csv(chunk, use_threads=False)
    text = {name: table.column(name) for name in COLUMN_NAMES}
    num_rows = table.num_rows
    # The first defect of each row: index into `checks`, -1 if none.
    defect_of_row = np.full(num_rows, -1, dtype=np.int64)
    checks = []

    def check(ok, column, expected):
        new = ~ok & (defect_of_row < 0)
        if new.any():
            defect_of_row[new] = len(checks)
        checks.append((column, expected))

    empty = np.ones(num_rows, dtype=bool)
    for name in COLUMN_NAMES:
        empty &= _to_bool(pc.equal(pc.binary_length(text[name]), 0))
    check(~empty, "", None)
    for name in _ID_COLUMNS:
        ok = pc.and_(
            pc.ascii_is_decimal(text[name]),
            pc.less_equal(pc.binary_length(text[name]), _MAX_DIGITS),
        )
        check(_to_bool(ok), name, "a non-negative decimal integer")
    ok = pc.match_substring_regex(text["timestamp"], _TIMESTAMP_PATTERN)
    check(_to_bool(ok), "timestamp", "a decimal integer")
    behavior_index = pc.index_in(
        text["behavior"], value_set=pa.array(BEHAVIORS)
    )
    check(
        _to_bool(pc.is_valid(behavior_index)),
        "behavior",
        f"one of {', '.join(BEHAVIORS)}",
    )

    bad = defect_of_row >= 0
    defects = []
    if bad.any() or field_count_defects:
        lines = _row_lines(
            num_rows, sorted(number for number, _, _ in field_count_defects)
        )
        for row in np.flatnonzero(bad):
            column, expected = checks[defect_of_row[row]]
            if expected is None:
                defect = "empty line"
            else:
                found = text[column][int(row)].as_py()
                defect = f"expected {expected}, found `{found}`"
            defects.append((first_line + int(lines[row]) - 1, column, defect))
        defects.extend(
            (first_line + number - 1, column, defect)
            for number, column, defect in field_count_defects
        )

    keep = pa.array(~bad)
    columns = {}
    for name in _ID_COLUMNS + ("timestamp",):
        valid_text = pc.filter(text[name], keep)
        columns[name] = pc.cast(valid_text, pa.int64()).to_numpy(
            zero_copy_only=False
        )
    columns["behavior"] = (
        pc.filter(behavior_index, keep).to_numpy(zero_copy_only=False) + 1
    ).astype(np.int8)
    return columns, defects


def _read_csv(chunk, use_threads):
    """Parse `chunk` into string columns; lines with a wrong field count
    are dropped and returned as `(line or None, "", defect)`."""
    field_count_defects = []

    def handler(row):
        field_count_defects.append(
            (
                row.number,
                "",
                f"expected {row.expected_columns} fields, found "
                f"{row.actual_columns}",
            )
        )
        return "skip"

    table = pa_csv.read_csv(
        io.BytesIO(chunk),
        read_options=pa_csv.ReadOptions(
            column_names=list(COLUMN_NAMES), use_threads=use_threads
        ),
        parse_options=pa_csv.ParseOptions(
            quote_char=False,
            ignore_empty_lines=False,
            invalid_row_handler=handler,
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in COLUMN_NAMES},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return table, field_count_defects


def _describe(line, column, defect):
    where = f"line {line}"
    if column:
        where += f", column {column}"
    return f"{where}: {defect}"


def _row_lines(num_rows, field_count_lines):
    """1-based chunk line of each parsed row, given the skipped lines.

    `field_count_lines` are the sorted 1-based lines the parser dropped. Row
    `r` (0-based) is the `(r + 1)`-th kept line; a dropped line precedes it
    iff fewer than `r + 1` kept lines precede the dropped one.
    """
    dropped = np.asarray(field_count_lines, dtype=np.int64)
    kept_before_dropped = dropped - np.arange(1, len(dropped) + 1)
    rank = np.arange(1, num_rows + 1)
    return rank + np.searchsorted(kept_before_dropped, rank, side="left")


def _to_bool(array):
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=bool)
