"""Writing run folders by the rules of `keras_adrec.training.run_folder`:
`staged_output` (a run written beside its output and renamed into place,
the old run removed only after), `prepare_in_place` (a resumable run that
writes into its own folder) and the one-line errors of a failed write.
"""

import contextlib
import errno
import fcntl
import os
import pathlib
import shutil

from keras_adrec.training.run_folder import MARKER_FILE
from keras_adrec.training.run_folder import OutputInUseError
from keras_adrec.training.run_folder import OutputWriteError
from keras_adrec.training.run_folder import UnsafeOutputError
from keras_adrec.training.run_folder import check_inputs
from keras_adrec.training.run_folder import check_output
from keras_adrec.training.run_folder import check_replaceable
from keras_adrec.training.run_folder import check_target_path
from keras_adrec.training.run_folder import is_within
from keras_adrec.training.run_folder import read_marker
from keras_adrec.training.run_folder import write_marker

# Errors of a write that failed because of the output's file system, not
# because of the data: the flag and the path are what to name.
_WRITE_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EEXIST,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EFBIG,
}


def prepare_in_place(
    folder,
    kind,
    names,
    overwrite=False,
    inputs=(),
    flag="--output",
    legacy=None,
):
    """Check and mark a run folder written in place (a resumable run).

    A run that resumes in its own folder (`adrec tune`) is not staged: it
    writes only `names` there. The folder must be new, empty, or a run of
    `kind` (a marker, or `legacy(folder)` for one written before markers)
    holding nothing else, whether the run resumes or, with `overwrite`,
    starts over; then the marker is written in state `running`.

    Args:
        folder: the output folder.
        kind: str, the marker's kind.
        names: the top-level names the run writes.
        overwrite, inputs, flag, legacy: as in `check_output`.

    Returns:
        The marker's `started` time, for `write_marker` at the end.

    Raises:
        UnsafeOutputError: the folder may not be written.
        OutputWriteError: the folder cannot be created or marked.
    """
    folder = pathlib.Path(folder)
    check_target_path(folder, flag)
    check_inputs(folder, inputs, flag)
    started = None
    if folder.is_dir() and any(folder.iterdir()):
        marker = read_marker(folder)
        if marker is None and not (legacy is not None and legacy(folder)):
            raise UnsafeOutputError(
                f"{flag} {folder} holds files but no adrec run marker "
                f"({MARKER_FILE}): it is not an adrec {kind} run; refusing "
                "to write into it. Choose a new or empty folder"
            )
        check_replaceable(folder, kind, flag, allowed=names, legacy=legacy)
        if marker is not None and not overwrite:
            started = marker.get("started")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return write_marker(folder, kind, files=names, started=started)[
            "started"
        ]
    except OSError as error:
        raise write_error(error, folder, flag) from None


def is_write_error(error, *paths):
    """True when `error` (an `OSError`) is a failed write of the output:
    an errno of the file system, or a file name under one of `paths`."""
    if not isinstance(error, OSError):
        return False
    filename = getattr(error, "filename", None)
    if filename:
        name = pathlib.Path(os.fspath(filename)).absolute()
        for path in paths:
            if is_within(name, pathlib.Path(path).absolute()):
                return True
        if not isinstance(error, FileExistsError):
            return False
    return error.errno in _WRITE_ERRNOS


def write_error(error, target, flag="--output"):
    """`OutputWriteError` naming `flag`, `target` and the OS's reason."""
    reason = error.strerror or str(error)
    name = errno.errorcode.get(error.errno, "")
    return OutputWriteError(
        f"cannot write {flag} {target}: {reason}"
        + (f" ({name})" if name else "")
        + "; nothing was replaced"
    )


@contextlib.contextmanager
def staged_output(
    target,
    overwrite=False,
    enabled=True,
    kind="train",
    inputs=(),
    flag="--output",
    legacy=None,
):
    """Write a run into a hidden folder beside `target`; rename on success.

    While the block runs, a lock (`.NAME.lock` beside `target`, an
    advisory `flock` that dies with the process) refuses a second run
    into the same `target`. The staging folder holds a marker in state
    `running`; when the block ends normally the marker turns `finished`,
    the staging folder is renamed to `target`, and only then is an old
    `target` removed (it must pass `check_output`). When the block raises,
    the staging folder is removed and `target` is left as it was. A reader
    never sees a half-written run.

    Args:
        target: the output folder.
        overwrite: bool. Replace an earlier run of `kind` in `target`.
        enabled: bool. False yields `target` itself and does nothing
            (a non-chief worker of a distributed run writes nothing).
        kind: str, the marker's kind.
        inputs: paths the run reads, which `target` must stay apart from.
        flag: the flag that named `target`, for messages.
        legacy: as in `check_replaceable`.

    Yields:
        The `pathlib.Path` to write into.

    Raises:
        OutputInUseError: another process holds the lock.
        RunExistsError: `target` holds files and `overwrite` is False.
        UnsafeOutputError: `target` may not be written or replaced.
        OutputWriteError: a write into the output failed.
    """
    target = pathlib.Path(target)
    if not enabled:
        yield target
        return
    check_target_path(target, flag)
    parent = target.resolve().parent
    lock_path = parent / f".{target.name}.lock"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        lock = open(lock_path, "a+")
    except OSError as error:
        raise write_error(error, target, flag) from None
    with lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise OutputInUseError(
                f"Another adrec run ({holder}) is writing {target} now; "
                "wait for it or choose another --output."
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        try:
            check_output(
                target,
                overwrite=overwrite,
                inputs=inputs,
                kind=kind,
                flag=flag,
                legacy=legacy,
            )
            _remove_stale_staging(parent, target.name)
            staging = parent / f".{target.name}.partial-{os.getpid()}"
            try:
                staging.mkdir()
                started = write_marker(staging, kind, files=())["started"]
            except OSError as error:
                _remove_own(staging)
                raise write_error(error, target, flag) from None
            try:
                yield staging
                write_marker(staging, kind, "finished", started=started)
                replace_folder(staging, target, flag)
            except OSError as error:
                if is_write_error(error, staging, target):
                    raise write_error(error, target, flag) from None
                raise
            finally:
                _remove_own(staging)
        finally:
            lock_path.unlink(missing_ok=True)


def _remove_own(folder):
    """Remove a staging folder this module made (marker or empty)."""
    folder = pathlib.Path(folder)
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)


def _remove_stale_staging(parent, name):
    """Remove staging folders of killed runs: only those holding a
    marker (or nothing), never a user's look-alike."""
    for stale in parent.glob(f".{name}.partial-*"):
        if not stale.is_dir() or stale.is_symlink():
            continue
        try:
            ours = read_marker(stale) is not None or not any(stale.iterdir())
        except UnsafeOutputError:
            ours = False
        if ours:
            _remove_own(stale)


def replace_folder(staging, target, flag="--output"):
    """Rename `staging` to `target`, removing an old `target` after."""
    old = None
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    elif target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, old)
    try:
        os.rename(staging, target)
    except OSError:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        try:
            shutil.rmtree(old)
        except OSError as error:
            raise OutputWriteError(
                f"{flag} {target} holds the new run, but the old one, moved "
                f"to {old}, could not be removed ({error.strerror or error})"
                "; delete it yourself"
            ) from None
