"""The port being filed: the contributor's own files are the artifacts under test (``--onnx``, ``--prep-bin``,
``--prep-info``), checked at start-up and handed to the criteria as fixtures.

* ``submission_settings`` - the three options parsed and checked once (:func:`submission_settings_from`; a bad
  value stops the session before any test runs, in ``vnet-accept gate`` and in plain ``pytest`` alike);
* ``onnx_under_test`` - :class:`OnnxUnderTest`: ``--onnx FILE``, else the gate's reference export of the checkpoint
  in ``--bn-mode`` (fixed 64×80×80, what ATC gets), with its graph facts, sha256 and a label that says which;
* ``tiles_under_test`` - :class:`TilesUnderTest`: the port's ``<i>.bin`` files mapped to (UID, tile) by its
  numbering (:mod:`vnet_accept.data.port_tiles`), else the gate's own prepared tiles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vnet_accept.errors import DataError, UsageError

REFERENCE_LABEL = "reference export (no --onnx given)"


@dataclass(frozen=True)
class SubmissionSettings:
    onnx: Path | None
    onnx_sha256: str | None
    prep_bin: Path | None
    prep_files: int
    prep_info: Path | None


def submission_settings_from(values: dict, source: Callable[[str], str] | None = None) -> SubmissionSettings:
    """Check ``--onnx``, ``--prep-bin`` and ``--prep-info``; a bad one is a :class:`UsageError` naming the option
    (``source(dest)``: where its value came from) and saying what to pass."""
    from vnet_accept.data.port_tiles import bin_files
    from vnet_accept.data.prepare import parse_info
    from vnet_accept.export.onnx_file import read_onnx_facts

    source = source or (lambda dest: "--" + dest.replace("_", "-"))
    onnx = Path(values["onnx"]).expanduser() if values.get("onnx") else None
    sha = None
    if onnx is not None:
        if not onnx.is_file():
            raise UsageError(f"{source('onnx')}: ONNX file {onnx} does not exist; pass the port's exported vnet.onnx "
                             "(the file its ATC step converts)")
        try:
            sha = read_onnx_facts(onnx).sha256
        except UsageError as exc:
            raise UsageError(f"{source('onnx')}: {exc}") from None
    prep = Path(values["prep_bin"]).expanduser() if values.get("prep_bin") else None
    files = 0
    if prep is not None:
        try:
            files = len(bin_files(prep))
        except DataError as exc:
            raise UsageError(f"{source('prep_bin')}: {exc}") from None
    info = Path(values["prep_info"]).expanduser() if values.get("prep_info") else None
    if info is not None:
        if prep is None:
            raise UsageError(f"{source('prep_info')} {info} needs --prep-bin DIR (the <i>.bin files it lists); pass "
                             "both, or neither")
        try:
            parse_info(info.read_text(encoding="utf-8-sig"), str(info))
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{source('prep_info')}: cannot read {info} ({exc}); pass the port's "
                             "vnet_prep_bin.info") from None
        except DataError as exc:
            raise UsageError(f"{source('prep_info')}: {exc}") from None
    return SubmissionSettings(onnx, sha, prep, files, info)


settings_key = pytest.StashKey[SubmissionSettings]()


def pytest_configure(config: pytest.Config) -> None:
    """Check the submission's options at start-up: a bad value stops the session before any test runs."""
    from vnet_accept.plugin.options import stash_settings

    stash_settings(config, settings_key, submission_settings_from)


@pytest.fixture(scope="session")
def submission_settings(pytestconfig: pytest.Config) -> SubmissionSettings:
    return pytestconfig.stash[settings_key]


@dataclass(frozen=True)
class OnnxUnderTest:
    """The ONNX the export, parity, batch-invariance and BN-semantics criteria judge: ``info`` (graph facts,
    :func:`~vnet_accept.export.inspect.inspect_onnx`), ``facts`` (sha256, external data, onnx.checker,
    :func:`~vnet_accept.export.onnx_file.read_onnx_facts`), ``submitted`` (``--onnx``) or the reference export."""

    path: Path
    submitted: bool
    info: Any
    facts: Any
    bn_mode: str

    @property
    def sha256(self) -> str:
        return self.facts.sha256

    @property
    def label(self) -> str:
        if self.submitted:
            return f"submitted ONNX {self.path} (--onnx, sha256 {self.sha256[:12]}…)"
        return f"{REFERENCE_LABEL}: the gate's export of the checkpoint, bn_mode={self.bn_mode}"

    @property
    def input_name(self) -> str:
        from vnet_accept.reference import ONNX_INPUT_NAME

        return self.info.inputs[0].name if self.info.inputs else ONNX_INPUT_NAME

    @property
    def output_name(self) -> str:
        from vnet_accept.reference import ONNX_OUTPUT_NAME

        return self.info.outputs[0].name if self.info.outputs else ONNX_OUTPUT_NAME

    @property
    def batch_dim(self) -> int | None:
        """The fixed batch size of the input, or None when it is dynamic."""
        shape = self.info.inputs[0].shape if self.info.inputs else ()
        return shape[0] if shape and isinstance(shape[0], int) and shape[0] > 0 else None

    @property
    def spatial(self) -> tuple[int, int, int] | None:
        """The fixed (D, H, W) of the input, or None when any of them is dynamic."""
        shape = self.info.inputs[0].shape if self.info.inputs else ()
        dims = tuple(shape[2:]) if len(shape) == 5 else ()
        return dims if len(dims) == 3 and all(isinstance(d, int) and d > 0 for d in dims) else None  # type: ignore


@pytest.fixture(scope="session")
def onnx_under_test(submission_settings: SubmissionSettings, gate_options: Any, request: pytest.FixtureRequest):
    """:class:`OnnxUnderTest`: ``--onnx FILE``, else the gate's reference export in ``--bn-mode`` (64×80×80)."""
    from vnet_accept.export.inspect import inspect_onnx
    from vnet_accept.export.onnx_file import read_onnx_facts

    submitted = submission_settings.onnx is not None
    path = submission_settings.onnx if submitted else request.getfixturevalue("onnx_export")(gate_options.bn_mode)
    try:
        return OnnxUnderTest(Path(path), submitted, inspect_onnx(path), read_onnx_facts(path), gate_options.bn_mode)
    except UsageError as exc:
        pytest.fail(f"--onnx: {exc}" if submitted else str(exc), pytrace=False)


@dataclass(frozen=True)
class TilesUnderTest:
    """The network inputs the data criteria judge: ``manifest`` (a :class:`~vnet_accept.data.prepare.Manifest`, for
    the port's files rebuilt from its numbering), ``port`` (the :class:`~vnet_accept.data.port_tiles.PortTiles`, or
    None for the gate's own tiles)."""

    manifest: Any
    port: Any = None

    @property
    def uids(self) -> tuple[str, ...]:
        return tuple(self.manifest.uids)

    @property
    def extra_files(self) -> tuple[str, ...]:
        return self.port.extra if self.port is not None else ()

    @property
    def files(self) -> tuple[str, ...]:
        return self.port.files if self.port is not None else tuple(e.file for e in self.manifest.entries)

    def describe(self) -> str:
        if self.port is not None:
            return self.port.describe()
        return "the gate's own preprocessing (no --prep-bin given)"  # the basis names its folder already


@pytest.fixture(scope="session")
def tiles_under_test(submission_settings: SubmissionSettings, request: pytest.FixtureRequest) -> TilesUnderTest:
    """``--prep-bin DIR`` mapped to tiles by the port's numbering over the test split, else the gate's own tiles."""
    if submission_settings.prep_bin is None:
        return TilesUnderTest(request.getfixturevalue("prepared_tiles"))
    from vnet_accept.data.port_tiles import port_tiles

    split = request.getfixturevalue("test_uids")
    root = request.getfixturevalue("normalized_dataset")
    source = Path(split.source)
    try:
        port = port_tiles(submission_settings.prep_bin, split, root, uid_file=source if source.is_file() else None)
    except DataError as exc:
        pytest.fail(f"--prep-bin {submission_settings.prep_bin}: {exc}", pytrace=False)
    return TilesUnderTest(port.manifest, port)
