"""A UTF-8 byte order mark at the start of a data file is accepted.

Spreadsheet programs and some exporters write one; the readers drop it
from the file's first line (the header, or the first data row) and read
the rows exactly as without it.
"""

import gzip

import numpy as np
import pytest

from keras_adrec.data import DataFormatError
from keras_adrec.data import avazu_dataset
from keras_adrec.data import criteo_dataset
from keras_adrec.data import raise_data_format_errors
from keras_adrec.data import read_taobao_events
from tests.data import test_avazu
from tests.data import test_criteo

BOM = b"\xef\xbb\xbf"


def _write(path, text, bom=True, compress=False):
    data = (BOM if bom else b"") + text.encode("utf-8")
    if compress:
        data = gzip.compress(data)
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("compress", [False, True])
def test_criteo_tsv_first_row_after_a_bom(tmp_path, compress):
    lines = test_criteo.make_lines(50)
    text = "".join(line + "\n" for line in lines)
    name = "day_0.gz" if compress else "day_0"
    path = _write(tmp_path / name, text, compress=compress)
    dense, categorical, label = test_criteo.collect(
        criteo_dataset(path, batch_size=16)
    )
    test_criteo.assert_rows_equal(dense, categorical, label, lines)


def test_criteo_shuffled_rows_after_a_bom(tmp_path):
    # Row 0 lands anywhere in a shuffled batch; it still loses the BOM.
    lines = test_criteo.make_lines(40, seed=1)
    path = _write(tmp_path / "day_0", "".join(ln + "\n" for ln in lines))
    dense, categorical, label = test_criteo.collect(
        criteo_dataset(path, batch_size=64, shuffle_buffer=40, seed=3)
    )
    found = sorted(map(tuple, categorical))
    assert found == sorted(
        tuple(test_criteo.python_parse(ln)[2]) for ln in lines
    )


def test_criteo_bom_inside_the_file_is_a_bad_line(tmp_path):
    # Only the start of a file may carry a byte order mark; elsewhere the
    # bytes are data, and the malformed line is named.
    lines = test_criteo.make_lines(3, seed=2)
    text = lines[0] + "\n" + BOM.decode("utf-8") + lines[1] + "\n"
    path = _write(tmp_path / "day_0", text + lines[2] + "\n", bom=False)
    with pytest.raises(DataFormatError) as info:
        with raise_data_format_errors():
            test_criteo.collect(criteo_dataset(path, batch_size=8))
    assert info.value.line == 2


def test_avazu_csv_header_after_a_bom(tmp_path):
    lines = test_avazu.make_lines(30)
    text = "".join(ln + "\n" for ln in [test_avazu.HEADER] + lines)
    path = _write(tmp_path / "train.csv", text)
    dense, categorical, label = test_avazu.collect(
        avazu_dataset(path, batch_size=8)
    )
    test_avazu.assert_rows_equal(dense, categorical, label, lines)


def test_taobao_csv_first_event_after_a_bom(tmp_path):
    text = "1,10,100,pv,1511544070\n2,20,200,buy,1511544071\n"
    with_bom = read_taobao_events(_write(tmp_path / "a.csv", text))
    without = read_taobao_events(_write(tmp_path / "b.csv", text, bom=False))
    assert with_bom.num_events == 2
    np.testing.assert_array_equal(with_bom.user_id, without.user_id)
    np.testing.assert_array_equal(with_bom.behavior, without.behavior)
    np.testing.assert_array_equal(with_bom.timestamp, without.timestamp)
