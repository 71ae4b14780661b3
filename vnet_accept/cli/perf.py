"""``vnet-accept perf FILE...``: read performance files from any tool and judge them against the T4 (SPEC §7).

Files may be legacy ``perf_vision_batchsize_*`` files, PureInfer summaries, ais_bench summary JSONs or console
logs, and trtexec logs; a directory contributes the performance files in it. trtexec logs among the files are
the T4 thresholds unless ``--t4`` says otherwise; without any, the reference port's T4 table is used. Files that are not
performance files are listed with the reason and do not stop the others.

Exit status: 0 nothing failed, 1 a batch size (or the 310P rule) failed, 2 usage error (nothing readable).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vnet_accept.argtypes import positive_int

STATISTIC_CHOICES = ("port", "mean", "median")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "perf", help="read NPU/T4 performance files and judge card fps against the T4",
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: vnet-accept perf result/perf_vision_batchsize_*.txt --t4 trtexec_t4_bs*.log")
    parser.add_argument("files", nargs="+", metavar="FILE", help="performance files or directories holding them")
    parser.add_argument("--statistic", choices=STATISTIC_CHOICES, default="port",
                        help="latency statistic behind each fps: 'port' reproduces the port's table (T4 median "
                             "at bs1, mean elsewhere; NPU mean) (default: port)")
    parser.add_argument("--soc-version", default="Ascend310", metavar="SOC",
                        help="the NPU's SoC (Ascend310, Ascend310P3 …); sets chips per card (a --chips-per-card it "
                             "contradicts fails every batch size) and, for a 310P, the 310P rule (default: Ascend310)")
    parser.add_argument("--chips-per-card", type=positive_int, metavar="N",
                        help="chips on one card; card fps = per-chip fps × N (default: 4 for Ascend310, "
                             "1 for Ascend310P)")
    parser.add_argument("--t4", nargs="+", action="extend", metavar="FILE",
                        help="trtexec logs giving the T4 thresholds, or 'defaults' for the reference port's T4 table "
                             "(default: the trtexec logs among FILE, else the port's table)")
    parser.add_argument("--ref-310", nargs="+", action="extend", metavar="FILE",
                        help="Ascend 310 performance files for the 310P rule (default: the port's 310 figures)")
    parser.add_argument("--batch-size", type=positive_int, metavar="N",
                        help="batch size of files that state none in content or name (default: none)")
    parser.add_argument("--modelzoo-level", metavar="FILE",
                        help="a modelzoo_level.txt whose PerfStatus claim is checked against the measurements")
    parser.add_argument("--json", metavar="OUT", help="also write the full result as JSON to OUT")
    parser.add_argument("--strict", action="store_true",
                        help="exit 2 when any FILE cannot be read (default: list it and go on)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vnet_accept.errors import UsageError
    from vnet_accept.io_utils import atomic_write_json
    from vnet_accept.judge.perf import render, throughput
    from vnet_accept.perf.parsers import parse_perf_paths
    from vnet_accept.perf.rules import (
        REFERENCE_310_SOURCE,
        REFERENCE_T4_SOURCE,
        card_fps,
        check_perf_status_claim,
        chips_per_card_for,
        combine_chip_figures,
        reference_310_card_fps,
        reference_t4_basis_report,
        reference_t4_thresholds,
        t4_basis_report,
        t4_thresholds_from,
    )

    scan = parse_perf_paths(args.files, statistic=args.statistic, batch_size=args.batch_size)
    rejected = list(scan.rejected)
    npu = [m for m in scan.measurements if m.scope != "gpu"]
    gpu = [m for m in scan.measurements if m.scope == "gpu"]

    t4_args = args.t4 or []
    extra = []
    if t4_args == ["defaults"]:
        t4, extra = None, gpu
    elif "defaults" in t4_args:
        raise UsageError("--t4 takes either trtexec logs or the single word 'defaults', not both")
    elif t4_args:
        t4_scan = parse_perf_paths(t4_args, statistic=args.statistic, batch_size=args.batch_size)
        not_t4 = [m for m in t4_scan.measurements if m.scope != "gpu"]
        if not_t4:
            raise UsageError(f"--t4 {not_t4[0].source_file}: a {not_t4[0].file_format}, not a trtexec log")
        if t4_scan.rejected:
            raise UsageError(f"--t4 {t4_scan.rejected[0]}")
        t4, extra = t4_scan.measurements, gpu
    else:
        t4 = gpu or None

    card_310, source_310 = reference_310_card_fps(), REFERENCE_310_SOURCE
    if args.ref_310:
        ref_scan = parse_perf_paths(args.ref_310, statistic=args.statistic, batch_size=args.batch_size)
        if ref_scan.rejected:
            raise UsageError(f"--ref-310 {ref_scan.rejected[0]}")
        figures = combine_chip_figures(m for m in ref_scan.measurements if m.scope == "chip")
        card_310 = {bs: card_fps(f.chip_fps, chips_per_card_for("Ascend310")) for bs, f in figures.items()}
        source_310 = ", ".join(args.ref_310)

    if not scan.measurements:
        reasons = "; ".join(str(e) for e in rejected) or "no files"
        raise UsageError(f"no performance figure in the files given: {reasons}")
    if args.strict and rejected:
        raise UsageError(f"{rejected[0]} (--strict)")
    if t4 is None:
        thresholds, t4_source, statement = reference_t4_thresholds(), REFERENCE_T4_SOURCE, reference_t4_basis_report()
    else:
        thresholds, t4_source, statement = t4_thresholds_from(t4), f"{len(t4)} trtexec log(s)", t4_basis_report(t4)
    if args.chips_per_card is None:
        chips_per_card_for(args.soc_version)  # an unknown SoC is a usage error naming --chips-per-card
    judgement = throughput(npu, thresholds, soc_version=args.soc_version, chips_per_card=args.chips_per_card,
                           statistic=args.statistic, t4_source=t4_source, card_fps_310=card_310,
                           source_310=source_310, statements=[statement] if statement else [])
    claim = None
    if args.modelzoo_level:
        claim = check_perf_status_claim(_read_modelzoo_level(args.modelzoo_level), judgement.placement)
    print(render(judgement, rejected, extra=[*(t4 or ()), *extra]))
    if claim is not None:
        print(claim.explanation)
    if args.json:
        data = {"criteria": [c.to_dict() for c in judgement.criteria()],
                "verdicts": [judgement.verdicts[bs].to_dict() for bs in judgement.batch_sizes],
                "placement": judgement.placement.to_dict(),
                "rule_310p": [r.to_dict() for r in judgement.rule_310p],
                "measurements": [{**m.to_dict(), "validity": v.to_dict()} for bs in judgement.batch_sizes
                                 for m, v in judgement.validity.get(bs, [])],
                "soc_version": judgement.soc_version, "chips_per_card": judgement.chips_per_card,
                "card_basis": judgement.basis.to_dict(), "statistic": judgement.statistic,
                "t4_source": t4_source, "thresholds": {str(bs): vars(t) for bs, t in sorted(thresholds.items())},
                "statements": judgement.statements,
                "not_read": [{"file": e.source, "kind": e.kind, "reason": e.reason} for e in rejected],
                "perf_status_claim": vars(claim) if claim else None, "failed": judgement.failed}
        atomic_write_json(args.json, data)
        print(f"\nJSON written to {args.json}")
    return 1 if judgement.failed or (claim is not None and claim.passed is False) else 0


def _read_modelzoo_level(path: str) -> dict[str, str]:
    from vnet_accept.errors import UsageError
    from vnet_accept.perf.rules import parse_modelzoo_level

    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"--modelzoo-level {path}: {exc.strerror or exc}") from None
    return parse_modelzoo_level(text, path)
