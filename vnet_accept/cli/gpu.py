"""Sub-commands of the GPU backend (issue 6): ``gpu-sweep``, ``gpu-check`` and ``backend``.

* ``vnet-accept gpu-sweep`` — the throughput table of this GPU against the T4 thresholds and the 310 card;
* ``vnet-accept gpu-check --out DIR`` — the GPU tests, sweeps, target ratios and accuracy-pass timing in one go
  (what ``scripts/gpu_check.sh`` runs);
* ``vnet-accept backend`` — which backend the reference pass uses here, and the measurement behind it.

Exit status: 0 success / all targets met, 1 a check or target failed, 2 usage error or no GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vnet_accept.argtypes import batch_size_list, non_negative_float, non_negative_int, positive_int, vnet_width
from vnet_accept.model.bn_modes import BN_MODES

_DTYPES = ("fp32", "tf32", "fp16", "bf16")


def _name_list(choices: tuple[str, ...]):
    def parse(text: str) -> tuple[str, ...]:
        values = tuple(v for v in text.replace(" ", "").split(",") if v)
        bad = [v for v in values if v not in choices]
        if not values or bad:
            raise argparse.ArgumentTypeError(f"invalid {', '.join(bad) or 'empty list'} (choose from "
                                             f"{', '.join(choices)}, comma-separated)")
        return values

    parse.__name__ = "list"
    return parse


def _spatial(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or any(v < 16 or v % 16 for v in values):
        raise argparse.ArgumentTypeError(f"expected D,H,W, each a multiple of 16 (e.g. 64,80,80), got {text!r}")
    return values  # type: ignore[return-value]


def register(subparsers: Any) -> None:
    from vnet_accept.gpu.sweep import VARIANTS

    p = subparsers.add_parser(
        "gpu-sweep", help="throughput of this GPU over batch sizes, against the T4 thresholds and the 310 card",
        description="Device-side timing (CUDA events) of the PyTorch CUDA backend per dtype, variant and batch "
                    "size; fps, TFLOP/s (counted FLOP), × T4 and × the port's 310 card, validity, numerics vs fp32.",
        epilog="Variants: " + "; ".join(f"{k}: {v}" for k, v in VARIANTS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", metavar="DEV",
                   help="cuda, cuda:N, or cpu for a smoke run (default: cuda)")
    p.add_argument("--weights", metavar="PATH", help="checkpoint (default: seeded stand-in weights)")
    p.add_argument("--width", type=vnet_width, default=16, metavar="N",
                   help="base width of the stand-in network (default: 16, the real VNet)")
    p.add_argument("--spatial", type=_spatial, default=(64, 80, 80), metavar="D,H,W",
                   help="input size (default: 64,80,80; ratios to the T4 need it)")
    p.add_argument("--bn-mode", choices=BN_MODES, default="running", help="BN semantics (default: running)")
    p.add_argument("--dtypes", type=_name_list(_DTYPES), default=("fp16",), metavar="LIST",
                   help="compute dtypes, comma-separated (default: fp16)")
    p.add_argument("--variants", type=_name_list(tuple(VARIANTS)), default=("eager", "tuned"), metavar="LIST",
                   help="variants, comma-separated (default: eager,tuned)")
    p.add_argument("--batch-sizes", type=batch_size_list, default=(1, 4, 8, 16, 32), metavar="BS,BS,...",
                   help="batch sizes (default: 1,4,8,16,32)")
    p.add_argument("--warmup", type=non_negative_int, default=5, metavar="N", help="untimed calls per row (default: 5)")
    p.add_argument("--min-iters", type=positive_int, default=20, metavar="N", help="timed calls at least (default: 20)")
    p.add_argument("--min-time", type=non_negative_float, default=1.0, metavar="S",
                   help="timed seconds at least per row (default: 1.0)")
    p.add_argument("--no-numerics", action="store_true", help="skip the comparison with fp32 eager PyTorch")
    p.add_argument("--trtexec", nargs="?", const="auto", metavar="PATH",
                   help="also run the port's T4 trtexec command per batch size (PATH or on PATH)")
    p.add_argument("--out", metavar="DIR", help="write gpu-sweep.json and gpu-sweep.txt there")
    p.set_defaults(func=_sweep)

    c = subparsers.add_parser(
        "gpu-check", help="run every GPU check (tests, sweeps, targets, accuracy-pass timing) into DIR",
        description="pytest -m gpu, the fp16 sweep from eager to tuned with the speed-up targets, the dtype sweep, "
                    "the streamed accuracy pass over 1,072 synthetic tiles, and the CPU backend decision; every "
                    "result goes to DIR (gpu-check.json collects the verdicts). scripts/gpu_check.sh runs this.")
    c.add_argument("--out", required=True, metavar="DIR", help="folder for every result (created)")
    c.add_argument("--device", default="cuda", metavar="DEV", help="cuda, cuda:N, or cpu with --smoke")
    c.add_argument("--weights", metavar="PATH", help="checkpoint (default: seeded stand-in weights)")
    c.add_argument("--bn-mode", choices=BN_MODES, default="running", help="BN semantics (default: running)")
    c.add_argument("--quick", action="store_true", help="batch sizes 1 and 16 only")
    c.add_argument("--smoke", action="store_true",
                   help="tiny network and inputs: checks the plumbing in seconds (also on a CPU), measures nothing")
    c.add_argument("--no-tests", action="store_true", help="skip the pytest -m gpu step")
    c.add_argument("--trtexec", action="store_true", help="also run the port's T4 trtexec command (bs1, bs16)")
    c.add_argument("--compile", action="store_true", help="also time torch.compile(max-autotune) (minutes)")
    c.set_defaults(func=_check)

    b = subparsers.add_parser("backend", help="which backend the reference pass uses on this machine, and why",
                              description="torch-cuda when a GPU is usable; otherwise ONNX Runtime and PyTorch are "
                                          "timed here once (cached per machine) and the faster is used.")
    b.add_argument("--backend", default="auto", metavar="NAME",
                   help="a registered backend to check instead of deciding (default: auto)")
    b.add_argument("--bn-mode", choices=BN_MODES, default="running", help="BN semantics (default: running)")
    b.add_argument("--cpu", action="store_true", help="decide between the CPU backends even if a GPU is present")
    b.add_argument("--refresh", action="store_true", help="measure again instead of reading the cached decision")
    b.add_argument("--json", action="store_true", help="print the decision as JSON")
    b.set_defaults(func=_backend)


def _sweep(args: argparse.Namespace) -> int:
    from vnet_accept.errors import UsageError
    from vnet_accept.gpu.check import load_model
    from vnet_accept.gpu.sweep import TimingPolicy, check_targets, format_table, run_sweep, write_sweep
    from vnet_accept.gpu.trtexec import find_trtexec, run_trtexec
    from vnet_accept.runners.torch_cuda import cuda_unavailable_reason

    if args.out:
        from vnet_accept.cli.outputs import output_dir

        output_dir(args.out, "--out")
    _check_weights(args.weights)
    if args.device.startswith("cuda") and (reason := cuda_unavailable_reason()):
        raise UsageError(f"{reason} (or pass --device cpu for a smoke run)")
    try:
        policy = TimingPolicy(warmup=args.warmup, min_iters=args.min_iters, min_time_s=args.min_time)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    model, weights = load_model(args.weights, args.width, args.bn_mode)
    result = run_sweep(model, device=args.device, dtypes=args.dtypes, variants=args.variants,
                       batch_sizes=args.batch_sizes, bn_mode=args.bn_mode, spatial=args.spatial, policy=policy,
                       check_numerics=not args.no_numerics, weights=weights,
                       log=lambda line: print(line, file=sys.stderr))
    if args.trtexec:
        exe = find_trtexec(None if args.trtexec == "auto" else args.trtexec)
        if exe is None:
            print("trtexec is not on PATH; skipping the T4-class baseline", file=sys.stderr)
        else:
            import tempfile

            from vnet_accept.export.onnx_export import ExportOptions, export_onnx

            out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="vnet-trtexec-"))
            onnx_path = export_onnx(model, out / "vnet.onnx", ExportOptions(bn_mode=args.bn_mode))
            result.trtexec = run_trtexec(onnx_path, args.batch_sizes, out, trtexec=exe)
            print(f"trtexec logs and the ONNX it ran are in {out}", file=sys.stderr)
    targets = check_targets(result, dtype="fp16") if {"eager", "tuned"} <= set(args.variants) and \
        "fp16" in args.dtypes else []
    print(format_table(result))
    for t in targets:
        print(f"{'PASS' if t.passed else 'FAIL'} {t.name}: {t.detail}")
    if args.out:
        json_path, _ = write_sweep(result, args.out, targets=targets)
        print(f"sweep written to {json_path}")
    failed = [r for r in result.rows if r.error or r.numerics_passed is False]
    return 1 if failed or any(t.applies and not t.passed for t in targets) else 0


def _check(args: argparse.Namespace) -> int:
    from vnet_accept.cli.outputs import output_dir
    from vnet_accept.gpu.check import CheckConfig, run_gpu_check

    out = output_dir(args.out, "--out")
    _check_weights(args.weights)
    config = CheckConfig.smoke_config(out, args.device) if args.smoke else CheckConfig(out=out, device=args.device)
    config.weights, config.bn_mode = args.weights, args.bn_mode
    config.run_tests, config.trtexec, config.compile = not args.no_tests, args.trtexec, args.compile
    if args.quick and not args.smoke:
        config.batch_sizes = (1, 16)
    return run_gpu_check(config, log=lambda line: print(line, flush=True))


def _check_weights(weights: str | None) -> None:
    """A bad --weights is named before any GPU work (or the no-GPU message) hides it."""
    if weights:
        from vnet_accept.errors import UsageError
        from vnet_accept.model.checkpoint import load_checkpoint

        try:
            load_checkpoint(weights)
        except UsageError as exc:
            raise UsageError(f"--weights: {exc}") from None


def _backend(args: argparse.Namespace) -> int:
    from vnet_accept.runners.backend_choice import choose_cpu_backend, default_cache, select_backend

    if args.cpu:
        choice = choose_cpu_backend(bn_mode=args.bn_mode, cache=default_cache(), refresh=args.refresh)
    else:
        choice = select_backend(args.backend, bn_mode=args.bn_mode, cache=default_cache(), refresh=args.refresh)
    print(json.dumps(choice.to_dict(), indent=2) if args.json else choice.describe())
    return 0
