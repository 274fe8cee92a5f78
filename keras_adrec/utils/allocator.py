"""Undo TensorFlow's allocator patch for generator datasets.

The first time a process iterates a `tf.data.Dataset.from_generator`,
TensorFlow 2.21 calls glibc's `mallopt(M_TRIM_THRESHOLD, 128 KB)` and logs
"Memory patch applied: M_TRIM_THRESHOLD=128 kb was set." Setting a
threshold by hand switches off glibc's adaptive thresholds, so from then on
every freed buffer above 128 KB goes back to the kernel and the next one is
faulted in again, page by page. Training allocates and frees such buffers
every step (activations, gradients), so the whole process slows down, not
only the input pipeline.

Measured on a 2-core machine (`adrec compare`'s data, one `dot` and one
`adrec` run with their evaluations): 104 s wall, 40 s of it system time
and 8.9 million minor page faults with the patch; 37 s, 4.8 s and 0.9
million after `restore_malloc_thresholds()`. Training steps alone went from
9.6 s to 4.9 s (dot) and 21.1 s to 10.6 s (Ad-Rec).

The readers that use `from_generator` (`SyntheticCriteo.dataset`,
`parquet_dataset`) call `restore_malloc_thresholds()` when their generator
starts, which is after TensorFlow has applied its patch (it does so once
per process).
"""

import ctypes
import ctypes.util
import platform

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc's own ceilings for its adaptive thresholds on 64-bit machines:
# DEFAULT_MMAP_THRESHOLD_MAX (4 MiB * sizeof(long)), and a trim threshold of
# twice the mmap threshold, which is what the adaptation sets.
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES

_libc = None


def _glibc():
    global _libc
    if _libc is None:
        _libc = False
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            library = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            if hasattr(library, "mallopt"):
                _libc = library
    return _libc


def restore_malloc_thresholds():
    """Raise glibc's trim and mmap thresholds to their adaptive ceilings.

    Undoes the 128 KB `M_TRIM_THRESHOLD` that TensorFlow sets when a
    generator dataset first runs (see the module docstring): freed memory up
    to 64 MiB stays with the process, and blocks below 32 MiB come from the
    heap instead of fresh `mmap` pages. A no-op where the C library is not
    glibc.

    Returns:
        bool: whether the thresholds were set.

    Example:

    ```python
    for batch in tf.data.Dataset.from_generator(rows, output_signature=spec):
        ...
    keras_adrec.utils.restore_malloc_thresholds()
    ```
    """
    libc = _glibc()
    if not libc:
        return False
    trim = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    mmap = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    return bool(trim and mmap)
