"""``vnet-accept infer`` (tiles -> result folder) and ``vnet-accept postprocess`` (result folder -> accuracy).

Exit status: ``infer`` 0 when every tile of its shard has an output; ``postprocess`` 0 when the error rate is
within the rule (|error - reference| <= tolerance, in points), 1 when it is not; both 2 for bad usage or
input (a result folder that cannot be judged names every missing, truncated or NaN file, the tiles, and the
off-by-one output index).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vnet_accept.argtypes import non_negative_float, non_negative_int, positive_int

LAYOUT_CHOICES = ("ais_bench", "benchmark", "npy")
BN_MODE_CHOICES = ("batch", "instance", "running")

INFER_EPILOG = """\
Layouts: ais_bench = OUT/<stem>_0.bin (as ais_bench writes); benchmark = OUT/dumpOutput_device<id>/<stem>_1.bin
(as the legacy benchmark tool writes); npy = OUT/<stem>_0.npy. Each file is one tile's (64, 80, 80, 2) float32
log-probabilities, named after the tile's input <stem>.bin. Batches are cut in manifest order; the last one may
be shorter (nothing is padded into the outputs). --shard K/N runs the K-th of N contiguous shares of whole
batches, so N processes or hosts can fill one folder. OUT/vnet_accept_infer[_shardKofN].json records the run
(backend, BN mode, batch size, tiles/s, GFLOP/s) and ties every output to what made it (model sha256, backend,
BN mode, batch size, the tile's input sha256, the output's sha256). A re-run resumes only outputs its records
vouch for; a folder holding outputs of another model, backend, BN mode, batch size or tiles, or outputs no
record accounts for, is refused (exit status 2), never adopted."""

POSTPROCESS_EPILOG = """\
The layout is detected (and stated) unless --layout is given: ais_bench (<stem>_0.bin), the legacy benchmark
tool (dumpOutput_device<id>/<stem>_1.bin, several device folders are merged) or npy (<stem>_0.npy). With --prep
outputs are matched to tiles through the manifest; without it the port's numbering is rebuilt from the masks.
A missing output, a truncated or oversized file, NaN/Inf values, an output for an unknown tile, _1 files where
_0 were expected (or the reverse) and duplicates are errors naming the files and tiles; files that are not
outputs are listed."""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("infer", help="run every prepared tile through a backend, write outputs as the "
                              "Ascend tools do", epilog=INFER_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prep", required=True, metavar="DIR", help="the preprocess output (prep_bin with manifest.json)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="result folder to write (created)")
    p.add_argument("--backend", default="auto", metavar="NAME",
                   help="ort-cpu (runs --onnx), torch-cpu (runs --weights), a registered extension such as "
                        "torch-cuda, or auto (the GPU if usable, else the faster CPU backend) (default: auto)")
    p.add_argument("--onnx", metavar="FILE", help="the exported ONNX (ONNX backends)")
    p.add_argument("--weights", metavar="FILE", help="the checkpoint (PyTorch backends)")
    p.add_argument("--bn-mode", choices=BN_MODE_CHOICES, metavar="MODE",
                   help="BN semantics of a PyTorch backend: batch, instance, running (default: running; an ONNX "
                        "carries its own)")
    p.add_argument("--batch-size", type=positive_int, default=1, metavar="N", help="tiles per call (default: 1)")
    p.add_argument("--layout", choices=LAYOUT_CHOICES, default="ais_bench",
                   help="how outputs are named and stored (default: ais_bench)")
    p.add_argument("--device-id", type=non_negative_int, default=0, metavar="ID",
                   help="device id in the benchmark layout's dumpOutput_device<ID> (default: 0)")
    p.add_argument("--shard", default="1/1", metavar="K/N", help="run the K-th of N shares (default: 1/1)")
    p.add_argument("--threads", type=positive_int, metavar="N", help="CPU threads of the backend (default: its own)")
    p.add_argument("--no-resume", action="store_true", help="recompute tiles whose outputs exist")
    p.set_defaults(func=_infer)

    q = subparsers.add_parser("postprocess", help="judge a result folder: error rate, Dice, IoU vs the masks",
                              epilog=POSTPROCESS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("results", metavar="DIR", help="result folder (ais_bench output, legacy result/, or infer -o)")
    q.add_argument("--luna16", metavar="ROOT",
                   help="dataset root with normalized_lung_mask/ (default: the one the manifest names)")
    q.add_argument("--uids", metavar="FILE", help="test UID list (required without --prep)")
    q.add_argument("--prep", metavar="DIR", help="the preprocess output whose manifest maps stems to tiles")
    q.add_argument("--layout", choices=LAYOUT_CHOICES, help="expected layout (default: detect it)")
    q.add_argument("--json", metavar="OUT", help="write the full result (per tile, per volume, pooled) as JSON")
    q.add_argument("--reference-error", type=non_negative_float, default=None, metavar="PCT",
                   help="published error rate to compare with, percent (default: 0.355)")
    q.add_argument("--tolerance-pp", type=non_negative_float, default=None, metavar="PP",
                   help="allowed |error - reference| in percentage points (default: 1.0)")
    q.add_argument("--bootstrap", type=positive_int, default=2000, metavar="N",
                   help="bootstrap resamples for the 95 %% interval (default: 2000)")
    q.add_argument("--seed", type=int, default=0, metavar="S", help="bootstrap seed (default: 0)")
    q.set_defaults(func=_postprocess)


def _infer(args: argparse.Namespace) -> int:
    from vnet_accept.cli.outputs import output_dir
    from vnet_accept.data.prepare import load_manifest
    from vnet_accept.results.inference import Shard, run_inference
    from vnet_accept.runners.registry import create_runner, get_backend

    shard = Shard.parse(args.shard)
    output_dir(args.output, "-o")
    if args.onnx:
        from vnet_accept.export.inspect import load_onnx_checked

        load_onnx_checked(args.onnx)  # a missing, empty or truncated ONNX: one line, before any work
    manifest = load_manifest(args.prep)
    backend, model = args.backend, None
    if backend == "auto":
        from vnet_accept.runners.backend_choice import default_cache, select_backend

        if args.weights:
            from vnet_accept.model.checkpoint import load_checkpoint

            model = load_checkpoint(args.weights).build_model(args.bn_mode or "running")
        choice = select_backend("auto", bn_mode=args.bn_mode or "running", cache=default_cache(), model=model,
                                onnx=args.onnx)
        backend = choice.backend
        print(f"backend {choice.describe()}", file=sys.stderr)
        needs = get_backend(backend).needs
        if (needs == "onnx" and not args.onnx) or (needs == "weights" and not args.weights):
            backend = "torch-cpu" if needs == "onnx" else "ort-cpu"
            print(f"backend {backend}: the only one of the two CPU backends the given files can run", file=sys.stderr)
    runner = create_runner(backend, onnx=args.onnx, weights=args.weights, model=model, bn_mode=args.bn_mode,
                           threads=args.threads)
    print(f"infer: {len(manifest)} tiles of {len(manifest.uids)} scans in {manifest.directory}, shard {shard}, with "
          f"{runner.describe()}, batch {args.batch_size}, layout {args.layout} -> {args.output}", file=sys.stderr)
    report = run_inference(runner, manifest, args.output, layout=args.layout, batch_size=args.batch_size,
                           shard=shard, device_id=args.device_id, resume=not args.no_resume)
    print(report.render())
    for note in report.notes:
        print(f"note: {note}")
    print(f"wrote {report.tiles_run + report.tiles_resumed} outputs of shard {shard} to {args.output}; run record "
          f"{args.output}/{shard.record_name}")
    return 0


def _postprocess(args: argparse.Namespace) -> int:
    from vnet_accept.data.prepare import load_manifest
    from vnet_accept.data.uids import read_uid_file
    from vnet_accept.errors import UsageError
    from vnet_accept.io_utils import atomic_write_json
    from vnet_accept.judge import accuracy
    from vnet_accept.reference import AccuracyReference
    from vnet_accept.results.postprocess import postprocess_results

    if not args.prep and not args.uids:
        raise UsageError("pass --uids FILE (the test UID list) or --prep DIR (the tiles' manifest)")
    if not args.prep and not args.luna16:
        raise UsageError("pass --luna16 ROOT: the normalised masks are the ground truth")
    defaults = AccuracyReference()
    reference = AccuracyReference(
        args.reference_error if args.reference_error is not None else defaults.published_error_pct,
        args.tolerance_pp if args.tolerance_pp is not None else defaults.tolerance_pp)
    report = postprocess_results(args.results, luna16_root=args.luna16,
                                 manifest=load_manifest(args.prep) if args.prep else None,
                                 uids=read_uid_file(args.uids) if args.uids else None, layout=args.layout,
                                 reference=reference, resamples=args.bootstrap, seed=args.seed)
    criterion = accuracy.error_rate("accuracy.error_rate.results", f"pooled voxel error rate of {args.results}",
                                    report, reference, basis=report.source)
    print(report.render())
    print(criterion.headline())
    if args.json:
        path = atomic_write_json(args.json, {**report.to_dict(), "criterion": criterion.to_dict()})
        print(f"wrote {path}")
    return 0 if criterion.passed else 1
