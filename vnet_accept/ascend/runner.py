"""The OM behind the runner interface: :class:`OmRunner`, registered as backend ``om-npu``.

One batch in, one batch out, like every other runner (``actual_input_1`` ``(N, 1, 64, 80, 80)`` float32 NCDHW in,
``output1`` ``(N, 64, 80, 80, 2)`` float32 log-probabilities out), so ``run_inference``, the parity helpers and
``vnet-accept infer --backend om-npu --onnx vnet_bs16.om`` can drive an OM. Two ways to run it, chosen in
``activate()`` (nothing is imported or touched on the device before):

* the ``ais_bench`` Python API (``ais_bench.infer.interface.InferSession(device_id, om)``, ``infer([x],
  mode="static")``) when it is importable in this interpreter - one model load, one call per batch;
* else the ``ais_bench`` command line: each sample written as ``<i>.bin`` (raw float32, one sample per file,
  which ais_bench stacks into batches of the OM's size), one run per batch, ``<i>_0.bin`` read back. Correct but
  slow (the model is loaded per call): the NPU tests use the tool over whole folders instead
  (:mod:`vnet_accept.ascend.collect`).

The OM's batch size is fixed at conversion: it is read from the API's input description, else ``batch_size``,
else the OM's name (``vnet_bs16.om``); ``run_inference`` pads a short last batch and drops the padding's outputs.
``bn_mode`` is ``None`` ("as compiled": what the OM does is for ``om.bn_semantics`` to find out), ``dtype``
``fp16 (ATC force_fp16)`` unless told otherwise, ``device`` ``npu:<id>``. An OM whose output stayed float16 (ATC
``--output_type``) is read as such and cast up, and ``output_dtype`` says so.

Not exercisable without an Ascend host beyond stand-ins (a fake ``InferSession`` module, a stand-in ``ais_bench``
script): the calls follow ais_bench's documented interface; check them on the first real run.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from vnet_accept.ascend.tools import ToolCommand
from vnet_accept.errors import DataError, ToolError, UsageError
from vnet_accept.reference import OM_DTYPE, ONNX_INPUT_NAME, ONNX_INPUT_SAMPLE_SHAPE, ONNX_OUTPUT_NAME
from vnet_accept.runners.base import Runner, TensorSpec
from vnet_accept.runners.registry import BackendRequest, BackendSpec, register_backend

OUTPUT_SAMPLE_SHAPE = (*ONNX_INPUT_SAMPLE_SHAPE[1:], 2)  # (64, 80, 80, 2)
API_MODULE = "ais_bench.infer.interface"
_BS_IN_NAME = re.compile(r"_bs(\d+)")
#: Seconds one ais_bench command-line call (model load + one batch) may take.
CLI_TIMEOUT_S = 600.0


def _api_available() -> bool:
    try:
        return importlib.util.find_spec(API_MODULE) is not None
    except ModuleNotFoundError:  # ais_bench itself absent
        return False


def decode_output(data: bytes | np.ndarray, samples: int, where: str = "output") -> tuple[np.ndarray, str]:
    """``(samples, 64, 80, 80, 2)`` float32 from raw bytes or an array of float32 or float16 values, and the
    dtype found. Any other size is a :class:`DataError` naming both sizes."""
    count = samples * int(np.prod(OUTPUT_SAMPLE_SHAPE))
    if isinstance(data, np.ndarray):
        array = data
        if array.size != count:
            raise DataError(f"{where}: {array.size} values, expected {count} = {samples} × {OUTPUT_SAMPLE_SHAPE}")
        return np.asarray(array, dtype=np.float32).reshape(samples, *OUTPUT_SAMPLE_SHAPE), str(array.dtype)
    for dtype in ("<f4", "<f2"):
        if len(data) == count * np.dtype(dtype).itemsize:
            array = np.frombuffer(data, dtype=dtype).astype(np.float32).reshape(samples, *OUTPUT_SAMPLE_SHAPE)
            return array, np.dtype(dtype).name
    raise DataError(f"{where}: {len(data):,} bytes; {samples} output(s) of {OUTPUT_SAMPLE_SHAPE} are "
                    f"{count * 4:,} bytes as float32 or {count * 2:,} as float16")


class OmRunner(Runner):
    """Runs an Ascend OM on one device id (see the module docstring)."""

    backend = "om"

    def __init__(self, om: str | Path, device_id: int = 0, *, name: str | None = None, batch_size: int | None = None,
                 tool: ToolCommand | None = None, use_api: bool | None = None, dtype: str = OM_DTYPE,
                 timeout_s: float = CLI_TIMEOUT_S) -> None:
        super().__init__(name or f"om-npu{device_id}", bn_mode=None, dtype=dtype, device=f"npu:{device_id}")
        self.model = Path(om)
        self.device_id = device_id
        self.batch_size = batch_size
        self.tool, self.use_api, self.timeout_s = tool, use_api, timeout_s
        self.session = None
        self.mode: str | None = None  # "api" or "cli" once active
        self.output_dtype: str | None = None
        self._workdir: Path | None = None
        self._calls = 0

    # -- lifecycle -------------------------------------------------------------------------------------------
    def activate_impl(self) -> None:
        if not self.model.is_file():
            raise UsageError(f"{self.name}: OM {self.model} does not exist; convert the ONNX with atc first")
        use_api = _api_available() if self.use_api is None else self.use_api
        if use_api:
            from ais_bench.infer.interface import InferSession  # noqa: PLC0415 - only on an Ascend host

            self.session = InferSession(self.device_id, str(self.model))
            self.mode = "api"
            inputs = self.session.get_inputs()
            shape = tuple(int(d) for d in getattr(inputs[0], "shape", ()) or ())
            if shape and shape[0] > 0:
                self.batch_size = shape[0]
        else:
            if self.tool is None:
                from vnet_accept.ascend.tools import find_ais_bench

                self.tool = find_ais_bench()  # ToolMissing says how to provide it
            self._workdir = Path(tempfile.mkdtemp(prefix="vnet-om-runner-"))
            self.mode = "cli"
        if self.batch_size is None:
            m = _BS_IN_NAME.search(self.model.name)
            if m is None:
                self.deactivate_impl()
                raise UsageError(f"{self.name}: the OM's batch size is unknown; pass batch_size (an OM's batch is "
                                 "fixed by atc --input_shape), or name it *_bs<N>.om")
            self.batch_size = int(m.group(1))

    def deactivate_impl(self) -> None:
        if self.session is not None:
            free = getattr(self.session, "free_resource", None)
            if callable(free):
                free()
            self.session = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def describe(self) -> str:
        via = f", via ais_bench {self.mode}" if self.mode else ""
        return f"{self.name} [bn_mode=as compiled, {self.dtype}, {self.device}{via}]"

    # -- inference -------------------------------------------------------------------------------------------
    def input_metadata_impl(self) -> dict[str, TensorSpec]:
        return {ONNX_INPUT_NAME: TensorSpec(np.dtype(np.float32), (self.batch_size, *ONNX_INPUT_SAMPLE_SHAPE))}

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(feed[ONNX_INPUT_NAME], dtype=np.float32)
        if self.mode == "api":
            outputs = self.session.infer([x], mode="static")
            array, self.output_dtype = decode_output(np.asarray(outputs[0]), len(x), f"{self.name} output 0")
        else:
            array = self._infer_cli(x)
        return {ONNX_OUTPUT_NAME: array}

    def _infer_cli(self, x: np.ndarray) -> np.ndarray:
        from vnet_accept.ascend.inference import AisBenchRequest, ais_bench_command
        from vnet_accept.ascend.process import run_tool

        self._calls += 1
        call = self._workdir / f"call{self._calls}"
        inputs = call / "input"
        inputs.mkdir(parents=True)
        for i, sample in enumerate(x):
            (inputs / f"{i}.bin").write_bytes(sample.tobytes())
        request = AisBenchRequest(self.model, call / "output", "run", self.batch_size, input=inputs,
                                  device_id=self.device_id)
        result = run_tool(ais_bench_command(request, self.tool), timeout_s=self.timeout_s, tool="ais_bench")
        if result.returncode != 0:
            raise ToolError(f"{self.name}: ais_bench failed ({result.describe_exit()})\n{result.tail()}")
        parts = []
        for i in range(len(x)):
            path = request.result_dir / f"{i}_0.bin"
            if not path.is_file():
                raise ToolError(f"{self.name}: ais_bench exited 0 but wrote no {path.name} for sample {i} of "
                                f"{len(x)}; console tail:\n{result.tail()}")
            array, self.output_dtype = decode_output(path.read_bytes(), 1, str(path))
            parts.append(array)
        shutil.rmtree(call, ignore_errors=True)
        return np.concatenate(parts)


def _om_npu(request: BackendRequest) -> Runner:
    path = request.onnx
    if path is None or Path(path).suffix != ".om":
        raise UsageError(f"backend om-npu runs an Ascend OM: pass --onnx vnet_bs16.om (got {path}); convert the ONNX "
                         "with atc first (`pytest -m npu` does it on an Ascend host)")
    device = (request.device or "npu:0").split(":")[-1]
    if not device.isdigit():
        raise UsageError(f"backend om-npu: device {request.device!r}; give npu:<id> or <id>")
    return OmRunner(path, int(device))


register_backend(BackendSpec("om-npu", "Ascend OM on an NPU through ais_bench (InferSession API if importable, else "
                             "the command line); pass the .om as --onnx", "onnx", _om_npu))
