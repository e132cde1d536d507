"""An upload from an HTTP request, read within a size limit and a time limit.

Two forms are accepted on ``POST /api/predict``:

- raw bytes: the image file is the body; ``X-Filename`` (URL-encoded) names it, ``X-Detect: 0``
  skips face detection;
- ``multipart/form-data`` (an HTML form, ``curl -F file=@photo.jpg``): the image is the field
  ``file``; an optional field ``detect`` set to ``0`` skips face detection.

The size is checked from ``Content-Length`` before anything is read and again while the body
streams in (a chunked body declares no length); the whole body must arrive within the timeout,
so a client that declares more than it sends holds a connection for seconds, not forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

MAX_NAME = 200  # characters of a file name kept for messages and the answer's "source"
FALSE_WORDS = ("0", "false", "no", "off")


class UploadError(Exception):
    """An upload refused with an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.close = close  # the body was not read to its end: the connection cannot be reused


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    detect: bool
    explain: bool = False  # a saliency map per face (occlusion), on request only: it costs more


def is_true(value: str | None) -> bool:
    """A flag that is on unless sent as 0 / false / no / off."""
    return value is None or value.strip().lower() not in FALSE_WORDS


def size_text(count: int) -> str:
    mb = 1024 * 1024
    return f"{count // mb} MB" if count % mb == 0 else f"{count} byte"


def declared_length(request: Request, limit: int) -> int | None:
    """``Content-Length`` as a number, refused when malformed or over ``limit``."""
    header = request.headers.get("content-length")
    if header is None:
        return None  # chunked: counted while it streams
    if not header.strip().isdigit():
        raise UploadError(400, f"Content-Length {header[:40]!r}: not a byte count", close=True)
    length = int(header)
    if length > limit:
        raise UploadError(
            413, f"upload: {length} bytes is over the {size_text(limit)} limit", close=True
        )
    return length


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The body, refused when over ``limit`` bytes or when it takes over ``timeout_s``.

    A body found too large while streaming is still read (and dropped) up to ``limit`` more
    bytes, so the client gets to read the 413 instead of a reset connection.
    """
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():  # ClientDisconnect when the client hangs up
                size += len(chunk)
                if size <= limit:
                    chunks.append(chunk)
                elif size > 2 * limit:
                    break
    except TimeoutError:
        if size <= limit:
            message = f"upload: the body did not arrive within {timeout_s:g} s"
            raise UploadError(408, message, close=True) from None
    if size > limit:
        raise UploadError(413, f"upload: more than the {size_text(limit)} limit", close=True)
    return b"".join(chunks)


async def read_upload(request: Request, limit: int, timeout_s: float) -> Upload:
    """The image of a raw or multipart upload; ``UploadError`` says why one is refused."""
    declared_length(request, limit)
    body = await read_body(request, limit, timeout_s)
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        return await parse_form(request, body)
    name = unquote(request.headers.get("x-filename", "upload"))[:MAX_NAME] or "upload"
    if not body:
        raise UploadError(400, f"{name}: empty upload; send the image file as the body")
    detect, explain = request.headers.get("x-detect"), request.headers.get("x-explain")
    return Upload(name, body, is_true(detect), explain is not None and is_true(explain))


async def parse_form(request: Request, body: bytes) -> Upload:
    async def replay() -> AsyncIterator[bytes]:
        yield body

    parser = MultiPartParser(request.headers, replay(), max_files=1, max_fields=8)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise UploadError(400, f"multipart upload: {exc.message}") from None
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise UploadError(400, "multipart upload: no file in the field 'file'")
        detect, explain = form.get("detect"), form.get("explain")
        name = (file.filename or "upload")[:MAX_NAME]
        data = await file.read()
    finally:
        await form.close()
    if not data:
        raise UploadError(400, f"{name}: empty upload")
    return Upload(
        name,
        data,
        is_true(detect if isinstance(detect, str) else None),
        isinstance(explain, str) and is_true(explain),
    )
