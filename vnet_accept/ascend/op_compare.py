"""The per-operator comparison that ``msit debug compare`` (``ait debug compare`` before) writes: ONNX and OM run on
the same input, every operator's output compared (SPEC §5). When the OM fails parity with the ONNX, its first
operator below the cosine threshold is where to look.

The tool writes ``{output}/{timestamp}/result_{timestamp}.csv``; copied into ``--npu-results`` (any depth), it is
found by its header, which holds at least ``NPUDump``, ``GroundTruth`` and ``CosineSimilarity`` (other columns:
``Index``, ``OpType``, ``DataType`` twice, ``Address``, ``TensorIndex``, ``Shape``, ``Overflow``, the other metrics
and ``CompareFailReason``). Rows are read in file order, which is the tool's execution order. As the tool's own
analyser does, rows of ``TransData`` operators, with ``GroundTruth`` ``*`` (no ONNX counterpart) or with a ``NaN``
metric are left out; where ``TensorIndex`` says ``…:input:…``, the row compares an input and is left out too (the
producing operator's output row holds the same tensor).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

from vnet_accept.errors import DataError

REQUIRED_COLUMNS = ("NPUDump", "GroundTruth", "CosineSimilarity")
#: How deep under ``--npu-results`` a comparison CSV is looked for (msit nests it two folders down).
MAX_DEPTH = 4


@dataclass(frozen=True)
class OpRow:
    index: str
    op_type: str
    npu_op: str
    onnx_op: str
    cosine: float
    red: float | None
    max_abs: float | None

    def describe(self) -> str:
        extra = "".join(f", {name} {value:.3g}" for name, value in (("RED", self.red), ("max |Δ|", self.max_abs))
                        if value is not None)
        return (f"operator #{self.index} {self.op_type} (OM {self.npu_op}, ONNX {self.onnx_op}): cosine "
                f"{self.cosine:.4f}{extra}")


@dataclass(frozen=True)
class OpComparison:
    """The rows of one comparison CSV that compare an operator's output."""

    path: Path
    rows: tuple[OpRow, ...]

    def first_below(self, min_cosine: float) -> OpRow | None:
        return next((r for r in self.rows if r.cosine < min_cosine), None)

    def describe(self, min_cosine: float, module_of: dict[str, str] | None = None) -> str:
        """One phrase: the first operator below ``min_cosine`` (and the VNet module its ONNX node belongs to, when
        ``module_of`` maps ONNX node names to module names), or that none is."""
        first = self.first_below(min_cosine)
        if first is None:
            return f"every one of {len(self.rows)} operators in {self.path.name} has cosine >= {min_cosine:g}"
        module = (module_of or {}).get(first.onnx_op)
        where = f" in {module}" if module else ""
        return f"first operator below cosine {min_cosine:g} in {self.path.name}: {first.describe()}{where}"


def _number(text: str | None) -> float | None:
    try:
        value = float(str(text).strip())
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def parse_op_compare(path: str | os.PathLike[str]) -> OpComparison:
    """Read one comparison CSV; :class:`DataError` naming the file when it is not one."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            lines = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot be read as a msit/ait compare CSV ({exc})") from None
    columns = {name.strip(): i for i, name in reversed(list(enumerate(header)))}  # first of duplicated names
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise DataError(f"{path}: not a msit/ait debug compare result (no {', '.join(missing)} column)")

    def cell(line: list[str], name: str) -> str:
        i = columns.get(name)
        return line[i].strip() if i is not None and i < len(line) else ""

    rows = []
    for line in lines:
        cosine = _number(cell(line, "CosineSimilarity"))
        if (cosine is None or cell(line, "OpType") == "TransData" or cell(line, "GroundTruth") in ("*", "")
                or ":input:" in cell(line, "TensorIndex")):
            continue
        rows.append(OpRow(cell(line, "Index"), cell(line, "OpType"), cell(line, "NPUDump"), cell(line, "GroundTruth"),
                          cosine, _number(cell(line, "RelativeEuclideanDistance")),
                          _number(cell(line, "MaxAbsoluteError"))))
    return OpComparison(path, tuple(rows))


def find_op_compares(root: str | os.PathLike[str]) -> list[Path]:
    """Comparison CSVs under ``root`` (to :data:`MAX_DEPTH`), recognised by their header, newest name last."""
    root = Path(root)
    found = []
    for depth in range(MAX_DEPTH + 1):
        for path in sorted(root.glob("/".join(["*"] * depth + ["*.csv"]))):
            try:
                with path.open(encoding="utf-8-sig", errors="replace") as fh:
                    head = fh.readline()
            except OSError:
                continue
            if all(c in head for c in REQUIRED_COLUMNS):
                found.append(path)
    return found
