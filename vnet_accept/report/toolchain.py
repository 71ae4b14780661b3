"""Versions of the accelerator toolchains for the report's provenance: CANN (and so ATC) and CUDA/GPU.

Best effort and cheap: read what the environment already says (CANN's ``set_env.sh`` exports
``ASCEND_TOOLKIT_HOME``/``ASCEND_HOME_PATH``; PyTorch knows its CUDA build and devices); never run a tool, never
fail. "unknown" / "none" say why there is nothing better.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

_VERSION_LINE = re.compile(r"^\s*(?:version|runtime_running_version|toolkit_running_version)\s*=\s*\[?([^\]:\s]+)",
                           re.MULTILINE)
CANN_HOME_VARIABLES = ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH", "ASCEND_AICPU_PATH")


def cann_version(environ: dict[str, str] | None = None) -> str:
    """CANN toolkit version from the environment ``set_env.sh`` leaves, e.g. ``"7.0.0 (/usr/local/Ascend/...)"``."""
    env = os.environ if environ is None else environ
    homes = [env[v] for v in CANN_HOME_VARIABLES if env.get(v)]
    if not homes:
        return "unknown (no CANN environment: ASCEND_TOOLKIT_HOME is not set; source CANN's set_env.sh)"
    for home in homes:
        root = Path(home)
        candidates = [root / "version.cfg", *sorted(root.glob("*-linux/ascend_toolkit_install.info")),
                      root / "ascend_toolkit_install.info"]
        for candidate in candidates:
            try:
                m = _VERSION_LINE.search(candidate.read_text(errors="replace"))
            except OSError:
                continue
            if m:
                return f"{m.group(1)} ({candidate})"
    return f"unknown (no version file under {', '.join(homes)})"


def gpu_description() -> str:
    """``"NVIDIA H100 80GB HBM3 x1, CUDA 12.8 (torch)"`` or why there is none. Only asks PyTorch when the run
    already loaded it (importing it just for this line costs seconds)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return "not checked (no criterion of this run loaded PyTorch)"
    cuda = getattr(torch.version, "cuda", None)
    if not cuda:
        return "none (a CPU-only PyTorch build)"
    try:
        if not torch.cuda.is_available():
            return f"none (PyTorch built for CUDA {cuda}, but no GPU is visible)"
        count = torch.cuda.device_count()
        return f"{torch.cuda.get_device_name(0)} x{count}, CUDA {cuda} (torch)"
    except Exception as exc:  # noqa: BLE001 - a broken driver must not break the report
        return f"unknown ({type(exc).__name__}: {exc})"


def toolchain_versions() -> dict[str, str]:
    return {"CANN (ATC)": cann_version(), "GPU": gpu_description()}
