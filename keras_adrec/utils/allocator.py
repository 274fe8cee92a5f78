"""Opt-in allocator tuning for training with generator datasets.

The first time a process iterates a `tf.data.Dataset.from_generator`,
TensorFlow 2.21 calls glibc's `mallopt(M_TRIM_THRESHOLD, 128 KB)` and logs
"Memory patch applied: M_TRIM_THRESHOLD=128 kb was set." (once per
process). Setting a threshold by hand switches off glibc's adaptive
thresholds, so from then on every freed buffer above 128 KB goes back to
the kernel and the next one is faulted in again, page by page. Training
allocates and frees such buffers every step (activations, gradients), so
the whole process slows down, not only the input pipeline: on a small CPU
machine, training steps can take twice as long.

Nothing in keras_adrec changes the allocator on its own: the readers built
on `from_generator` (`SyntheticCriteo.dataset`, `parquet_dataset`) leave
it as TensorFlow sets it. An application opts in with one call before it
trains:

```python
from keras_adrec.utils import tune_malloc_for_training

tune_malloc_for_training()
```

The `adrec` command and the benchmarks make that call once as they start.
`restore_malloc_thresholds()` is the lower-level step: it sets the
thresholds now, and is undone if TensorFlow's patch runs later.
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
    glibc. Called before the process's first generator dataset has run,
    its effect is undone by TensorFlow's patch; `tune_malloc_for_training`
    takes care of the order.

    Returns:
        bool: whether the thresholds were set.
    """
    libc = _glibc()
    if not libc:
        return False
    trim = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    mmap = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    return bool(trim and mmap)


def _run_tensorflow_generator_patch():
    """Run one tiny generator dataset, so TensorFlow's patch is applied now.

    TensorFlow patches the allocator once per process, as its first
    generator dataset starts; afterwards generator datasets leave it alone.
    """
    import tensorflow as tf

    def one_element():
        yield 0

    dataset = tf.data.Dataset.from_generator(
        one_element, output_signature=tf.TensorSpec((), tf.int32)
    )
    for _ in dataset:
        pass


def tune_malloc_for_training():
    """Keep freed memory with the process for the rest of its training.

    An explicit, process-wide setting for applications (the `adrec`
    command and the benchmarks call it once as they start); the library
    never calls it. Lets TensorFlow apply its one-time generator-dataset
    allocator patch at once (by running a one-element generator dataset),
    then undoes it with `restore_malloc_thresholds()`, so the thresholds
    stay at glibc's adaptive ceilings through every later generator
    dataset. A no-op where the C library is not glibc.

    Returns:
        bool: whether the thresholds were set.

    Example:

    ```python
    from keras_adrec.data import parquet_dataset
    from keras_adrec.utils import tune_malloc_for_training

    tune_malloc_for_training()
    model.fit(parquet_dataset(files, batch_size=1024))
    ```
    """
    if not _glibc():
        return False
    _run_tensorflow_generator_patch()
    return restore_malloc_thresholds()
