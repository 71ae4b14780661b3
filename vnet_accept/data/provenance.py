"""Which raw scan a normalised volume was made from, and whether that scan is still the same.

``vnet-accept normalize`` writes, in each scan's record (``normalized_lung_ct/<uid>.json``), the identity of the
raw CT and mask it read (:func:`source_identity`): the header path and the header fields the normalisation
uses, the data file's path, size, modification time and sha256. Whatever reads normalised volumes later
(``preprocess``, the post-processor's masks, the consistency checks) calls :func:`check_normalized_source`
first: when the raw scan is at hand (in the raw layout under the same root, else at the recorded path) and
its header fields, size or content differ from the record, the normalised files are stale - made from a scan
that has since been rewritten - and using them is a :class:`DataError` naming the UID and the file and saying
to re-run ``vnet-accept normalize``.

A data file whose size and modification time are the recorded ones is taken as unchanged without hashing (as
``make`` and ``rsync`` do); any other is hashed and compared. Each (record, source file state) is checked once
per process. Normalised data with no record (e.g. from the port's ``normalize_dataset.py``) cannot be checked
and is used as it is; a record without the source identity (an older vnet-accept) is refused while its raw scan
is present.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vnet_accept.data.discovery import NORMALIZED_CT_DIR, RAW_CT_DIR, RAW_MASK_DIR, SUBSET_PATTERN
from vnet_accept.data.mhd import MetaHeader, parse_header
from vnet_accept.errors import DataError
from vnet_accept.io_utils import sha256_file

#: Header fields normalisation depends on (geometry, type, byte order, where the data is).
SOURCE_FIELDS = ("NDims", "DimSize", "ElementType", "ElementSpacing", "ElementSize", "Offset", "Origin",
                 "TransformMatrix", "Orientation", "CompressedData", "BinaryDataByteOrderMSB", "ElementByteOrderMSB",
                 "HeaderSize", "ElementNumberOfChannels", "ElementDataFile")
ROLES = ("ct", "mask")
_checked: set[tuple[Any, ...]] = set()


def source_identity(header: MetaHeader) -> dict[str, Any]:
    """What identifies the raw file behind ``header`` (a validated header): paths, header fields, size, mtime,
    sha256 of the data file."""
    data = header.data_file
    stat = data.stat()
    return {"header": str(header.path.absolute()), "data_file": str(data.absolute()), "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns, "sha256": sha256_file(data),
            "fields": {k: header.fields[k] for k in SOURCE_FIELDS if k in header.fields}}


def record_path(root: str | os.PathLike[str], uid: str) -> Path:
    return Path(root) / NORMALIZED_CT_DIR / f"{uid}.json"


def _raw_headers(root: Path, uid: str) -> dict[str, Path]:
    """The raw CT and mask headers of ``uid`` in the raw layout under ``root``, where present."""
    found: dict[str, Path] = {}
    ct_dirs = [root / RAW_CT_DIR]
    try:
        ct_dirs += sorted(p for p in root.iterdir() if SUBSET_PATTERN.match(p.name))
    except OSError:
        pass
    for folder in ct_dirs:
        if (folder / f"{uid}.mhd").is_file():
            found["ct"] = folder / f"{uid}.mhd"
            break
    if (root / RAW_MASK_DIR / f"{uid}.mhd").is_file():
        found["mask"] = root / RAW_MASK_DIR / f"{uid}.mhd"
    return found


def check_normalized_source(root: str | os.PathLike[str], uid: str) -> None:
    """Raise :class:`DataError` when ``uid``'s normalised volumes under ``root`` were made from a raw scan that
    has changed since (see the module docstring). Nothing to check (no record, raw scan absent) is not an error."""
    root = Path(root)
    path = record_path(root, uid)
    if not path.is_file():
        return
    try:
        stat = path.stat()
        key = (str(path.absolute()), stat.st_mtime_ns, stat.st_size)
        record = json.loads(path.read_text())
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        raise DataError(f"scan {uid}: its normalisation record {path} is unreadable ({exc}); re-run `vnet-accept "
                        "normalize` for it") from None
    identity = record.get("source_identity")
    raw = _raw_headers(root, uid)
    if not isinstance(identity, dict):
        recorded = record.get("source") if isinstance(record.get("source"), dict) else {}
        present = list(raw.values()) + [Path(p) for p in recorded.values() if isinstance(p, str) and Path(p).is_file()]
        if present:
            raise DataError(f"scan {uid}: the normalisation record {path} does not say which raw scan it was made "
                            f"from (written by an older vnet-accept), so it cannot be checked against {present[0]}; "
                            "re-run `vnet-accept normalize` for it")
        return
    for role in ROLES:
        _check_role(uid, role, identity.get(role), raw.get(role), path, key)


def _check_role(uid: str, role: str, ident: Any, fallback: Path | None, path: Path, key: tuple[Any, ...]) -> None:
    what = "CT" if role == "ct" else "mask"
    if not isinstance(ident, dict) or not isinstance(ident.get("header"), str):
        raise DataError(f"scan {uid}: the normalisation record {path} has no identity of the raw {what}; re-run "
                        "`vnet-accept normalize` for it")
    # The raw layout under the same root is the scan the user has here (a copied or moved dataset); else the file
    # the record names (normalised with --out elsewhere).
    header_path = fallback if fallback is not None else Path(ident["header"])
    if not header_path.is_file():
        return  # the raw scan is not here: nothing to compare with
    normalised = path.parent if role == "ct" else path.parent.parent / "normalized_lung_mask"
    stale = (f"scan {uid}: the normalised {what} in {normalised} is stale: it was made from {header_path.name}, "
             "which has changed since `vnet-accept normalize` read it")
    fix = f"; re-run `vnet-accept normalize` for scan {uid}"
    try:
        header = parse_header(header_path)
    except DataError as exc:
        raise DataError(f"{stale} and is now unreadable ({exc}){fix}") from None
    fields = ident.get("fields") or {}
    now = {k: header.fields[k] for k in SOURCE_FIELDS if k in header.fields}
    changed = [k for k in sorted(set(fields) | set(now)) if fields.get(k) != now.get(k)]
    if changed:
        k = changed[0]
        raise DataError(f"{stale} (header {header_path}: {k} was {fields.get(k)!r}, is {now.get(k)!r}){fix}")
    data = header.data_file
    stat = data.stat()
    memo = (*key, role, str(data.absolute()), stat.st_size, stat.st_mtime_ns)
    if memo in _checked:
        return
    if stat.st_size != ident.get("size"):
        raise DataError(f"{stale} (data file {data}: {stat.st_size:,} bytes, {ident.get('size')!r} when "
                        f"normalised){fix}")
    same_file = str(data.absolute()) == ident.get("data_file") and stat.st_mtime_ns == ident.get("mtime_ns")
    if not same_file and sha256_file(data) != ident.get("sha256"):
        raise DataError(f"{stale} (data file {data}: its sha256 differs from the one recorded when it was "
                        f"normalised){fix}")
    _checked.add(memo)
