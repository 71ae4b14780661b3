"""Series-UID lists (the port's ``test_uids.txt`` / ``train_uids.txt``), read robustly (SPEC §4.3).

The port's own reader drops the last line of a file that lacks its final newline, so it evaluates 133 of the
134 test scans without saying so. Here a UID file is read as text lines:

* a missing final newline, CRLF or CR line ends, a UTF-8 byte-order mark, blank lines and spaces or tabs around
  a UID are all tolerated;
* a line that is not a DICOM UID (digits and dots, e.g. ``1.3.6.1.4.1.14519.5.2.1.6279.6001.1057…``) is an
  error naming the file and line;
* a UID listed twice is an error naming the UID and both lines (the port would process the scan twice and
  count its tiles twice);
* a UID that the dataset does not have is an error naming it (:func:`require_present`).

Whoever uses a list reports ``len(uids)`` - the count actually used - next to its source.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vnet_accept.errors import DataError

#: A DICOM UID: dot-separated groups of digits (PS3.5 §9.1; we do not insist on the 64-character limit).
UID_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)*$")
#: How many offending UIDs an error message lists before it says "and N more".
MAX_LISTED = 5
#: How many trailing characters name a scan in short: LUNA16's 888 scans all differ in their last 8 digits, while
#: two of them share their last 6 (…411210).
SHORT_UID = 8


@dataclass(frozen=True)
class UidList:
    """An ordered, duplicate-free list of series UIDs and where it came from (a file path or a description)."""

    uids: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.uids)

    def __iter__(self):
        return iter(self.uids)

    def describe(self) -> str:
        """``"134 UIDs from reference/test_uids.txt"`` - the count used and its source, for every report."""
        return f"{len(self.uids)} UID{'s' if len(self.uids) != 1 else ''} from {self.source}"


def short_uid(uid: str) -> str:
    """``"…83833210"``: a UID's last :data:`SHORT_UID` characters, the one short form wherever a scan is named in
    little space."""
    return uid if len(uid) <= SHORT_UID else "…" + uid[-SHORT_UID:].lstrip(".")


def parse_uid_text(text: str, source: str = "<text>") -> UidList:
    """Parse the contents of a UID file (see the module docstring for what is tolerated and what is an error)."""
    text = text.removeprefix("\ufeff")
    seen: dict[str, int] = {}
    duplicates: list[str] = []
    uids: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        uid = line.strip()
        if not uid:
            continue
        if not UID_PATTERN.match(uid):
            raise DataError(f"{source}, line {lineno}: {uid[:80]!r} is not a series UID (expected digits and "
                            "dots, one UID per line); fix or remove that line")
        if uid in seen:
            duplicates.append(f"{uid} (lines {seen[uid]} and {lineno})")
            continue
        seen[uid] = lineno
        uids.append(uid)
    if duplicates:
        raise DataError(f"{source}: {len(duplicates)} duplicate UID{'s' if len(duplicates) > 1 else ''}: "
                        f"{_listing(duplicates)}; each scan must be listed once (it would be evaluated twice)")
    if not uids:
        raise DataError(f"{source}: no UIDs in the file; expected one series UID per line")
    return UidList(tuple(uids), source)


def read_uid_file(path: str | os.PathLike[str]) -> UidList:
    """Read a UID file from disk. Raises :class:`DataError` for a missing/unreadable/non-UTF-8 file too."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read the UID file {path}: {exc.strerror or exc}; check the --uids path") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); expected one series UID per line") from None
    return parse_uid_text(text, str(path))


def format_uid_text(uids: Iterable[str]) -> str:
    """One UID per line, with a final newline - the form every file this package writes has."""
    return "".join(f"{uid}\n" for uid in uids)


def require_present(uids: UidList, available: Iterable[str], where: str) -> None:
    """Raise :class:`DataError` naming every UID of ``uids`` that is not in ``available`` (found in ``where``)."""
    have = set(available)
    missing = [uid for uid in uids.uids if uid not in have]
    if missing:
        raise DataError(f"{len(missing)} of {len(uids)} UIDs from {uids.source} are not in {where}: "
                        f"{_listing(missing)}; fix the UID list or the dataset root")


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")
