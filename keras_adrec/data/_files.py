"""Finding, opening and counting the lines of input text files.

Paths go through `tf.io.gfile`, so local files and the file systems TF knows
(gs://, ...) both work. Gzip files are recognised by their first two bytes,
whatever their name.
"""

import contextlib
import functools
import gzip
import os
import re
import zlib

import tensorflow as tf

from keras_adrec.data.errors import DataFormatError
from keras_adrec.data.errors import NoDataFilesError

_GZIP_MAGIC = b"\x1f\x8b"
# Some tools (Excel, PowerShell) open a UTF-8 text file with a byte order
# mark; the readers accept and drop it at the start of a file.
UTF8_BOM = b"\xef\xbb\xbf"
_CHUNK_BYTES = 16 * 1024 * 1024
_GLOB_CHARS = re.compile(r"[*?\[]")
# Descriptions written beside data files (e.g. by SyntheticCriteo.write_tsv);
# a directory listing skips them.
_SIDECAR_NAMES = ("README.md", "metadata.json")


def natural_key(path):
    """Sort key that orders `day_2` before `day_10`."""
    name = os.path.basename(path)
    parts = re.split(r"(\d+)", name)
    return [int(p) if p.isdigit() else p for p in parts], path


def resolve_files(paths):
    """Expand `paths` to the list of data files, in time order.

    Args:
        paths: a path (str or os.PathLike) or a list of them. Each is a
            file, a directory (its non-hidden files, in natural name order,
            e.g. `day_0` .. `day_23`, without the `README.md` and
            `metadata.json` descriptions that may sit beside them) or a
            glob pattern (its matches, in natural order). Files given
            explicitly keep the given order.

    Returns:
        A list of file paths (str).

    Raises:
        FileNotFoundError: for a missing path or no paths at all.
        NoDataFilesError: (a `DataFormatError` and a `FileNotFoundError`)
            for a directory without data files or a pattern without
            matches.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise FileNotFoundError("No data paths were given.")
    files = []
    for path in paths:
        if tf.io.gfile.isdir(path):
            names = [
                n.rstrip("/")
                for n in tf.io.gfile.listdir(path)
                if not n.startswith(".") and n not in _SIDECAR_NAMES
            ]
            found = [
                os.path.join(path, n)
                for n in names
                if not tf.io.gfile.isdir(os.path.join(path, n))
            ]
            if not found:
                raise NoDataFilesError(
                    path, None, "the directory contains no data files"
                )
            files.extend(sorted(found, key=natural_key))
        elif tf.io.gfile.exists(path):
            files.append(path)
        elif _GLOB_CHARS.search(path):
            found = [
                p for p in tf.io.gfile.glob(path) if not tf.io.gfile.isdir(p)
            ]
            if not found:
                raise NoDataFilesError(path, None, "no data files match")
            files.extend(sorted(found, key=natural_key))
        else:
            raise FileNotFoundError(f"Data file {path} does not exist.")
    return files


def is_gzip(path):
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def compression_type(path):
    """The `compression_type` of `tf.data.TextLineDataset` for `path`."""
    return "GZIP" if is_gzip(path) else ""


def open_text_bytes(path):
    """Open `path` for reading decompressed bytes (a context manager)."""
    raw = tf.io.gfile.GFile(path, "rb")
    if is_gzip(path):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    return raw


@contextlib.contextmanager
def compressed_stream_errors(path, line):
    """Turn a broken gzip stream inside the block into `DataFormatError`.

    Args:
        path: the file being read.
        line: function returning the 1-based line being read when the
            stream broke.
    """
    try:
        yield
    except EOFError:
        raise DataFormatError(
            path,
            line(),
            "the compressed stream ends early: the gzip file is truncated",
        ) from None
    except (zlib.error, gzip.BadGzipFile) as error:
        raise DataFormatError(
            path, line(), f"the gzip stream is corrupt ({error})"
        ) from None


def has_utf8_bom(path):
    """Whether `path` (decompressed) starts with a UTF-8 byte order mark."""
    with compressed_stream_errors(path, lambda: 1), open_text_bytes(path) as f:
        return f.read(len(UTF8_BOM)) == UTF8_BOM


def read_first_lines(path, count):
    """Return up to `count` first lines of `path` (decompressed), as str.

    Line ends ("\\n" or "\\r\\n") are removed, as `TextLineDataset` does,
    and so is a UTF-8 byte order mark at the start of the file.
    """
    lines = []
    with (
        compressed_stream_errors(path, lambda: len(lines) + 1),
        open_text_bytes(path) as f,
    ):
        for _ in range(count):
            line = f.readline()
            if not line:
                break
            if line.endswith(b"\n"):
                line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if not lines and line.startswith(UTF8_BOM):
                line = line[len(UTF8_BOM) :]
            lines.append(line.decode("utf-8", errors="replace"))
    return lines


def check_not_empty(path):
    """Raise `DataFormatError` if `path` holds no bytes (after gunzip)."""
    with compressed_stream_errors(path, lambda: 1), open_text_bytes(path) as f:
        if not f.read(1):
            raise DataFormatError(path, None, "the file is empty")


def count_lines(path):
    """Number of lines `tf.data.TextLineDataset` yields for `path`.

    Streams the file in 16 MiB chunks: memory stays flat for any size. A
    gzip file is decompressed to its end, so a truncated or corrupt stream
    raises `DataFormatError` here (`TextLineDataset` stops silently at a
    truncated stream). The count is remembered for the file's path, size
    and modification time: the training and validation splits of one file
    read it once.

    Raises:
        DataFormatError: a gzip stream is truncated or corrupt.
    """
    info = tf.io.gfile.stat(path)
    return _count_lines(path, info.length, info.mtime_nsec)


@functools.lru_cache(maxsize=1024)
def _count_lines(path, size, mtime):
    del size, mtime  # Only the cache key.
    lines = 0
    last = b""
    with (
        compressed_stream_errors(path, lambda: lines + 1),
        open_text_bytes(path) as f,
    ):
        # `read1` hands over what was decompressed before a broken end, so
        # the error names the line where the stream breaks.
        read = getattr(f, "read1", f.read)
        while True:
            chunk = read(_CHUNK_BYTES)
            if not chunk:
                break
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last and last != b"\n":
        lines += 1
    return lines
