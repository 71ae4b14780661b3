"""The three batch-norm semantics the gate names (SPEC §2.1). Kept free of torch so the CLI starts fast."""

from __future__ import annotations

BN_MODES: tuple[str, ...] = ("batch", "instance", "running")
BN_MODE_HELP = {
    "batch": "statistics of the batch as given, over (N, D, H, W) — upstream and the reference port",
    "instance": "per-sample statistics over (D, H, W) — upstream's behaviour at batch 1, batch-invariant",
    "running": "stored running statistics — classic inference, batch-invariant",
}


def check_bn_mode(bn_mode: str) -> str:
    if bn_mode not in BN_MODES:
        raise ValueError(f"unknown bn_mode {bn_mode!r}; choose one of {', '.join(BN_MODES)}")
    return bn_mode
