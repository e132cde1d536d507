"""The file format of every ganpso checkpoint: safetensors weights plus a JSON header.

The header (a ``format`` tag such as ``ganpso-classifier/1``, the package version and whatever
rebuilds the network) lives in the safetensors metadata under one key, so one file describes
itself and loading never unpickles anything. Writes go to a temporary file that is renamed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

import ganpso
from ganpso.errors import CheckpointError
from ganpso.files import atomic_write

METADATA_KEY = "ganpso"
MAX_HEADER_BYTES = 100_000_000


def write_checkpoint(
    path: Path, tensors: dict[str, torch.Tensor], format_tag: str, header: dict[str, Any]
) -> None:
    """Write ``tensors`` with ``{"format": format_tag, "version": ..., **header}`` atomically."""
    meta = {"format": format_tag, "version": ganpso.__version__, **header}
    contiguous = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    atomic_write(
        path,
        lambda tmp: save_file(contiguous, tmp, metadata={METADATA_KEY: json.dumps(meta)}),
    )


def read_header(path: Path, expected: str) -> dict[str, Any]:
    """The JSON header of a ganpso safetensors file, checked for its format tag."""
    try:
        header = json.loads(_safetensors_header(path)["__metadata__"][METADATA_KEY])
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(
            f"{path}: not a ganpso safetensors checkpoint (unreadable header)"
        ) from None
    if not isinstance(header, dict) or header.get("format") != expected:
        found = header.get("format") if isinstance(header, dict) else None
        raise CheckpointError(f"{path}: expected a {expected} file, found {found!r}")
    return header


def check_shapes(path: Path, module: torch.nn.Module, prefix: str = "") -> None:
    """Compare the file's tensor shapes with ``module``'s (built on the meta device, so that a
    header asking for a huge network costs no memory) before any weight is read."""
    try:
        stored = {
            name[len(prefix) :]: tuple(entry["shape"])
            for name, entry in _safetensors_header(path).items()
            if name != "__metadata__" and name.startswith(prefix)
        }
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(
            f"{path}: not a ganpso safetensors checkpoint (unreadable header)"
        ) from None
    expected = {name: tuple(t.shape) for name, t in module.state_dict().items()}
    missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not match the described network "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    for name, shape in expected.items():
        if stored[name] != shape:
            raise CheckpointError(
                f"{path}: weights do not match the described network "
                f"({name}: file {list(stored[name])}, network {list(shape)})"
            )


def _safetensors_header(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        if not 0 < size < MAX_HEADER_BYTES:
            raise ValueError("bad header size")
        header = json.loads(handle.read(size))
    if not isinstance(header, dict):
        raise ValueError("header is not a mapping")
    return header


def load_state_file(path: Path, required: tuple[str, ...], what: str) -> dict[str, Any]:
    """A resume state file (``torch.save`` of tensors and plain values), loaded without
    unpickling code and checked for the keys its reader needs; problems are one line."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable, tampered or code-carrying file
        raise CheckpointError(
            f"{path}: cannot resume from this {what} ({_refusal(exc)}); "
            "delete it to start the run over"
        ) from None
    missing = [key for key in required if not isinstance(payload, dict) or key not in payload]
    if missing:
        raise CheckpointError(f"{path}: not a {what} (missing {missing})")
    return payload


def _refusal(exc: Exception) -> str:
    """Why torch refused a file, without its advice to load it unsafely."""
    if "Weights only load failed" in str(exc):
        return "it holds objects other than tensors and plain values, which are never unpickled"
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
