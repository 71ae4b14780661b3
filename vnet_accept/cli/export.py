"""``vnet-accept export`` and ``vnet-accept inspect``."""

from __future__ import annotations

import argparse
import json

from vnet_accept.argtypes import positive_int
from vnet_accept.model.bn_modes import BN_MODE_HELP, BN_MODES


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("export", help="export a checkpoint to ONNX with an explicit BN semantics")
    e.add_argument("--weights", required=True, metavar="FILE", help="checkpoint (.pth/.pth.tar), any layout")
    e.add_argument("--bn-mode", choices=BN_MODES, default="running", metavar="MODE",
                   help="; ".join(f"{k}: {v}" for k, v in BN_MODE_HELP.items()) + " (default: running)")
    e.add_argument("--opset", type=positive_int, default=11, metavar="N",
                   help="ONNX opset, one the exporter supports (7-23 with torch 2.13) (default: 11, what ATC wants)")
    e.add_argument("--dynamic-spatial", action="store_true",
                   help="make D, H, W dynamic too (for reduced-size tests; ATC needs the fixed 64x80x80)")
    e.add_argument("-o", "--output", required=True, metavar="FILE", help="ONNX file to write")
    e.set_defaults(func=_export)
    i = sub.add_parser("inspect", help="describe an ONNX file: I/O, opset, metadata, BN semantics; judge its contract",
                       description="Describe an ONNX file and print the gate's verdicts on it: export.contract (the "
                                   "port's I/O, dynamic batch, opset) and, with --bn-mode, export.bn_semantics. "
                                   "Exit status 1 when a verdict fails.")
    i.add_argument("onnx_file", metavar="FILE.onnx")
    i.add_argument("--bn-mode", choices=BN_MODES, metavar="MODE",
                   help="also judge whether the graph implements this BN semantics (default: not judged)")
    i.add_argument("--opset", type=int, default=11, metavar="N", help="opset the contract expects (default: 11, "
                                                                      "what the port's ATC converts)")
    i.add_argument("--json", action="store_true", help="print JSON (the description and the criteria)")
    i.set_defaults(func=_inspect)


def _export(args: argparse.Namespace) -> int:
    from vnet_accept.cli.outputs import output_file
    from vnet_accept.export.inspect import inspect_onnx
    from vnet_accept.export.onnx_export import ExportOptions, check_opset, export_onnx
    from vnet_accept.model.checkpoint import load_checkpoint

    check_opset(args.opset)
    output_file(args.output, "-o")
    ckpt = load_checkpoint(args.weights)
    options = ExportOptions(bn_mode=args.bn_mode, opset=args.opset,
                            spatial=None if args.dynamic_spatial else ExportOptions().spatial)
    path = export_onnx(ckpt.build_model(args.bn_mode), args.output, options, checkpoint_sha256=ckpt.sha256)
    info = inspect_onnx(path)
    print(f"exported {ckpt.describe()}\n  -> {path} (opset {options.opset}, bn_mode {args.bn_mode}: "
          f"{info.bn.kind}, {'batch-dependent' if info.bn.batch_dependent else 'batch-invariant'})")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from vnet_accept.export.inspect import inspect_onnx
    from vnet_accept.export.onnx_file import read_onnx_facts
    from vnet_accept.judge import export

    info = inspect_onnx(args.onnx_file)
    facts = read_onnx_facts(args.onnx_file)  # weights in a side file, onnx.checker: as the gate's export.contract
    criteria = [export.contract(info, opset=args.opset, checker_error=facts.checker_error,
                                external_data=facts.external_data, basis="vnet-accept inspect")]
    if args.bn_mode:
        criteria.append(export.bn_semantics(info, args.bn_mode))
    if args.json:
        print(json.dumps({**info.to_dict(), "criteria": [c.to_dict() for c in criteria]}, indent=2))
    else:
        print(info.render())
        print("\n".join(c.headline() for c in criteria))
    return 1 if any(c.verdict == "fail" for c in criteria) else 0
