"""`restore_malloc_thresholds` and the readers that call it.

TensorFlow sets glibc's trim threshold to 128 KB the first time a process
runs a `from_generator` dataset; the readers built on `from_generator`
undo it as their generator starts (see `keras_adrec/utils/allocator.py`).
"""

import platform

import pytest

from keras_adrec.data import parquet
from keras_adrec.data import synthetic
from keras_adrec.utils import allocator
from keras_adrec.utils import restore_malloc_thresholds


class _FakeLibc:
    def __init__(self, result=1):
        self.calls = []
        self.result = result

    def mallopt(self, parameter, value):
        self.calls.append((parameter, value))
        return self.result


def test_sets_both_thresholds_to_the_adaptive_ceilings(monkeypatch):
    libc = _FakeLibc()
    monkeypatch.setattr(allocator, "_glibc", lambda: libc)
    assert restore_malloc_thresholds() is True
    assert libc.calls == [(-1, 64 * 1024 * 1024), (-3, 32 * 1024 * 1024)]


def test_reports_a_refused_setting(monkeypatch):
    monkeypatch.setattr(allocator, "_glibc", lambda: _FakeLibc(result=0))
    assert restore_malloc_thresholds() is False


def test_no_op_without_glibc(monkeypatch):
    monkeypatch.setattr(allocator, "_glibc", lambda: False)
    assert restore_malloc_thresholds() is False


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only"
)
def test_glibc_accepts_the_thresholds():
    assert restore_malloc_thresholds() is True


def _count_calls(monkeypatch, module):
    calls = []
    monkeypatch.setattr(
        module, "restore_malloc_thresholds", lambda: calls.append(1)
    )
    return calls


def test_synthetic_dataset_restores_when_its_generator_starts(monkeypatch):
    calls = _count_calls(monkeypatch, synthetic)
    generator = synthetic.SyntheticCriteo(rows_per_day=200, num_days=1)
    dataset = generator.dataset(days=[0], batch_size=64)
    assert calls == []  # building the pipeline runs no generator
    batches = list(dataset)
    assert len(batches) == 4 and len(calls) == 1


def test_parquet_dataset_restores_when_its_generator_starts(
    monkeypatch, tmp_path
):
    generator = synthetic.SyntheticCriteo(rows_per_day=300, num_days=1)
    files = generator.write_parquet(str(tmp_path))
    calls = _count_calls(monkeypatch, parquet)
    rows = sum(
        int(label.shape[0])
        for _, label in parquet.parquet_dataset(files, batch_size=128)
    )
    assert rows == 300 and len(calls) == 1
