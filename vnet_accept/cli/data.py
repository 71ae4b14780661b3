"""Sub-commands of the data pipeline: ``synth``, ``normalize`` and ``preprocess`` (SPEC §4).

Exit status: 0 every scan done; 1 some scans failed (each listed with its reason after the others finished);
2 bad usage or input that stops everything (an unreadable UID file, a duplicate or unknown UID, no dataset, an
output that cannot be written).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from vnet_accept.argtypes import non_negative_int, positive_int

NORMALIZE_EPILOG = """\
Writes ROOT/normalized_lung_ct/<uid>.mhd+.raw (int16 HU), <uid>.json (geometry record) and
ROOT/normalized_lung_mask/<uid>.mhd+.zraw (0/1), or the same under --out. Every scan's three files appear
together or not at all. A scan with a missing mask or CT, an unreadable header, a missing or truncated
.raw/.zraw, a corrupt .zraw (checksum), or a wrong element type fails on its own, the others go on; the
failures are listed at the end and the exit status is 1. A duplicate UID, a UID the dataset lacks, or an
unreadable UID file stops the run before any work (exit status 2). The record holds the raw files' identity
(size, sha256, header fields), so a raw scan rewritten later is detected by every step that reads the
normalised volumes; staging folders a killed run left are removed."""

PREPROCESS_EPILOG = """\
Writes OUT/<i>.bin (float32 (64, 80, 80) tiles, i over UID order x tile order, tiles with an empty mask
skipped), OUT/manifest.json (what each file holds, keyed by UID and tile) and the info file (default
vnet_<name of OUT>.info beside OUT: -o prep_bin writes vnet_prep_bin.info, the port's name; two outputs under
one parent never share one). OUT is replaced as a whole; a folder that is not an earlier preprocess output is
never overwritten; staging folders of a killed run are removed. A scan whose raw CT or mask changed after it was
normalised is refused (re-run normalize). Failed scans are listed, the manifest is marked incomplete and the
exit status is 1. A path with whitespace cannot be an info file's line: refused before any work (exit 2)."""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("synth", help="write a synthetic LUNA16-like dataset (raw layout + UID list)",
                              description=_first_doc_line("vnet_accept.data.synth"))
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output dataset root (created)")
    p.add_argument("--scans", type=positive_int, default=4, metavar="N", help="number of scans (default: 4)")
    p.add_argument("--seed", type=non_negative_int, default=0, metavar="S", help="random seed (default: 0)")
    p.add_argument("--profile", choices=("small", "full", "tiny"), default="small",
                   help="grid: small = 128x128 px of 2.3-2.8 mm (default, fast); full = 512x512 px of 0.6-0.9 mm, "
                        "1.0-2.5 mm slices (real LUNA16 geometry); tiny = 48x48 scaled phantom for unit tests")
    p.add_argument("--subsets", action="store_true",
                   help="put the CT scans in subset0/..subset9/ like the original download, not lung_ct_image/")
    p.set_defaults(func=_synth)

    p = subparsers.add_parser("normalize", help="resample LUNA16 scans and masks to 2.5 mm, 128x160x160 (as the "
                                                "port's normalize_dataset.py)",
                              epilog=NORMALIZE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--luna16", required=True, metavar="ROOT",
                   help="dataset root with lung_ct_image/ (or subset0..9/) and seg-lungs-LUNA16/")
    p.add_argument("--uids", metavar="FILE", help="normalise only these series UIDs (default: every scan found)")
    p.add_argument("--out", metavar="DIR", help="root to write the normalised layout into (default: ROOT)")
    p.add_argument("--jobs", "-j", type=positive_int, default=None, metavar="N",
                   help="worker processes (default: the CPUs this process may use, at most the number of scans)")
    p.set_defaults(func=_normalize)

    p = subparsers.add_parser("preprocess", help="cut normalised scans into 64x80x80 float32 .bin tiles (as the "
                                                 "port's vnet_preprocess.py)",
                              epilog=PREPROCESS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--luna16", required=True, metavar="ROOT",
                   help="dataset root with normalized_lung_ct/ and normalized_lung_mask/")
    p.add_argument("--uids", required=True, metavar="FILE", help="series UIDs to preprocess (e.g. test_uids.txt)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder for <i>.bin and manifest.json")
    p.add_argument("--info", metavar="FILE",
                   help="info file for the inference tools (default: vnet_<name of OUT>.info beside the output "
                        "folder, e.g. vnet_prep_bin.info for -o prep_bin)")
    p.set_defaults(func=_preprocess)



def _first_doc_line(module: str) -> str:
    import importlib

    return (importlib.import_module(module).__doc__ or "").strip().splitlines()[0]


def _progress_bar(total: int, desc: str):
    from tqdm import tqdm

    from vnet_accept.data.uids import short_uid

    bar = tqdm(total=total, desc=desc, unit="scan", file=sys.stderr, disable=None, dynamic_ncols=True)

    def advance(uid: str, ok: bool) -> None:
        bar.update(1)
        if not ok:
            bar.set_postfix_str(f"failed: {short_uid(uid)}", refresh=False)

    return bar, advance


def _report_failures(failures: list, total: int, verb: str) -> int:
    if not failures:
        return 0
    print(f"FAILED: {len(failures)} of {total} scans could not be {verb}:", file=sys.stderr)
    for failure in failures:
        print(f"  {failure.uid}: {failure.reason}", file=sys.stderr)
    return 1


def _synth(args: argparse.Namespace) -> int:
    from vnet_accept.cli.outputs import output_dir
    from vnet_accept.data.synth import synthesize_dataset

    output_dir(args.out, "-o")
    start = time.perf_counter()
    dataset = synthesize_dataset(args.out, scans=args.scans, seed=args.seed, profile=args.profile,
                                 layout="subsets" if args.subsets else "merged")
    kinds = ", ".join(f"{sum(s.kind == k for s in dataset.specs)} {k}" for k in ("chest", "abdomen"))
    print(f"wrote {len(dataset.specs)} synthetic scans ({kinds}; profile {args.profile}, seed {args.seed}) to "
          f"{dataset.root} in {time.perf_counter() - start:.1f} s; UID list {dataset.uid_file}")
    return 0


def _normalize(args: argparse.Namespace) -> int:
    from vnet_accept.cli.outputs import output_dir
    from vnet_accept.data.discovery import discover
    from vnet_accept.data.normalize import normalize_dataset
    from vnet_accept.data.uids import read_uid_file
    from vnet_accept.errors import DataError
    from vnet_accept.io_utils import available_cpus

    layout = discover(args.luna16).require_raw()
    uids = read_uid_file(args.uids) if args.uids else None
    scans = layout.select(uids)
    if not scans:
        raise DataError(f"no scans in the {layout.describe()}: its folders hold no <uid>.mhd files")
    out_root = Path(args.out) if args.out else layout.root
    output_dir(out_root, "--out" if args.out else "--luna16 (normalised into the dataset root)")
    jobs = min(args.jobs or available_cpus(), max(len(scans), 1))
    source = uids.describe() if uids else f"every scan in the {layout.describe()}"
    print(f"normalising {len(scans)} scans ({source}) with {jobs} worker process{'es' if jobs > 1 else ''} "
          f"into {out_root}", file=sys.stderr)
    start = time.perf_counter()
    bar, advance = _progress_bar(len(scans), "normalise")
    try:
        results = normalize_dataset(scans, out_root, jobs=jobs, layout=layout, progress=advance)
    finally:
        bar.close()
    print(f"normalised {len(results.results)} of {len(scans)} scans in {time.perf_counter() - start:.1f} s -> "
          f"{out_root / 'normalized_lung_ct'}, {out_root / 'normalized_lung_mask'}")
    return _report_failures(results.failures, len(scans), "normalised")


def _preprocess(args: argparse.Namespace) -> int:
    from vnet_accept.cli.outputs import output_dir, output_file
    from vnet_accept.data.discovery import discover
    from vnet_accept.data.prepare import default_info_path, preprocess_dataset
    from vnet_accept.data.uids import read_uid_file

    output_dir(args.out, "-o")
    output_file(args.info or default_info_path(args.out), "--info" if args.info else "-o (its info file)")
    layout = discover(args.luna16).require_normalized()
    uids = read_uid_file(args.uids)
    layout.select(uids)  # unknown UIDs stop here, before any work
    print(f"preprocessing {len(uids)} scans ({uids.describe()}) from the {layout.describe()}", file=sys.stderr)
    start = time.perf_counter()
    bar, advance = _progress_bar(len(uids), "preprocess")
    try:
        manifest = preprocess_dataset(layout, uids, args.out, info_path=args.info, info_dir_text=args.out,
                                      progress=advance)
    finally:
        bar.close()
    data = manifest.data
    print(f"wrote {data['tiles_written']} tiles of {data['scans_used']} of {data['uids_requested']} scans "
          f"({len(manifest.skipped)} tiles skipped for an empty mask) in {time.perf_counter() - start:.1f} s -> "
          f"{manifest.directory}; info file {data['info_file']['path']}")
    return _report_failures(list(manifest.failures), len(uids), "preprocessed")
