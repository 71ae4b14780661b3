"""Running the OM on this Ascend host into the ``--npu-results`` layout, so live and replayed results are judged
by the same code (:mod:`vnet_accept.ascend.results_folder`).

:class:`LiveCollector` fills a folder step by step, each step once and on demand:

* :meth:`~LiveCollector.om` - ATC for one batch size through the OM cache (ONNX sha256 + arguments + ATC build);
  its console goes to ``atc_bs<N>.log`` with a last line ``ATC exit status N``;
* :meth:`~LiveCollector.dataset` - the inference tool over every prepared tile: ``ais_bench`` into
  ``result_bs<N>/`` (``result_bs<N>[_device<D>]_summary.json`` beside it) or the legacy ``benchmark`` in
  ``bs<N>/`` (``result/dumpOutput_device<D>/``, its perf file, one info file per chip). With several
  ``--device-ids`` the tiles are split into contiguous runs of whole batches
  (:func:`~vnet_accept.ascend.inference.shard`) and the chips run at the same time;
* :meth:`~LiveCollector.perf` - the pure-inference throughput sweep, all chips at once (a card's chips share
  its host link, so running them together is the honest card figure): ais_bench consoles in
  ``perf/ais_bench_bs<N>_device<D>.log`` or the legacy tool's ``perf/bs<N>/result/PureInfer_perf_of_*.txt``.

It also writes ``npu-smi.txt`` and ``manifest.json`` (the tiles' manifest), so the folder can be copied and
replayed elsewhere as it is. A tool that fails raises :class:`~vnet_accept.errors.ToolError` naming the batch
size, the chip, the exit status and the output's tail. This module cannot be exercised without an Ascend host
beyond stand-in executables (tests/ascend/test_collect.py); the commands follow SPEC §5.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from vnet_accept.ascend.atc import AtcError, build_om_cached
from vnet_accept.ascend.inference import (
    AisBenchRequest,
    LegacyRequest,
    ais_bench_command,
    ais_bench_pure_command,
    check_device_ids,
    find_ais_bench_summary,
    legacy_command,
    legacy_pure_command,
    link_inputs,
    shard,
)
from vnet_accept.ascend.process import ProcessResult, run_tool, shell_join
from vnet_accept.ascend.tools import ToolCommand
from vnet_accept.data.prepare import write_info_file
from vnet_accept.errors import ToolError
from vnet_accept.io_utils import atomic_write_json, atomic_write_text

HIDDEN_RUNS = ".runs"
HIDDEN_INPUTS = ".inputs"


class LiveCollector:
    """Produces the ``--npu-results`` layout under ``root`` by running ATC and the inference tool here."""

    def __init__(self, root: Path, *, onnx: Path, manifest: Any, soc_version: str, atc: ToolCommand,
                 tool: ToolCommand, cache: Any, device_ids: Sequence[int] = (0,), loops: int = 20,
                 atc_timeout_s: float = 3600.0, npu_timeout_s: float = 7200.0,
                 npu_smi: ToolCommand | None = None, runner: Callable[..., ProcessResult] = run_tool) -> None:
        if tool.name not in ("ais_bench", "benchmark"):
            raise ValueError(f"inference tool must be ais_bench or benchmark, got {tool.name}")
        self.root, self.onnx, self.manifest, self.soc_version = Path(root), Path(onnx), manifest, soc_version
        self.atc_tool, self.tool, self.cache = atc, tool, cache
        self.device_ids = check_device_ids(device_ids)
        self.loops, self.atc_timeout_s, self.npu_timeout_s = loops, atc_timeout_s, npu_timeout_s
        self.run = runner
        self.oms: dict[int, Path] = {}
        self._failed: dict[int, ToolError] = {}
        self._done: set[tuple[str, int]] = set()
        self.commands: list[dict[str, Any]] = []
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(manifest.directory) / "manifest.json", self.root / "manifest.json")
        if npu_smi is not None:
            self._npu_smi(npu_smi)
        self._write_record()

    # -- ATC ---------------------------------------------------------------------------------------------------
    def om(self, batch_size: int) -> Path:
        """The OM for ``batch_size`` (built once); :class:`ToolError` (``AtcError``) with codes and log tail."""
        if batch_size in self.oms:
            return self.oms[batch_size]
        if batch_size in self._failed:
            raise self._failed[batch_size]
        log = self.root / f"atc_bs{batch_size}.log"
        try:
            artifact = build_om_cached(self.cache, self.onnx, batch_size, self.soc_version, self.atc_tool,
                                       timeout_s=self.atc_timeout_s)
        except AtcError as exc:
            atomic_write_text(log, f"{exc.output_tail}\nATC exit status {exc.returncode}\n")
            self._failed[batch_size] = exc
            raise
        except ToolError as exc:  # time-out, not runnable
            atomic_write_text(log, f"{exc}\nATC exit status none (did not finish)\n")
            self._failed[batch_size] = exc
            raise
        meta = json.loads((artifact.entry_dir / "om.json").read_text())
        console = artifact.entry_dir / "atc.log"
        text = console.read_text(errors="replace") if console.is_file() else ""
        cached = " (OM from the cache; this is the console of the run that built it)" if artifact.cached else ""
        atomic_write_text(log, f"# {shell_join(artifact.command)}{cached}\n{text.rstrip()}\n"
                          f"ATC exit status {meta.get('returncode', 0)}\n")
        self.oms[batch_size] = artifact.om_path
        self.commands.append({"step": f"atc bs{batch_size}", "command": list(artifact.command),
                              "om": str(artifact.om_path), "cached": artifact.cached})
        self._write_record()
        return artifact.om_path

    # -- inference over the tiles ------------------------------------------------------------------------------
    def dataset(self, batch_size: int) -> None:
        """Every tile of the manifest through the OM at ``batch_size``, into the layout (once)."""
        if ("dataset", batch_size) in self._done:
            return
        om = self.om(batch_size)
        entries = list(self.manifest.entries)
        shards = shard(entries, self.device_ids, batch_size)
        if self.tool.name == "ais_bench":
            self._ais_bench_dataset(om, batch_size, shards)
        else:
            self._legacy_dataset(om, batch_size, shards)
        self._done.add(("dataset", batch_size))
        self._write_record()

    def _ais_bench_dataset(self, om: Path, bs: int, shards: dict[int, list]) -> None:
        name = f"result_bs{bs}"
        final = self.root / name
        if final.exists():
            shutil.rmtree(final)
        jobs = {}
        whole = len(shards) == 1 and len(next(iter(shards.values()))) == len(self.manifest.entries)
        for device, entries in shards.items():
            # One chip over every tile reads the prepared folder itself (only the tiles' .bin files and the
            # manifest are there); shards get folders of their own.
            inputs = Path(self.manifest.directory) if whole else link_inputs(
                [self.manifest.bin_path(e) for e in entries], self.root / HIDDEN_INPUTS / f"bs{bs}_device{device}")
            out = self.root / HIDDEN_RUNS / f"bs{bs}_device{device}"
            if out.exists():
                shutil.rmtree(out)
            request = AisBenchRequest(om, out, name, bs, input=inputs, device_id=device)
            jobs[device] = (ais_bench_command(request, self.tool), out)
        results = self._run_all({d: cmd for d, (cmd, _) in jobs.items()}, f"ais_bench bs{bs}", "dataset")
        final.mkdir(parents=True)
        for device, (_, out) in jobs.items():
            produced = out / name
            if not produced.is_dir():
                raise ToolError(f"ais_bench bs{bs} on device {device} exited 0 but wrote no {produced}; console "
                                f"tail:\n{results[device].tail()}")
            for f in produced.iterdir():
                shutil.move(str(f), final / f.name)
            summary = find_ais_bench_summary(out, name)
            suffix = f"_device{device}" if len(jobs) > 1 else ""
            shutil.move(str(summary), self.root / f"{name}{suffix}_summary.json")
        shutil.rmtree(self.root / HIDDEN_RUNS, ignore_errors=True)

    def _legacy_dataset(self, om: Path, bs: int, shards: dict[int, list]) -> None:
        work = self.root / f"bs{bs}"
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        commands = {}
        for device, entries in shards.items():
            info = write_info_file([self.manifest.bin_path(e).resolve() for e in entries],
                                   work / f"vnet_prep_bin_device{device}.info")
            commands[device] = legacy_command(LegacyRequest(om, info, bs, device), self.tool)
        self._run_all(commands, f"benchmark bs{bs}", "dataset", cwd=work)

    # -- pure-inference sweep ----------------------------------------------------------------------------------
    def perf(self, batch_size: int) -> None:
        """The throughput sweep at ``batch_size`` on every chip at once (once)."""
        if ("perf", batch_size) in self._done:
            return
        om = self.om(batch_size)
        perf = self.root / "perf"
        if self.tool.name == "ais_bench":
            commands = {d: ais_bench_pure_command(om, batch_size, self.loops, d, self.tool) for d in self.device_ids}
            results = self._run_all(commands, f"ais_bench pure bs{batch_size}", "perf")
            for device, result in results.items():
                atomic_write_text(perf / f"ais_bench_bs{batch_size}_device{device}.log", result.output)
        else:
            work = perf / f"bs{batch_size}"
            work.mkdir(parents=True, exist_ok=True)
            commands = {d: legacy_pure_command(om, batch_size, d, self.loops, self.tool) for d in self.device_ids}
            self._run_all(commands, f"benchmark pure bs{batch_size}", "perf", cwd=work)
        self._done.add(("perf", batch_size))
        self._write_record()

    # -- helpers -----------------------------------------------------------------------------------------------
    def _run_all(self, commands: dict[int, list[str]], what: str, step: str,
                 cwd: Path | None = None) -> dict[int, ProcessResult]:
        """Run one command per chip at the same time; every console kept under ``logs/``."""
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)

        def one(item: tuple[int, list[str]]) -> tuple[int, ProcessResult]:
            device, command = item
            log = logs / f"{what.replace(' ', '_')}_device{device}.console.txt"
            return device, self.run(command, timeout_s=self.npu_timeout_s, tool=self.tool.name, cwd=cwd,
                                    log_path=log)

        with ThreadPoolExecutor(max_workers=len(commands)) as pool:
            results = dict(pool.map(one, commands.items()))
        for device, result in sorted(results.items()):
            self.commands.append({"step": f"{step} {what}", "device_id": device, "command": list(result.command),
                                  "returncode": result.returncode, "seconds": round(result.duration_s, 1)})
        failed = [(d, r) for d, r in sorted(results.items()) if r.returncode != 0]
        if failed:
            device, result = failed[0]
            raise ToolError(f"{what} failed on device {device} ({result.describe_exit()}"
                            f"{f'; {len(failed) - 1} other chip(s) too' if len(failed) > 1 else ''})\n"
                            f"command: {shell_join(result.command)}\noutput tail:\n{result.tail() or '(no output)'}")
        return results

    def _npu_smi(self, npu_smi: ToolCommand) -> None:
        try:
            result = self.run(npu_smi("info"), timeout_s=60.0, tool="npu-smi")
        except ToolError as exc:
            atomic_write_text(self.root / "logs" / "npu-smi.error.txt", str(exc))
            return
        if result.returncode == 0:
            atomic_write_text(self.root / "npu-smi.txt", result.output)

    def _write_record(self) -> None:
        atomic_write_json(self.root / "collect.json", {
            "onnx": str(self.onnx), "soc_version": self.soc_version, "tool": self.tool.name,
            "tool_argv": list(self.tool.argv), "atc": list(self.atc_tool.argv), "device_ids": list(self.device_ids),
            "loops": self.loops, "manifest": str(self.manifest.directory), "commands": self.commands,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
