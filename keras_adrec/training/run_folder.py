"""Run folders: the marker adrec writes into them and the rules for
replacing one.

Every folder an `adrec` command writes (a model directory of `adrec
train`, a comparison, a tuning output, an export version) carries a marker
file, `.adrec-run.json`:

```json
{"format": "keras_adrec run", "kind": "train",
 "keras_adrec_version": "0.1.0", "state": "finished",
 "started": "2026-12-07T12:00:00+00:00",
 "finished": "2026-12-07T12:03:10+00:00",
 "files": ["config.json", "curve.csv", "metrics.json", "model.keras",
           "preprocessing"]}
```

`files` lists the top-level entries the run wrote. The rules:

- An output that does not exist, or is an empty folder, is written.
- A folder holding anything else is replaced only with `--overwrite`, and
  only if it holds a marker of the same kind and no top-level entry the
  marker does not list. A folder without a marker (written by someone else,
  or by an adrec older than the marker) is never replaced: delete it
  yourself or choose another output. Exceptions, whose own files name
  them: an older export version (`assets.extra/adrec_serving.json`), an
  older `adrec tune` folder (`search_config.json`, resumed in place) and
  its `best_model/`.
- A regular file, a symbolic link, the current folder or one of its parents
  is never an output.
- The output may not equal, contain or lie inside an input of the run
  (data, validation data, model, checkpoint folder), compared on resolved
  paths.
- A replacement is staged: the new run is written into a hidden folder
  beside the output and renamed into place when it is complete; only then
  is the old run removed.

Usage problems raise `UnsafeOutputError` (a `RunExistsError`: exit status 2
in `adrec`); a failed write raises `OutputWriteError` (a
`ModelDirectoryError`: exit status 1), naming the flag and the path. The
writing itself (staging, replacing, resuming in place) is in
`keras_adrec.training.run_writes`.
"""

import datetime
import json
import os
import pathlib

from keras_adrec.version import __version__

MARKER_FILE = ".adrec-run.json"
MARKER_FORMAT = "keras_adrec run"


class ModelDirectoryError(ValueError):
    """A model directory whose files cannot be read (named in the text)."""


class OutputInUseError(FileExistsError):
    """Another run is writing the same output directory right now."""


class RunExistsError(FileExistsError):
    """The output directory holds a finished run and overwrite is off."""


class UnsafeOutputError(RunExistsError):
    """An output adrec refuses to write or replace (named in the text)."""


class OutputWriteError(ModelDirectoryError):
    """Writing the output failed (disk full, read-only, ...)."""


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"
    )


def write_marker(folder, kind, state="running", files=None, started=None):
    """Write `folder/.adrec-run.json` (see the module docstring).

    Args:
        folder: the run folder.
        kind: str. The command that writes it (`"train"`, `"compare"`,
            `"tune"`, `"export"`).
        state: `"running"` or `"finished"`.
        files: top-level names the run writes; defaults to what `folder`
            holds now.
        started: ISO time the run started; defaults to now.

    Returns:
        The marker dict.
    """
    folder = pathlib.Path(folder)
    if files is None:
        files = [p.name for p in folder.iterdir() if p.name != MARKER_FILE]
    marker = {
        "format": MARKER_FORMAT,
        "kind": kind,
        "keras_adrec_version": __version__,
        "state": state,
        "started": started or now(),
        "finished": now() if state == "finished" else None,
        "files": sorted(set(files)),
    }
    partial = folder / f".{MARKER_FILE}.{os.getpid()}"
    partial.write_text(json.dumps(marker, indent=2))
    os.replace(partial, folder / MARKER_FILE)
    return marker


def read_marker(folder):
    """The marker dict of `folder`, or None when it has none.

    Raises:
        UnsafeOutputError: the marker exists but is not adrec's JSON.
    """
    path = pathlib.Path(folder) / MARKER_FILE
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UnsafeOutputError(
            f"{folder}: its run marker {MARKER_FILE} cannot be read "
            f"({error}); refusing to replace it"
        ) from None
    if not isinstance(marker, dict) or marker.get("format") != MARKER_FORMAT:
        raise UnsafeOutputError(
            f"{folder}: {MARKER_FILE} is not an adrec run marker; refusing "
            "to replace it"
        )
    return marker


def foreign_entries(folder, marker, allowed=()):
    """Top-level names in `folder` that neither `marker` nor `allowed`
    lists (sorted). The hidden lock, staging and partial files adrec makes
    beside an owned name (`.NAME.lock`, `.NAME.partial-PID`, ...) count
    as owned."""
    owned = set(marker.get("files") or ()) | set(allowed) | {MARKER_FILE}
    return sorted(
        p.name
        for p in pathlib.Path(folder).iterdir()
        if p.name not in owned and _transient_of(p.name) not in owned
    )


def _transient_of(name):
    """`NAME` for adrec's transient `.NAME.lock`, `.NAME.partial-PID`,
    `.NAME.old-PID` or `.NAME.PID`; else None."""
    if not name.startswith("."):
        return None
    base = name[1:]
    if base.endswith(".lock"):
        return base[: -len(".lock")]
    for infix in (".partial-", ".old-", "."):
        head, sep, tail = base.rpartition(infix)
        if sep and tail.isdigit():
            return head
    return None


def _names(names, limit=5):
    shown = ", ".join(names[:limit])
    more = len(names) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def check_replaceable(target, kind, flag="--output", allowed=(), legacy=None):
    """Raise unless `target` is a run of `kind` that adrec may replace.

    Args:
        target: an existing folder.
        kind: the run kind about to replace it.
        flag: the flag that named `target`, for the message.
        allowed: top-level names the kind may hold besides those its
            marker lists.
        legacy: optional function `folder -> bool or names`: truthy for a
            folder of this kind written before the marker existed (kept
            as ours); the names it returns (if any) are the run's own.

    Raises:
        UnsafeOutputError: naming `target` and why.
    """
    target = pathlib.Path(target)
    marker = read_marker(target)
    if marker is None:
        owned = legacy(target) if legacy is not None else False
        if owned:
            files = () if isinstance(owned, bool) else tuple(owned)
            marker = {"kind": kind, "files": files}
        else:
            raise UnsafeOutputError(
                f"{flag} {target} holds no adrec run marker ({MARKER_FILE}): "
                "it was not written by adrec, or by an adrec older than the "
                "marker; refusing to replace it. Delete it yourself or "
                "choose another output"
            )
    if marker.get("kind") != kind:
        raise UnsafeOutputError(
            f"{flag} {target} holds an adrec {marker.get('kind')} run, not "
            f"a {kind} run; refusing to replace it"
        )
    foreign = foreign_entries(target, marker, allowed)
    if foreign:
        raise UnsafeOutputError(
            f"{flag} {target} holds files adrec did not write "
            f"({_names(foreign)}); refusing to replace it"
        )


def is_within(path, other):
    """True when `path` is `other` or lies inside it."""
    return path == other or other in path.parents


def check_inputs(target, inputs, flag="--output"):
    """Raise unless `target` and every input are apart (resolved paths).

    Raises:
        UnsafeOutputError: `target` equals, contains or lies inside an
            input.
    """
    resolved = pathlib.Path(target).resolve()
    for source in inputs:
        if source is None:
            continue
        real = pathlib.Path(source).resolve()
        if resolved == real:
            relation = "is"
        elif is_within(real, resolved):
            relation = "contains"
        elif is_within(resolved, real):
            relation = "lies inside"
        else:
            continue
        raise UnsafeOutputError(
            f"{flag} {target} {relation} the input {source}; choose an "
            "output apart from the inputs"
        )


def _check_not_current(target, flag):
    if is_within(pathlib.Path.cwd().resolve(), pathlib.Path(target).resolve()):
        raise UnsafeOutputError(
            f"{flag} {target} is the current folder or a parent of it; "
            "adrec writes a run into a folder of its own: name a new one, "
            "e.g. runs/rm1"
        )


def check_target_path(target, flag="--output"):
    """Raise for an output that can never be a run folder: the current
    folder or a parent of it, a regular file, a symbolic link, or a path
    under a regular file."""
    target = pathlib.Path(target)
    resolved = target.resolve()
    _check_not_current(target, flag)
    if target.is_symlink():
        raise UnsafeOutputError(
            f"{flag} {target} is a symbolic link; pass the folder it points "
            f"to ({resolved})"
        )
    if target.exists() and not target.is_dir():
        raise UnsafeOutputError(
            f"{flag} {target} is a file, not a folder; refusing to replace it"
        )
    for parent in target.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise UnsafeOutputError(
                    f"{flag} {target}: {parent} is a file, not a folder"
                )
            break


def check_output(
    target,
    overwrite=False,
    inputs=(),
    kind="train",
    flag="--output",
    allowed=(),
    legacy=None,
):
    """Refuse an output that would replace a user's files or an input.

    Args:
        target: the output folder.
        overwrite: bool. Allow replacing an earlier run of `kind`.
        inputs: paths read by the run (files or folders).
        kind, flag, allowed, legacy: as in `check_replaceable`.

    Raises:
        RunExistsError: `target` holds files and `overwrite` is False.
        UnsafeOutputError: any other rule of the module docstring.
    """
    target = pathlib.Path(target)
    _check_not_current(target, flag)
    check_inputs(target, inputs, flag)
    check_target_path(target, flag)
    if not target.is_dir() or not any(target.iterdir()):
        return
    if not overwrite:
        raise RunExistsError(
            f"{target} already holds files (a finished run?); pass "
            "--overwrite to replace it, or choose another --output."
        )
    check_replaceable(target, kind, flag, allowed=allowed, legacy=legacy)
