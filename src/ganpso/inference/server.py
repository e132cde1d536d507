"""``ganpso serve``: the demo page and a JSON API for emotion predictions, on FastAPI + uvicorn.

API (the OpenAPI description is served at ``/openapi.json``; the interactive ``/docs`` page is
off, as it loads its scripts from a CDN and the server must work without internet):

- ``GET /``: a self-contained HTML page: upload a photo, see face boxes and emotion bars.
- ``GET /api/info``: the model (file, engine, classes) and the server's limits.
- ``POST /api/predict``: one image, either as the raw body (``X-Filename: <url-encoded name>``,
  ``X-Detect: 0`` to skip face detection) or as a ``multipart/form-data`` field ``file`` (with an
  optional field ``detect=0``); ``explain=1`` (field or ``X-Explain: 1``) adds each face's
  occlusion saliency map as a PNG data URL (``saliency``). Answers ``{"source", "size": [w,
  h], "faces": [{"box": [x, y, w, h] | null, "emotion", "probabilities": {class: p}}], "error":
  null, "message"}``.
- Errors are JSON ``{"error": "<one line>"}``: 400 not an image, a malformed request or
  ``Content-Length``; 404 / 405 unknown path or method; 408 the body did not arrive within
  ``body_timeout_s``; 413 over ``max_upload_bytes`` (checked from ``Content-Length`` before
  reading, and while reading). Over ``max_connections`` uvicorn answers 503 in plain text.

Example::

    curl -F file=@photo.jpg http://127.0.0.1:8000/api/predict
    curl --data-binary @photo.jpg -H 'X-Filename: photo.jpg' http://127.0.0.1:8000/api/predict

Behind a proxy: bound to 127.0.0.1 unless told otherwise; the page calls the API by a relative
URL, so a proxy may serve it under a path prefix; uvicorn logs the client address from
``X-Forwarded-For`` when the proxy is 127.0.0.1 (``FORWARDED_ALLOW_IPS`` names others).

Requests are handled on one event loop. Each upload is decoded on a small thread pool, its faces
are found on one detector thread (OpenCV's cascade is not thread-safe, and spreads a detection
over the cores itself), and the faces of all waiting requests are classified together by one
worker thread (``batcher.FaceBatcher``), the only caller of the model. Uploads sent with
detection off skip the detector, so they never wait behind photos. Timeouts:
``head_timeout_s`` for the request line and headers, ``body_timeout_s`` for the body,
``keep_alive_s`` for an idle connection between requests.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

import h11
import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.h11_impl import H11Protocol

from ganpso.errors import DataError
from ganpso.inference.api_schema import ERRORS, UPLOAD_DOC, Info, Prediction
from ganpso.inference.batcher import FaceBatcher
from ganpso.inference.faces import read_photo
from ganpso.inference.predictor import EmotionPredictor, ImagePrediction
from ganpso.inference.saliency import occlusion_map, overlay
from ganpso.inference.uploads import Upload, UploadError, read_upload

DEFAULT_MAX_UPLOAD_MB = 10


@dataclass(frozen=True)
class ServerSettings:
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1024 * 1024
    body_timeout_s: float = 30.0  # the whole body must arrive within this
    head_timeout_s: float = 10.0  # the request line and headers must arrive within this
    keep_alive_s: int = 5  # an idle connection is closed after this
    max_connections: int = 100  # beyond this uvicorn answers 503
    batch_faces: int = 64  # faces per model call, at most (one request may bring more)
    batch_wait_s: float = 0.005  # how long the worker waits to gather more requests
    decode_threads: int = 2  # threads decoding uploads
    # Photos decoded and waiting for the one detector thread, at most: this bounds memory, as a
    # 10 MB PNG may decode to PIL's limit of 89 megapixels.
    photos_waiting: int = 4

    def __post_init__(self) -> None:
        counts = ("max_upload_bytes", "max_connections", "batch_faces", "decode_threads")
        for name in (*counts, "photos_waiting"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} {getattr(self, name)}: must be at least 1")
        for name in ("body_timeout_s", "head_timeout_s", "keep_alive_s"):
            if not getattr(self, name) > 0:  # NaN too
                raise ValueError(f"{name} {getattr(self, name)}: must be positive")


def saliency_urls(batcher: Any, crops: np.ndarray) -> list[str]:
    """Each crop's occlusion map as a PNG data URL; the model runs on the batcher's thread."""

    def predict(faces: np.ndarray) -> np.ndarray:
        return batcher.submit(faces).result()

    urls = []
    for crop in crops:
        picture = Image.fromarray(overlay(crop, occlusion_map(predict, crop)))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        urls.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    return urls


def page_html() -> bytes:
    return (resources.files("ganpso.inference") / "page.html").read_bytes()


def error(status: int, message: str, close: bool = False) -> JSONResponse:
    headers = {"Connection": "close"} if close else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def build_app(predictor: EmotionPredictor, settings: ServerSettings | None = None) -> FastAPI:
    """The ASGI app; ``PredictionServer`` runs it on uvicorn, any ASGI server can."""
    settings = settings or ServerSettings()
    page = page_html()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = app.state
        state.batcher = FaceBatcher(
            predictor.predict_faces, settings.batch_faces, settings.batch_wait_s
        )
        state.decode = ThreadPoolExecutor(settings.decode_threads, "decode")
        # One detector thread: OpenCV's cascade is one shared object and not thread-safe (it
        # spreads each detection over the cores itself).
        state.detect = ThreadPoolExecutor(1, "detect")
        state.photos = asyncio.Semaphore(settings.photos_waiting)
        yield
        state.decode.shutdown()
        state.detect.shutdown()
        state.batcher.close()

    app = FastAPI(
        title="GAN-PSO emotion server",
        summary="Faces and their FER2013 emotions in uploaded photos",
        version="1",
        docs_url=None,  # /docs and /redoc load their scripts from a CDN
        redoc_url=None,
        lifespan=lifespan,
    )

    def read_face(upload: Upload) -> tuple[np.ndarray, list[Any], np.ndarray]:
        """Without detection the image is the face: decoding and a resize, no detector."""
        gray = read_photo(upload.data, upload.name)  # DataError: not an image
        return gray, *predictor.face_crops(gray, detect=False)

    async def find_faces(upload: Upload) -> tuple[tuple[int, int], list[Any], np.ndarray]:
        """``((width, height), boxes, crops (N, S, S))``, off the event loop."""
        run, state = asyncio.get_running_loop().run_in_executor, app.state
        if not upload.detect:
            gray, boxes, crops = await run(state.decode, read_face, upload)
        else:
            async with state.photos:
                gray = await run(state.decode, read_photo, upload.data, upload.name)
                boxes, crops = await run(state.detect, predictor.face_crops, gray, True)
        return (gray.shape[1], gray.shape[0]), boxes, crops

    @app.get("/", response_class=HTMLResponse, summary="the demo page")
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @app.get("/api/info", response_model=Info, summary="the model and the server's limits")
    async def info() -> dict[str, Any]:
        return {
            "model": predictor.model_path.name if predictor.model_path else None,
            "engine": predictor.engine.name,
            "classes": list(predictor.classes),
            "max_upload_bytes": settings.max_upload_bytes,
            "body_timeout_s": settings.body_timeout_s,
            "batch_faces": settings.batch_faces,
            "model_calls": app.state.batcher.calls,
        }

    @app.post(
        "/api/predict",
        response_model=Prediction,
        responses=ERRORS,
        openapi_extra=UPLOAD_DOC,
        summary="faces and emotions in one image (raw body or multipart field 'file')",
    )
    async def predict(request: Request) -> dict[str, Any]:
        upload = await read_upload(request, settings.max_upload_bytes, settings.body_timeout_s)
        size, boxes, crops = await find_faces(upload)
        if len(crops):
            probs = await app.state.batcher.predict_async(crops)  # (N, K)
        else:
            probs = np.zeros((0, len(predictor.classes)), np.float32)
        result = ImagePrediction(upload.name, predictor.label_faces(boxes, probs), size=size)
        answer = {**result.to_dict(), "message": result.message}
        if upload.explain and len(crops):
            maps = await asyncio.get_running_loop().run_in_executor(
                app.state.decode, saliency_urls, app.state.batcher, crops
            )
            for face, url in zip(answer["faces"], maps, strict=True):
                face["saliency"] = url
        return answer

    @app.exception_handler(UploadError)
    async def refused(request: Request, exc: UploadError) -> JSONResponse:
        return error(exc.status, exc.message, exc.close)

    @app.exception_handler(DataError)
    async def unreadable(request: Request, exc: DataError) -> JSONResponse:
        return error(400, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, f"{request.url.path}: {str(exc.detail).lower()}")

    @app.exception_handler(ClientDisconnect)
    async def hung_up(request: Request, exc: ClientDisconnect) -> Response:
        return Response(status_code=400)  # nobody reads it; no traceback in the log

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises after this answer, so the traceback still reaches the log.
        return error(500, "internal error; the server log has the details", close=True)

    return app


class ServerProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for the request head and JSON for bad requests.

    uvicorn times out idle keep-alive connections, but not a client that opens a connection and
    sends its request line and headers slowly (or never); this one closes such a connection after
    ``head_timeout_s``. A request h11 cannot parse (a ``Content-Length`` of ``-1`` or ``abc``,
    a broken request line) gets the API's JSON error instead of uvicorn's plain text.
    """

    head_timeout_s = ServerSettings.head_timeout_s

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self.head_timer = self.loop.call_later(self.head_timeout_s, self.close_if_no_request)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.head_timer.cancel()  # the next request's head gets its own deadline
        self.head_timer = self.loop.call_later(self.head_timeout_s, self.close_if_no_request)

    def close_if_no_request(self) -> None:
        waiting = self.cycle is None or self.cycle.response_complete
        if waiting and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.head_timer.cancel()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        body = json.dumps(
            {"error": "malformed HTTP request (request line, a header or Content-Length)"}
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))
        self.transport.close()


class PredictionServer:
    """The app on uvicorn, bound at construction (an ``OSError`` says the port is taken).

    Example::

        server = PredictionServer(EmotionPredictor.from_pretrained(), port=0)
        server.start()  # in a thread; server.serve_forever() blocks instead
        print(server.url)
        server.stop()
    """

    def __init__(
        self,
        predictor: EmotionPredictor,
        host: str = "127.0.0.1",
        port: int = 8000,
        settings: ServerSettings | None = None,
        *,
        log_config: dict[str, Any] | None = uvicorn.config.LOGGING_CONFIG,
        access_log: bool = True,
    ) -> None:
        self.settings = settings or ServerSettings()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family)
        protocol = type(
            "Protocol", (ServerProtocol,), {"head_timeout_s": self.settings.head_timeout_s}
        )
        self.app = build_app(predictor, self.settings)
        config = uvicorn.Config(
            self.app,
            http=protocol,
            ws="none",
            lifespan="on",
            log_config=log_config,
            access_log=access_log,
            timeout_keep_alive=self.settings.keep_alive_s,
            limit_concurrency=self.settings.max_connections,
            timeout_graceful_shutdown=int(self.settings.body_timeout_s) + 1,
        )
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    @property
    def server_address(self) -> tuple[str, int]:
        host, port = self.socket.getsockname()[:2]
        return host, port

    @property
    def url(self) -> str:
        host, port = self.server_address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def serve_forever(self) -> None:
        """Serve until Ctrl+C (a graceful shutdown), then close the socket."""
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.socket.close()

    def start(self, timeout_s: float = 30.0) -> None:
        """Serve in a background thread; returns once the server accepts connections."""
        self.thread = threading.Thread(target=self.serve_forever, name="uvicorn", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.url}: the server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop gracefully: requests in progress get their answers first."""
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join()

    shutdown = stop  # the name http.server used
