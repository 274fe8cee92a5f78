"""The error raised for malformed input data, and its bridge from tf.data.

Readers validate every line inside the `tf.data` graph. When a line is
malformed and the policy is `on_bad_lines="error"`, the graph raises a
`tf.errors.InvalidArgumentError` whose message carries one line of the form

    DataFormatError: /data/day_0, line 12, column I3: expected an integer
    count, found `1.5`

(file, 1-based line number in that file, column where one applies, defect).
`DataFormatError.from_exception` turns such an error back into a
`DataFormatError`, and `raise_data_format_errors()` does so around a block of
code, so callers (the command line) can catch one Python exception type.
"""

import contextlib
import re

import tensorflow as tf

# The message a reader's graph puts in its assertion, after
# "assertion failed: [" and before "]". TF escapes quotes and backslashes
# in it (C escaping), so messages avoid quotes and use backticks instead.
_MESSAGE_PREFIX = "DataFormatError: "
_MESSAGE_PATTERN = re.compile(
    r"DataFormatError: (?P<file>.+?)(?:, line (?P<line>\d+)"
    r"(?:, column (?P<column>[^:,]+))?)?: (?P<defect>.*)"
)
_ASSERT_PATTERN = re.compile(r"assertion failed: \[(?P<body>.*)\]$", re.M)
_C_ESCAPE = re.compile(r"\\([0-7]{3}|.)")


class DataFormatError(ValueError):
    """Input data does not follow its format.

    Args:
        file: str. The file that holds the defect.
        line: int or None. 1-based line number in `file`; None for defects
            of the whole file (an empty file).
        defect: str. What is wrong, e.g. "expected 0 or 1, found `2`".
        column: str or None. The column name, where the defect is in one
            field (e.g. "I3", "C5", "label", "click").

    `str(error)` is one line: "FILE, line N, column C: DEFECT".
    """

    def __init__(self, file, line, defect, column=None):
        self.file = str(file)
        self.line = line
        self.defect = defect
        self.column = column
        super().__init__(self._describe())

    def _describe(self):
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.defect}"

    def __reduce__(self):
        return (
            type(self),
            (self.file, self.line, self.defect, self.column),
        )

    @classmethod
    def from_exception(cls, error):
        """Return the `DataFormatError` carried by `error`, or None.

        Args:
            error: an exception, typically a `tf.errors.InvalidArgumentError`
                raised while iterating a reader's dataset (directly or
                through `model.fit`).

        Returns:
            A `DataFormatError` (the same object if `error` is one already),
            or None when `error` does not come from a reader's check.
        """
        if isinstance(error, DataFormatError):
            return error
        text = getattr(error, "message", None) or str(error)
        if _MESSAGE_PREFIX not in text:
            return None
        body = text
        match = _ASSERT_PATTERN.search(text)
        if match:
            body = _c_unescape(match.group("body"))
        match = _MESSAGE_PATTERN.search(body)
        if match is None:
            return None
        return cls(
            file=match.group("file"),
            line=int(match.group("line")) if match.group("line") else None,
            defect=match.group("defect"),
            column=match.group("column"),
        )


class NoDataFilesError(DataFormatError, FileNotFoundError):
    """A directory or pattern names no data file.

    A `DataFormatError` (so the command line reports it as a data error,
    exit status 1) and a `FileNotFoundError` (what `resolve_files` raised
    before). `str(error)` is "PATH: DEFECT".
    """


@contextlib.contextmanager
def raise_data_format_errors():
    """Re-raise a reader's data error inside the block as `DataFormatError`.

    Example:

    ```python
    with keras_adrec.data.raise_data_format_errors():
        model.fit(dataset)
    ```

    Other errors pass through unchanged.
    """
    try:
        yield
    except tf.errors.OpError as error:
        data_error = DataFormatError.from_exception(error)
        if data_error is None:
            raise
        raise data_error from error


def graph_message(file, line, column, defect, prefix=_MESSAGE_PREFIX):
    """Build assertion messages (tf.string) inside a graph.

    Args:
        file: scalar tf.string.
        line: integer tensor [K] (or scalar), 1-based.
        column: tf.string [K], "" when the defect is not in one field.
        defect: tf.string [K].
        prefix: str. Put first; the default marks a `DataFormatError`.
    """
    column_part = tf.where(
        tf.equal(column, ""), "", tf.strings.join([", column ", column])
    )
    return tf.strings.join(
        [
            prefix,
            file,
            ", line ",
            tf.strings.as_string(line),
            column_part,
            ": ",
            defect,
        ]
    )


def _c_unescape(text):
    """Undo TF's C escaping (quotes, backslashes, octal bytes) of a message."""
    simple = {"n": b"\n", "t": b"\t", "r": b"\r"}
    out = bytearray()
    position = 0
    for match in _C_ESCAPE.finditer(text):
        out += text[position : match.start()].encode("utf-8")
        code = match.group(1)
        if len(code) == 3:
            out.append(int(code, 8))
        else:
            out += simple.get(code, code.encode("utf-8"))
        position = match.end()
    out += text[position:].encode("utf-8")
    return out.decode("utf-8", errors="replace")
