"""Commands for the two NPU inference tools and where their outputs land (SPEC §5).

* ``ais_bench``: ``python3 -m ais_bench --model M --input DIR --output OUT --output_dirname NAME --outfmt BIN
  --batchsize N [--loop N] [--device D]``; tile ``<stem>.bin`` gives ``OUT/NAME/<stem>_0.bin`` (output index
  **0-based**), the summary is ``OUT/NAME_summary.json`` (older: ``OUT/<timestamp>_summary.json``, ais_infer:
  ``OUT/<timestamp>/sumary.json``). Without ``--input`` it runs pure inference on zeros (the throughput sweep).
* legacy ``benchmark.<arch>``: ``-model_type=vision -device_id=D -batch_size=N -om_path=M -input_text_path=INFO
  -input_width=80 -input_height=80 -output_binary=True -useDvpp=False``, run in a working directory; tile
  ``<stem>.bin`` gives ``result/dumpOutput_device<D>/<stem>_1.bin`` (**1-based**) and the run
  ``result/perf_vision_batchsize_<N>_device_<D>.txt``. Pure mode ``-round=R`` writes
  ``result/PureInfer_perf_of_<om stem>_bs<N>_in_device_<D>.txt``.

Outputs are matched to tiles by the input file's stem, never by position (SPEC §9). Several device ids share
the tiles through :func:`shard`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from vnet_accept.ascend.tools import ToolCommand
from vnet_accept.data.tiles import TILE_SHAPE
from vnet_accept.errors import DataError


def _prefix(tool: ToolCommand | Sequence[str]) -> list[str]:
    return list(tool.argv) if isinstance(tool, ToolCommand) else list(tool)


# --- ais_bench ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AisBenchRequest:
    model: Path
    output: Path
    output_dirname: str
    batch_size: int
    input: Path | None = None  # None: pure inference on generated data
    device_id: int = 0
    loop: int | None = None
    outfmt: str = "BIN"

    def __post_init__(self) -> None:
        if self.batch_size < 1 or (self.loop is not None and self.loop < 1):
            raise ValueError(f"batch size and loop must be >= 1, got {self.batch_size}, {self.loop}")
        if not self.output_dirname or "/" in self.output_dirname:
            raise ValueError(f"output_dirname must be a plain folder name, got {self.output_dirname!r}")

    @property
    def result_dir(self) -> Path:
        return self.output / self.output_dirname


def ais_bench_command(request: AisBenchRequest, tool: ToolCommand | Sequence[str] = ("python3", "-m", "ais_bench")
                      ) -> list[str]:
    command = [*_prefix(tool), "--model", str(request.model)]
    if request.input is not None:
        command += ["--input", str(request.input)]
    command += ["--output", str(request.output), "--output_dirname", request.output_dirname,
                "--outfmt", request.outfmt, "--batchsize", str(request.batch_size)]
    if request.loop is not None:
        command += ["--loop", str(request.loop)]
    return command + ["--device", str(request.device_id)]


def ais_bench_pure_command(model: Path, batch_size: int, loop: int, device_id: int = 0,
                           tool: ToolCommand | Sequence[str] = ("python3", "-m", "ais_bench")) -> list[str]:
    """Pure inference for the throughput sweep: no ``--input`` (generated data) and no ``--output`` (nothing
    written; the console's summary is the result - with ``--output`` every loop's outputs would land on disk)."""
    if batch_size < 1 or loop < 1:
        raise ValueError(f"batch size and loop must be >= 1, got {batch_size}, {loop}")
    return [*_prefix(tool), "--model", str(model), "--batchsize", str(batch_size), "--loop", str(loop),
            "--device", str(device_id)]


def find_ais_bench_summary(output: Path, output_dirname: str | None = None) -> Path:
    """The summary of a run into ``output``: ``<dirname>_summary.json``, else the newest timestamped one."""
    if output_dirname:
        named = output / f"{output_dirname}_summary.json"
        if named.is_file():
            return named
    found = [p for p in (*output.glob("*_summary.json"), *output.glob("*/sumary.json")) if p.is_file()]
    if not found:
        wanted = f"{output_dirname}_summary.json, " if output_dirname else ""
        raise DataError(f"no ais_bench summary in {output} (looked for {wanted}*_summary.json and */sumary.json); "
                        "did the run finish? Its console log says why not")
    return max(found, key=lambda p: p.stat().st_mtime_ns)


# --- legacy benchmark ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LegacyRequest:
    om_path: Path
    info_file: Path
    batch_size: int
    device_id: int = 0
    input_width: int = TILE_SHAPE[2]
    input_height: int = TILE_SHAPE[1]
    output_binary: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")


def legacy_command(request: LegacyRequest, tool: ToolCommand | Sequence[str]) -> list[str]:
    return [*_prefix(tool), "-model_type=vision", f"-device_id={request.device_id}",
            f"-batch_size={request.batch_size}", f"-om_path={request.om_path}",
            f"-input_text_path={request.info_file}", f"-input_width={request.input_width}",
            f"-input_height={request.input_height}", f"-output_binary={request.output_binary}", "-useDvpp=False"]


def legacy_pure_command(om_path: Path, batch_size: int, device_id: int, rounds: int,
                        tool: ToolCommand | Sequence[str]) -> list[str]:
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    return [*_prefix(tool), f"-round={rounds}", f"-om_path={om_path}", f"-device_id={device_id}",
            f"-batch_size={batch_size}"]


# --- outputs -------------------------------------------------------------------------------------------------
def link_inputs(inputs: Sequence[Path], folder: Path) -> Path:
    """A folder holding exactly ``inputs`` for a tool that takes a folder: hard links (no space, and not symbolic
    links, which newer ais_bench versions refuse as inputs), else symbolic links across file systems, else copies."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [Path(p).name for p in inputs]
    if len(set(names)) != len(names):
        raise DataError(f"input file names repeat in the set for {folder}; outputs are named by input stem, so "
                        "every tile needs a distinct file name")
    for p in inputs:
        target = folder / Path(p).name
        if target.exists() or target.is_symlink():
            target.unlink()
        try:
            os.link(Path(p).resolve(), target)
        except OSError:
            try:
                os.symlink(Path(p).resolve(), target)
            except OSError:
                shutil.copy2(p, target)
    return folder


# --- sharing tiles over device ids ----------------------------------------------------------------------------
# A 310 card has four chips, each its own device id. Shards are contiguous runs of whole batches, as even as
# possible, so only the last shard can end in a partial batch (which the tools pad) and every other chip runs
# full batches — the same work per call as a one-chip run.
T = TypeVar("T")


def check_device_ids(device_ids: Sequence[int]) -> tuple[int, ...]:
    ids = tuple(device_ids)
    if not ids:
        raise ValueError("at least one device id is needed")
    if any(not isinstance(d, int) or d < 0 for d in ids):
        raise ValueError(f"device ids must be integers >= 0, got {list(ids)}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"device ids repeat: {list(ids)}")
    return ids


def shard(items: Sequence[T], device_ids: Sequence[int], batch_size: int = 1) -> dict[int, list[T]]:
    """``{device id: items}`` in device-id order as given; devices left without a whole batch get none.

    >>> shard(list(range(10)), [0, 1], batch_size=4)
    {0: [0, 1, 2, 3, 4, 5, 6, 7], 1: [8, 9]}
    """
    ids = check_device_ids(device_ids)
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    batches = -(-len(items) // batch_size)  # ceil
    base, extra = divmod(batches, len(ids))
    shards: dict[int, list[T]] = {}
    start = 0
    for position, device in enumerate(ids):
        count = (base + (1 if position < extra else 0)) * batch_size
        chunk = list(items[start:start + count])
        if chunk:
            shards[device] = chunk
        start += count
    return shards
