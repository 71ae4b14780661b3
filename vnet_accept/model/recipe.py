"""The self-test model's training recipe: what determines the trained weights (the cache key), without torch.

Kept apart from :mod:`vnet_accept.model.train` so that ``vnet-accept checkpoint train --help`` can show the
recipe's defaults without importing PyTorch (``--help`` stays instant). The recipe itself, and why each value, is
documented in :mod:`vnet_accept.model.train`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: Bump when the training code changes what a recipe produces (the checkpoint cache key includes it).
TRAIN_VERSION = 4
#: BN semantics while training, and of the trained model (see the module docstring, points 2 and 3).
TRAIN_BN_MODE = "instance"
TRAINED_BN_MODE = "running"


@dataclass(frozen=True)
class TrainRecipe:
    """Everything that determines the trained weights (the cache key)."""

    width: int = 4
    synthetic_seed: int = 1000  # never the seed of an evaluation dataset (the gate's default is 0)
    scans: int = 6
    steps: int = 80
    learning_rate: float = 2e-2
    warmup_steps: int = 5
    lung_class_weight: float = 5.0
    final_lung_class_weight: float = 1.0
    calibration_tiles: int = 16
    running_steps: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.scans < 1:
            raise ValueError(f"steps (--steps) and scans (--scans) must be >= 1, got steps={self.steps}, "
                             f"scans={self.scans}")
        if not 1 <= self.running_steps <= self.steps:
            raise ValueError(f"running_steps (--running-steps) must be within 1..steps (--steps {self.steps}), got "
                             f"{self.running_steps}")
        if not self.learning_rate > 0 or not self.lung_class_weight > 0:
            raise ValueError("learning_rate (--learning-rate) and lung_class_weight (--lung-class-weight) must be > 0, "
                             f"got {self.learning_rate} and {self.lung_class_weight}")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "train_bn_mode": TRAIN_BN_MODE, "bn_mode": TRAINED_BN_MODE}
