"""The checkpoint under test loads strictly into the port's VNet (SPEC §2.2): every key present, none extra, every
shape right, in any of the layouts the port meets (upstream ``module.``-prefixed, Ascend's, bare, legacy)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vnet_accept.errors import CheckpointError
from vnet_accept.judge.criterion import Criterion, judged

DESCRIPTION = "the checkpoint under test loads strictly (every key present, none extra, every shape right) into the " \
              "port's VNet(elu=False, nll=True)"


def loads_strictly(checkpoint: str | os.PathLike[str] | Any, *, width: int | None = None,
                   basis: str = "") -> Criterion:
    """``checkpoint.loads_strictly`` for a path (loaded here; any loading error is the verdict) or a
    :class:`~vnet_accept.model.checkpoint.LoadedCheckpoint`. ``width`` is the architecture expected: 16 for the
    port's VNet, the default (the self-test's narrow model says 4)."""
    from vnet_accept.model.checkpoint import load_checkpoint
    from vnet_accept.model.flops import count_forward_flops
    from vnet_accept.model.vnet import DEFAULT_WIDTH, parameter_count

    width = width or DEFAULT_WIDTH

    cid = "checkpoint.loads_strictly"
    where = str(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else str(checkpoint.path or "<memory>")
    try:
        ckpt = load_checkpoint(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
        params = parameter_count(ckpt.build_model())
    except CheckpointError as exc:
        return judged(cid, DESCRIPTION, False, units="parameters", threshold="strict load", basis=basis or where,
                      reason=str(exc).splitlines()[0], message=f"FAIL {exc}")
    architecture = ckpt.width == width and not ckpt.elu
    reason = ckpt.describe() if architecture else (
        f"{ckpt.describe()} is not the expected VNet (width {width}, PReLU): a different architecture")
    artifacts = {"checkpoint": {"path": str(ckpt.path), "sha256": ckpt.sha256}} if ckpt.path else {}
    return judged(cid, DESCRIPTION, architecture, measured=params, units="parameters",
                  threshold=f"strict load, width {width}, PReLU", basis=basis or f"layout {ckpt.layout}",
                  reason=reason, message=f"{'PASS' if architecture else 'FAIL'} {reason}", artifacts=artifacts,
                  flops_per_tile=count_forward_flops(width=ckpt.width, elu=ckpt.elu),
                  path=str(Path(ckpt.path)) if ckpt.path else None)
