"""UID lists: robust reading (CRLF, no final newline, blanks, spaces), duplicates and absent UIDs are errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnet_accept.data.uids import UidList, format_uid_text, parse_uid_text, read_uid_file, require_present
from vnet_accept.errors import DataError

component = st.integers(0, 10**24).map(str)  # str() of an int never has a leading zero
uid = st.lists(component, min_size=2, max_size=10).map(".".join)
uid_lists = st.lists(uid, min_size=1, max_size=12, unique=True)
line_end = st.sampled_from(["\n", "\r\n", "\r"])
padding = st.sampled_from(["", " ", "  ", "\t", " \t "])


@settings(max_examples=60, deadline=None)
@given(uids=uid_lists, data=st.data())
def test_any_formatting_of_a_uid_list_reads_back_the_same_uids_in_order(uids, data):
    parts = []
    for value in uids:
        parts.append(data.draw(st.lists(padding.flatmap(lambda p: line_end.map(lambda e: p + e)), max_size=2)))
        parts.append([data.draw(padding) + value + data.draw(padding) + data.draw(line_end)])
    text = "".join("".join(p) for p in parts)
    if data.draw(st.booleans()):
        text = text.rstrip("\r\n")  # the port's test_uids.txt lacks its final newline
    if data.draw(st.booleans()):
        text = "\ufeff" + text
    assert parse_uid_text(text).uids == tuple(uids)


@settings(max_examples=40, deadline=None)
@given(uids=uid_lists, data=st.data())
def test_a_duplicate_is_an_error_naming_it_and_its_lines(uids, data):
    duplicate = data.draw(st.sampled_from(uids))
    position = data.draw(st.integers(0, len(uids)))
    listed = uids[:position] + [duplicate] + uids[position:]
    with pytest.raises(DataError, match="duplicate") as info:
        parse_uid_text(format_uid_text(listed), "split.txt")
    first = listed.index(duplicate) + 1
    second = listed.index(duplicate, first) + 1
    assert f"{duplicate} (lines {first} and {second})" in str(info.value)
    assert str(info.value).startswith("split.txt")


@pytest.mark.parametrize("line", ["1.2.3 4.5.6", "1.2.x", "uid: 1.2.3", "1..2", ".1.2"])
def test_a_line_that_is_not_a_uid_is_an_error_naming_file_and_line(line):
    with pytest.raises(DataError, match=r"uids\.txt, line 2: .* is not a series UID"):
        parse_uid_text(f"1.2.3\n{line}\n", "uids.txt")


def test_an_empty_list_is_an_error():
    with pytest.raises(DataError, match="no UIDs"):
        parse_uid_text("\n  \r\n", "empty.txt")


def test_a_missing_or_binary_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read the UID file .*nope.txt"):
        read_uid_file(tmp_path / "nope.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe1.2.3")
    with pytest.raises(DataError, match="not UTF-8"):
        read_uid_file(tmp_path / "bin.txt")


def test_uids_absent_from_the_dataset_are_named():
    uids = UidList(("1.1", "1.2", "1.3", "1.4"), "test_uids.txt")
    with pytest.raises(DataError, match=r"2 of 4 UIDs from test_uids.txt are not in the dataset: 1.2, 1.4"):
        require_present(uids, {"1.1", "1.3"}, "the dataset")
    require_present(uids, {"1.1", "1.2", "1.3", "1.4", "9.9"}, "the dataset")


def test_describe_reports_the_count_and_source():
    assert UidList(("1.1",), "a.txt").describe() == "1 UID from a.txt"
    assert UidList(("1.1", "1.2"), "a.txt").describe() == "2 UIDs from a.txt"


def test_the_reference_split_reads_134_uids_with_or_without_its_final_newline(shared_dir, tmp_path):
    reference = shared_dir / "reference" / "test_uids.txt"
    if not reference.is_file():
        pytest.skip(f"{reference} is absent; pass --shared-dir pointing at a shared folder with reference/")
    full = read_uid_file(reference)
    assert len(full) == 134
    stripped = tmp_path / "test_uids.txt"
    stripped.write_bytes(reference.read_bytes().rstrip(b"\r\n").replace(b"\n", b"\r\n"))
    assert read_uid_file(stripped).uids == full.uids
    train = read_uid_file(shared_dir / "reference" / "train_uids.txt")
    assert len(train) == 754 and not set(train.uids) & set(full.uids)
