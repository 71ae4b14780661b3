"""The resolved inputs of a gate run, checked before any criterion runs.

A value may come from the command line, an environment variable or an ini file; whichever, a bad one is a
:class:`~vnet_accept.errors.UsageError` naming the option and where its value came from, and saying what to pass.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vnet_accept.errors import UsageError
from vnet_accept.options import OPTIONS_BY_DEST


def option_source(config: Any, dest: str) -> str:
    """Where an option's value came from, for messages: ``--vnet-weights``, ``VNET_ACCEPT_SHARED``, ``pytest.ini``."""
    opt = OPTIONS_BY_DEST[dest]
    if config.getoption(dest, default=None) is not None:
        return opt.flag
    if opt.env and os.environ.get(opt.env):
        return f"{opt.flag} (from {opt.env})"
    inipath = getattr(config, "inipath", None)
    return f"{opt.flag} (ini setting {opt.ini} in {inipath.name if inipath else 'the ini file'})"


def check_inputs(values: Mapping[str, Any], source: Any = None) -> dict[str, Any]:
    """Check the resolved inputs before any criterion runs; raise :class:`UsageError` naming the option.
    Returns facts for the report's "judged on" line (checkpoint sha256, dataset layout, UID count)."""
    source = source or (lambda dest: "--" + dest.replace("_", "-"))
    facts: dict[str, Any] = {}
    weights = values.get("vnet_weights")
    if weights and not Path(weights).expanduser().is_file():  # said before importing torch for load_checkpoint
        raise UsageError(f"{source('vnet_weights')}: checkpoint {weights} does not exist; pass the trained "
                         "vnet_model_best.pth.tar (or write a seeded stand-in with `vnet-accept checkpoint random "
                         "-o FILE`)")
    if weights:
        from vnet_accept.model.checkpoint import load_checkpoint

        try:
            ckpt = load_checkpoint(Path(weights).expanduser())
        except UsageError as exc:
            raise UsageError(f"{source('vnet_weights')}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any failure to load is the user's file, said in one line
            raise UsageError(f"{source('vnet_weights')}: {weights} cannot be loaded ({type(exc).__name__}: {exc}); "
                             "pass the trained vnet_model_best.pth.tar") from None
        facts["weights"] = {"path": str(weights), "sha256": ckpt.sha256}
    root = values.get("luna16_root")
    if root:
        from vnet_accept.data.discovery import discover

        try:
            dataset = discover(Path(root).expanduser())
        except UsageError as exc:
            raise UsageError(f"{source('luna16_root')}: {exc}") from None
        facts["luna16"] = {"root": str(root), "layouts": [name for name in ("raw", "normalized")
                                                          if getattr(dataset, name, None) is not None]}
    uids = values.get("test_uids")
    if uids:
        from vnet_accept.data.uids import read_uid_file

        try:
            facts["test_uids"] = {"file": str(uids), "count": len(read_uid_file(Path(uids).expanduser()))}
        except UsageError as exc:
            raise UsageError(f"{source('test_uids')}: {exc}") from None
    shared = values.get("shared_dir")
    if shared and not Path(shared).expanduser().is_dir():
        raise UsageError(f"{source('shared_dir')}: {shared} is not a folder; pass the project's reference folder "
                         "(reference/ with the port's transcripts), or leave it unset")
    cache = values.get("vnet_cache_dir")
    if cache:
        path = Path(cache).expanduser()
        if path.exists() and not path.is_dir():
            raise UsageError(f"{source('vnet_cache_dir')}: {path} is a file; pass a folder (created if missing)")
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise UsageError(f"{source('vnet_cache_dir')}: cannot create {path} ({exc.strerror or exc}); pass a "
                             "folder you can write to") from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{source('vnet_cache_dir')}: {path} is not writable; pass a folder you can write to")
        from vnet_accept.cache import CacheDirError, prepare_cache_root

        try:
            prepare_cache_root(path)
        except CacheDirError as exc:
            raise UsageError(f"{source('vnet_cache_dir')}: {exc}") from None
    from vnet_accept.plugin.submission import submission_settings_from

    submission = submission_settings_from(dict(values), source)  # the port's files under test
    if submission.onnx is not None:
        facts["onnx"] = {"path": str(submission.onnx), "sha256": submission.onnx_sha256}
    if submission.prep_bin is not None:
        facts["prep_bin"] = {"dir": str(submission.prep_bin), "files": submission.prep_files,
                             "info": str(submission.prep_info) if submission.prep_info else None}
    from vnet_accept.plugin.ascend_fixtures import npu_settings_from

    try:
        npu_settings_from(dict(values))
    except UsageError as exc:
        text = str(exc)
        raise UsageError(text if text.startswith("--") else f"NPU options: {text}") from None
    return facts
