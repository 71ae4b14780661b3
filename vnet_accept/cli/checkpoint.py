"""``vnet-accept checkpoint``: write seeded stand-in checkpoints, train the self-test's narrow VNet, describe
checkpoints."""

from __future__ import annotations

import argparse
import json

from vnet_accept.argtypes import int_range, vnet_width

#: Seeds torch accepts (and that every layout round-trips).
seed_int = int_range(0, 2**63 - 1)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("checkpoint", help="write a seeded random checkpoint or describe one")
    csub = p.add_subparsers(dest="checkpoint_command", metavar="ACTION", required=True)
    r = csub.add_parser("random", help="write seeded random VNet weights in one of the checkpoint layouts")
    r.add_argument("-o", "--output", required=True, metavar="FILE", help="checkpoint to write (.pth.tar)")
    r.add_argument("--seed", type=seed_int, default=0, metavar="N", help="random seed >= 0 (default: 0)")
    r.add_argument("--layout", choices=("upstream", "port", "bare", "legacy"), default="upstream",
                   help="upstream: {'epoch','state_dict','best_prec1'} with 'module.' keys; port: Ascend's "
                        "{'epoch','state_dict','error'}; bare: a state dict; legacy: upstream without "
                        "num_batches_tracked (default: upstream)")
    r.add_argument("--width", type=vnet_width, default=16, metavar="C",
                   help="base channels, an even number >= 2 (default: 16, the real VNet)")
    r.set_defaults(func=_random)
    t = csub.add_parser("train", help="train the self-test's narrow VNet on synthetic scans (CPU, seeded)",
                        description="Train a narrow VNet on synthetic LUNA16-like scans with the self-test's recipe "
                                    "(vnet_accept.model.train); every option defaults to that recipe, so with none "
                                    "the result is the self-test's model.")
    t.add_argument("-o", "--output", required=True, metavar="FILE", help="checkpoint to write (.pth.tar, upstream "
                   "layout with 'module.' keys; the training record goes to FILE.json)")
    _recipe_options(t)
    t.set_defaults(func=_train)
    i = csub.add_parser("info", help="load a checkpoint strictly and describe it")
    i.add_argument("weights", metavar="FILE")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=_info)


def _random(args: argparse.Namespace) -> int:
    from vnet_accept.cli.outputs import output_file
    from vnet_accept.model.checkpoint import load_checkpoint, write_random_checkpoint

    output_file(args.output, "-o")
    path = write_random_checkpoint(args.output, seed=args.seed, layout=args.layout, width=args.width)
    print(f"wrote {load_checkpoint(path).describe()}")
    return 0


def _recipe_options(parser: argparse.ArgumentParser) -> None:
    from vnet_accept.argtypes import positive_int
    from vnet_accept.model.recipe import TrainRecipe  # not model.train: --help must not import torch

    default = TrainRecipe()
    fields = (("--width", vnet_width, "width", "C", "base channels (even, >= 2)"),
              ("--steps", positive_int, "steps", "N", "optimiser steps in all"),
              ("--running-steps", positive_int, "running_steps", "N", "last steps in running BN semantics"),
              ("--lung-class-weight", float, "lung_class_weight", "W", "first-step NLL weight of lung (falls to 1)"),
              ("--scans", positive_int, "scans", "N", "synthetic training scans"),
              ("--synthetic-seed", seed_int, "synthetic_seed", "S", "seed of the training scans (not 0: held out)"),
              ("--learning-rate", float, "learning_rate", "LR", "peak Adam learning rate"),
              ("--seed", seed_int, "seed", "S", "seed of initialisation and tile sampling"))
    for flag, kind, name, metavar, text in fields:
        parser.add_argument(flag, type=kind, dest=name, metavar=metavar, default=getattr(default, name),
                            help=f"{text} (default: {getattr(default, name)})")


def _train(args: argparse.Namespace) -> int:
    import dataclasses
    import sys
    from pathlib import Path

    from vnet_accept.cli.outputs import output_file
    from vnet_accept.errors import UsageError
    from vnet_accept.io_utils import atomic_write_text
    from vnet_accept.model.checkpoint import load_checkpoint, save_checkpoint
    from vnet_accept.model.train import TrainRecipe, train_narrow_vnet

    names = {f.name for f in dataclasses.fields(TrainRecipe)}
    try:
        recipe = dataclasses.replace(TrainRecipe(), **{k: v for k, v in vars(args).items() if k in names})
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    output_file(args.output, "-o")  # before minutes of training
    output_file(f"{args.output}.json", "-o (its training record)")

    def progress(step: int, total: int, loss: float) -> None:
        if step == total or step % 10 == 0:
            print(f"step {step}/{total}: loss {loss:.4f}", file=sys.stderr, flush=True)

    result = train_narrow_vnet(recipe, progress=progress)
    path = save_checkpoint(args.output, result.state_dict, layout="upstream", epoch=recipe.steps)
    record = Path(f"{path}.json")
    atomic_write_text(record, json.dumps(result.record(), indent=2) + "\n")
    print(f"wrote {load_checkpoint(path).describe()} after {result.seconds:.1f} s "
          f"(last losses {sum(result.losses[-10:]) / min(10, len(result.losses)):.4f}); record {record}")
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
