"""``vnet-accept checkpoint``: write seeded stand-in checkpoints and describe real ones."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("checkpoint", help="write a seeded random checkpoint or describe one")
    csub = p.add_subparsers(dest="checkpoint_command", metavar="ACTION", required=True)
    r = csub.add_parser("random", help="write seeded random VNet weights in one of the checkpoint layouts")
    r.add_argument("-o", "--output", required=True, metavar="FILE", help="checkpoint to write (.pth.tar)")
    r.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default: 0)")
    r.add_argument("--layout", choices=("upstream", "port", "bare", "legacy"), default="upstream",
                   help="upstream: {'epoch','state_dict','best_prec1'} with 'module.' keys; port: Ascend's "
                        "{'epoch','state_dict','error'}; bare: a state dict; legacy: upstream without "
                        "num_batches_tracked (default: upstream)")
    r.add_argument("--width", type=int, default=16, metavar="C", help="base channels (default: 16, the real VNet)")
    r.set_defaults(func=_random)
    i = csub.add_parser("info", help="load a checkpoint strictly and describe it")
    i.add_argument("weights", metavar="FILE")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=_info)


def _random(args: argparse.Namespace) -> int:
    from vnet_accept.model.checkpoint import load_checkpoint, write_random_checkpoint

    path = write_random_checkpoint(args.output, seed=args.seed, layout=args.layout, width=args.width)
    print(f"wrote {load_checkpoint(path).describe()}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from vnet_accept.model.checkpoint import load_checkpoint
    from vnet_accept.model.vnet import parameter_count

    ckpt = load_checkpoint(args.weights)
    params = parameter_count(ckpt.build_model())
    info = {"path": str(ckpt.path), "sha256": ckpt.sha256, "layout": ckpt.layout, "width": ckpt.width,
            "activation": "ELU" if ckpt.elu else "PReLU", "parameters": params, "tensors": len(ckpt.state_dict),
            "meta": ckpt.meta}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(ckpt.describe())
        print(f"  {params:,} parameters in {len(ckpt.state_dict)} state-dict tensors; meta {ckpt.meta}")
    return 0
