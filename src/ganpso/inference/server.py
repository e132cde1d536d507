"""``ganpso serve``: a local web page to upload a photo and see face boxes and emotion bars.

Standard library only (``http.server``): ``GET /`` is a self-contained HTML page, ``POST
/api/predict`` takes the raw image bytes and answers JSON, ``GET /api/info`` describes the model.
Bound to 127.0.0.1 unless told otherwise; uploads above ``max_upload_bytes`` get 413, non-images
get 400 with a one-line message, never a server error.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import unquote

from ganpso.errors import DataError
from ganpso.inference.predictor import EmotionPredictor

DEFAULT_MAX_UPLOAD_MB = 10


def page_html() -> bytes:
    return (resources.files("ganpso.inference") / "page.html").read_bytes()


class PredictionServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        predictor: EmotionPredictor,
        host: str = "127.0.0.1",
        port: int = 8000,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1024 * 1024,
    ) -> None:
        super().__init__((host, port), PredictionHandler)
        self.predictor = predictor
        self.max_upload_bytes = max_upload_bytes
        self.lock = threading.Lock()  # one prediction at a time: the model is not re-entrant

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


class PredictionHandler(BaseHTTPRequestHandler):
    server: PredictionServer
    server_version = "ganpso"

    def do_GET(self) -> None:
        if self.path in ("/", "/index.html"):
            self.send(HTTPStatus.OK, page_html(), "text/html; charset=utf-8")
        elif self.path == "/api/info":
            predictor = self.server.predictor
            self.send_json(
                HTTPStatus.OK,
                {
                    "model": predictor.model_path.name if predictor.model_path else None,
                    "engine": predictor.engine.name,
                    "classes": list(predictor.classes),
                    "max_upload_bytes": self.server.max_upload_bytes,
                },
            )
        else:
            self.send_json(HTTPStatus.NOT_FOUND, {"error": f"{self.path}: not found"})

    def do_POST(self) -> None:
        if self.path != "/api/predict":
            self.send_json(HTTPStatus.NOT_FOUND, {"error": f"{self.path}: not found"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.send_json(HTTPStatus.LENGTH_REQUIRED, {"error": "upload: Content-Length missing"})
            return
        limit = self.server.max_upload_bytes
        if length > limit:
            self.discard_body(length)
            self.send_json(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"error": f"upload: {length} bytes is over the {limit // 1024 // 1024} MB limit"},
            )
            return
        data = self.rfile.read(length)
        name = unquote(self.headers.get("X-Filename", "upload"))[:200]
        detect = self.headers.get("X-Detect", "1") != "0"
        try:
            with self.server.lock:
                result = self.server.predictor.predict_image(data, name, detect=detect)
        except DataError as exc:
            self.send_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        self.send_json(HTTPStatus.OK, {**result.to_dict(), "message": result.message})

    def discard_body(self, length: int) -> None:
        """Read an oversized body away so the client can read our 413 (up to 256 MB)."""
        self.close_connection = True
        remaining = length if length <= 256 * 1024 * 1024 else 0
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)

    def send_json(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        self.send(status, json.dumps(payload).encode(), "application/json")

    def send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet unless an error
        if args and str(args[1] if len(args) > 1 else "").startswith(("4", "5")):
            super().log_message(format, *args)
