"""Every option of the gate, declared once: the pytest plugin (command line and ini setting), ``vnet-accept gate``
and the report's labels all read this table. Defaults come from :mod:`vnet_accept.reference` (the numbers judged
against) and :mod:`vnet_accept.tolerances` (the limits).

Resolution order (:func:`vnet_accept.plugin.options.get_option`): command line, then environment variable (where
one is named), then the ini file (``pytest.ini``/``tox.ini``, same name with underscores), then the default. Values
are parsed with ``type`` at start-up, so a bad value fails before any test runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vnet_accept import reference, tolerances
from vnet_accept.argtypes import batch_size_list, choice, int_list, non_negative_float, positive_int
from vnet_accept.model.bn_modes import BN_MODES

GROUP = "vnet-accept"


@dataclass(frozen=True)
class Option:
    flag: str  # command-line flag, e.g. "--vnet-weights"
    help: str
    metavar: str | None = None
    type: Callable[[str], Any] = str
    default: Any = None
    env: str | None = None  # environment variable consulted before the ini file

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def ini(self) -> str:
        return self.dest

    def help_text(self) -> str:
        extra = f" [env {self.env}]" if self.env else ""
        if "default:" in self.help:  # the help says what happens without the option better than "none" would
            return f"{self.help}{extra}"
        shown = ("none" if self.default is None else ",".join(map(str, self.default))
                 if isinstance(self.default, (tuple, list)) else self.default)  # as it is typed: 1,4,8,16,32
        return f"{self.help} (default: {shown}){extra}"


OPTIONS: tuple[Option, ...] = (
    # Inputs
    Option("--vnet-weights", "trained checkpoint (.pth/.pth.tar) to gate; without it, seeded random weights "
           "stand in and accuracy thresholds are skipped", "PATH"),
    Option("--luna16-root", "LUNA16 root (raw lung_ct_image/ or subset0..9/ plus seg-lungs-LUNA16/, or "
           "normalized_lung_ct/ plus normalized_lung_mask/); without it, the synthetic dataset is used", "DIR"),
    Option("--test-uids", "test-split UID list, one series UID per line", "FILE"),
    Option("--onnx", "the port's ONNX file under test (its vnet_pth2onnx.py output): every export, parity, batch-"
           "invariance and BN-semantics criterion judges it against --vnet-weights, the accuracy chain's ONNX "
           "Runtime runs use it, and the OMs in --npu-results are compared with it; without it the gate judges its "
           "own reference export", "FILE", env="VNET_ACCEPT_ONNX"),
    Option("--atc-opset", "the ONNX opset the port's ATC converts; export.contract requires it", "N", positive_int,
           reference.ATC_OPSET),
    Option("--prep-bin", "the port's network inputs under test (vnet_preprocess.py's prep_bin/: <i>.bin numbered "
           "over UID order x tile order, empty tiles skipped, no manifest); judged tile by tile against the "
           "normalised CT of --luna16-root for the --test-uids split", "DIR"),
    Option("--prep-info", "the port's info file for --prep-bin (gen_dataset_info.py's vnet_prep_bin.info): its "
           "order decides which tiles share a batch; `vnet-accept gate --info FILE` is the same", "FILE"),
    Option("--shared-dir", "the project's shared reference folder (the port's reference transcripts, "
           "real LUNA16 masks); tests that need it skip without it", "DIR", env="VNET_ACCEPT_SHARED"),
    # Model semantics and parity
    Option("--bn-mode", "batch-norm semantics of the exported model and the PyTorch reference: "
           + ", ".join(BN_MODES), "MODE", choice(*BN_MODES), "running"),
    Option("--parity-atol", "largest allowed |Δ log-probability| between runners in the same BN mode",
           "ATOL", non_negative_float, tolerances.PARITY_ATOL),
    Option("--parity-max-flip-fraction", "largest allowed fraction of voxels whose arg-max label differs "
           "between runners", "FRACTION", non_negative_float, tolerances.PARITY_MAX_FLIP_FRACTION),
    Option("--invariance-atol", "largest allowed |Δ log-probability| between a sample run alone and inside "
           "a batch, for BN modes that promise batch invariance", "ATOL", non_negative_float,
           tolerances.INVARIANCE_ATOL),
    # Accuracy rule
    Option("--reference-error", "published error rate the gate compares with, percent",
           "PCT", non_negative_float, reference.PUBLISHED_ERROR_PCT),
    Option("--tolerance-pp", "allowed |error - reference| in percentage points", "PP", non_negative_float,
           reference.TOLERANCE_PP),
    # Where things go
    Option("--gate-report", "directory for the gate report (gate-report.json, ...); written at session end",
           "DIR"),
    Option("--vnet-cache-dir", "directory for cached artifacts (ONNX, data, OM), keyed by content hash; "
           "default: the pytest cache", "DIR", env="VNET_ACCEPT_CACHE"),
    # Synthetic dataset (used when --luna16-root is not given)
    Option("--synthetic-scans", "number of scans in the synthetic LUNA16-like dataset that stands in when "
           "--luna16-root is not given (8 tiles each; the default 2 fill one batch of 16; every 4th scan is "
           "abdominal, with tiles skipped for an empty mask)", "N", positive_int, 2),
    Option("--synthetic-seed", "seed of the synthetic LUNA16-like dataset (an integer >= 0)", "S", int, 0),
    # Ascend NPU and throughput (issue 5; fixtures in vnet_accept.plugin.ascend_fixtures)
    Option("--npu-results", "folder of results and logs copied from an Ascend host (OM outputs, perf files, "
           "ais_bench summaries, ATC logs); the npu tests judge it instead of running the tools", "DIR",
           env="VNET_ACCEPT_NPU_RESULTS"),
    Option("--batch-sizes", "batch sizes to convert, run and judge on the NPU", "BS,BS,...", batch_size_list,
           reference.DEFAULT_BATCH_SIZES),
    Option("--soc-version", "ATC --soc_version (Ascend310, Ascend310P3 ...); default: read from npu-smi info",
           "SOC"),
    Option("--chips-per-card", "chips on one card: card fps = per-chip fps x N; default: 4 for Ascend310, 1 for "
           "Ascend310P", "N", positive_int),
    Option("--device-ids", "NPU device ids that share the work (a 310 card has four chips)", "ID,ID,...",
           int_list, (0,)),
    Option("--npu-tool", "NPU inference tool: ais_bench (preferred), the legacy benchmark, or auto",
           "TOOL", choice("auto", "ais_bench", "benchmark"), "auto"),
    Option("--atc", "path to the atc binary; default: atc on PATH (after sourcing CANN's set_env.sh)", "PATH"),
    Option("--npu-smi", "path to npu-smi; default: npu-smi on PATH", "PATH"),
    Option("--ais-bench", "how to run ais_bench: a command ('python3 -m ais_bench') or a Python interpreter; "
           "default: this interpreter if it can import ais_bench, else python3 on PATH", "CMD"),
    Option("--benchmark-tool", "path to the legacy benchmark.x86_64/.aarch64; default: on PATH or in the "
           "working directory", "PATH"),
    Option("--t4-logs", "comma-separated trtexec logs giving the T4 thresholds; default: the reference port's T4 table",
           "FILE,FILE,..."),
    Option("--perf-statistic", "latency statistic behind every fps: port (as the port's tables), mean or median",
           "STAT", choice("port", "mean", "median"), "port"),
    Option("--npu-loops", "timed inference calls per batch size in the pure-inference throughput sweep", "N",
           positive_int, 20),
    Option("--atc-timeout", "seconds one ATC conversion may take", "SECONDS", non_negative_float, 3600.0),
    Option("--npu-timeout", "seconds one NPU inference run may take", "SECONDS", non_negative_float, 7200.0),
    # Inference and accuracy (issue 4; fixtures in vnet_accept.plugin.accuracy_fixtures)
    Option("--backend", "inference backend of the accuracy chain: ort-cpu (the exported ONNX), torch-cpu (the "
           "PyTorch model in --bn-mode), one a module registers (e.g. torch-cuda), or auto (the GPU if usable, else "
           "the faster CPU backend)", "NAME", str, "auto"),
    Option("--dump-outputs", "write the accuracy chain's outputs here in the ais_bench layout and judge that folder; "
           "default: stream them into the post-processor without writing files", "DIR"),
    Option("--infer-batch-size", "batch size of the accuracy chain's inference; batch invariance compares batch "
           "1 with batch 16 on the first scan's tiles", "N", positive_int, 16),
    # OM judging (issue 5, phase 2; vnet_accept.judge.om states why each default)
    Option("--om-parity-tiles", "tiles per batch size whose OM outputs are compared with ONNX Runtime, the first "
           "of the manifest (ONNX Runtime costs about 5 s a tile on 2 CPU cores)", "N", positive_int, 8),
    Option("--om-max-flip-fraction", "largest fraction of voxels whose label may differ between the OM (ATC "
           "force_fp16) and ONNX Runtime (fp32); 1e-3 bounds the error-rate shift at 0.1 pp", "FRACTION",
           non_negative_float, tolerances.OM_MAX_FLIP_FRACTION),
    Option("--om-invariance-max-flip-fraction", "largest fraction of voxels whose label may differ between the "
           "OM's bs1 and bs<N> outputs of the same tiles", "FRACTION", non_negative_float,
           tolerances.OM_INVARIANCE_MAX_FLIP_FRACTION),
    Option("--bn-semantics-margin", "how many times farther from the OM the runner-up BN semantics must be for "
           "the closest to count as the clear winner (> 1)", "FACTOR", non_negative_float,
           tolerances.BN_SEMANTICS_MARGIN),
)

OPTIONS_BY_DEST = {o.dest: o for o in OPTIONS}
