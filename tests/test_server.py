"""``ganpso serve``: the page, the JSON API, its refusals, timeouts and request batching."""

from __future__ import annotations

import io
import json
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from ganpso.cli import main
from ganpso.emotions import EMOTIONS
from ganpso.inference import EmotionPredictor
from ganpso.inference.batcher import FaceBatcher
from ganpso.inference.server import PredictionServer, ServerSettings

LIMIT = 2_000_000  # bytes, the tests' upload limit
TIMEOUT_S = 1.0  # the tests' body and head timeouts


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def astronaut_png() -> bytes:
    return png(Image.fromarray(skdata.astronaut()))  # one frontal face


@pytest.fixture(scope="module")
def face_png() -> bytes:
    rng = np.random.default_rng(0)
    return png(Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)))


def start(predictor: EmotionPredictor, **settings) -> PredictionServer:
    settings = {"max_upload_bytes": LIMIT, "body_timeout_s": TIMEOUT_S} | settings
    server = PredictionServer(
        predictor, "127.0.0.1", 0, ServerSettings(head_timeout_s=TIMEOUT_S, **settings),
        log_config=None,  # uvicorn's records reach caplog
    )  # fmt: skip
    server.start()
    return server


@pytest.fixture(scope="module")
def server(tiny_checkpoint):
    server = start(EmotionPredictor.from_pretrained(tiny_checkpoint))
    yield server
    server.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def raw_request(server: PredictionServer, data: bytes, wait_s: float = 10) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    with socket.create_connection(server.server_address, timeout=wait_s) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def status_and_json(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_page_info_and_unknown_paths(server, client) -> None:
    assert server.server_address[0] == "127.0.0.1"
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<canvas" in page.text and '"api/predict"' in page.text and "FormData" in page.text
    info = client.get("/api/info").json()
    assert info["classes"] == list(EMOTIONS) and info["max_upload_bytes"] == LIMIT
    assert info["model"] == "tiny.safetensors" and info["body_timeout_s"] == TIMEOUT_S
    missing = client.get("/api/nothing")
    assert missing.status_code == 404 and missing.json() == {"error": "/api/nothing: not found"}
    assert client.get("/api/predict").status_code == 405


def test_raw_upload_finds_the_face(client, astronaut_png) -> None:
    answer = client.post("/api/predict", content=astronaut_png, headers={"X-Filename": "a%20b.png"})
    assert answer.status_code == 200
    result = answer.json()
    assert result["source"] == "a b.png" and result["size"] == [512, 512]
    assert len(result["faces"]) == 1 and result["message"] == "1 face(s)" and not result["error"]
    face = result["faces"][0]
    assert set(face["probabilities"]) == set(EMOTIONS) and len(face["box"]) == 4
    assert face["emotion"] == max(face["probabilities"], key=face["probabilities"].get)
    whole = client.post("/api/predict", content=astronaut_png, headers={"X-Detect": "0"}).json()
    assert whole["source"] == "upload" and whole["faces"][0]["box"] is None


def test_multipart_upload_equals_the_raw_one(client, face_png) -> None:
    raw = client.post("/api/predict", content=face_png, headers={"X-Detect": "0"}).json()
    form = client.post(
        "/api/predict", files={"file": ("face.png", face_png, "image/png")}, data={"detect": "0"}
    )
    assert form.status_code == 200
    assert form.json()["source"] == "face.png"
    assert form.json()["faces"] == raw["faces"] and raw["faces"][0]["box"] is None
    blank = png(Image.new("L", (200, 200), 128))  # detection on (the default): no face
    detected = client.post("/api/predict", files={"file": ("blank.png", blank)}).json()
    assert detected["message"] == "no face found" and detected["faces"] == []


def test_explain_returns_a_saliency_picture_per_face_on_request(client, face_png) -> None:
    import base64

    plain = client.post("/api/predict", content=face_png, headers={"X-Detect": "0"}).json()
    assert plain["faces"][0]["saliency"] is None  # off unless asked: it costs 122 forward passes
    form = {"detect": "0", "explain": "1"}
    answer = client.post("/api/predict", files={"file": ("f.png", face_png)}, data=form).json()
    url = answer["faces"][0]["saliency"]
    assert url.startswith("data:image/png;base64,")
    picture = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert picture.width == 2 * picture.height  # the face beside its heat map
    assert answer["faces"][0]["probabilities"] == plain["faces"][0]["probabilities"]
    raw = client.post("/api/predict", content=face_png, headers={"X-Detect": "0", "X-Explain": "1"})
    assert raw.json()["faces"][0]["saliency"] == url


def test_bad_uploads_are_one_line_json_errors(client) -> None:
    answer = client.post("/api/predict", content=b"plain text", headers={"X-Filename": "t.txt"})
    assert answer.status_code == 400 and "t.txt" in answer.json()["error"]
    assert "not a readable image" in answer.json()["error"]
    empty = client.post("/api/predict", content=b"")
    assert empty.status_code == 400 and "empty upload" in empty.json()["error"]
    no_file = client.post("/api/predict", files={"other": ("x.png", b"x")})
    assert no_file.status_code == 400 and "'file'" in no_file.json()["error"]
    broken = client.post(
        "/api/predict", content=b"--x\r\n", headers={"Content-Type": "multipart/form-data"}
    )
    assert broken.status_code == 400 and broken.json()["error"].startswith("multipart upload:")


def test_too_large_is_refused_before_and_while_reading(server, client) -> None:
    # Only the head is sent: the answer comes from Content-Length alone.
    head = b"POST /api/predict HTTP/1.1\r\nHost: t\r\nContent-Length: 50000000\r\n\r\n"
    status, answer = status_and_json(raw_request(server, head))
    assert status == 413 and answer["error"] == (
        f"upload: 50000000 bytes is over the {LIMIT} byte limit"
    )
    chunked = client.post("/api/predict", content=iter([bytes(500_000)] * 5))  # no length
    assert chunked.status_code == 413 and "limit" in chunked.json()["error"]


@pytest.mark.parametrize("length", [b"-1", b"abc", b"10, 20"])
def test_malformed_content_length_is_a_json_400(server, length) -> None:
    head = b"POST /api/predict HTTP/1.1\r\nHost: t\r\nContent-Length: " + length + b"\r\n\r\n"
    status, answer = status_and_json(raw_request(server, head))
    assert status == 400 and "Content-Length" in answer["error"]


def test_slow_clients_time_out(server) -> None:
    started = time.monotonic()
    head = b"POST /api/predict HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n"
    status, answer = status_and_json(raw_request(server, head + bytes(10)))  # 990 bytes short
    assert status == 408 and "within 1 s" in answer["error"]
    assert time.monotonic() - started < TIMEOUT_S + 2
    started = time.monotonic()
    assert raw_request(server, b"POST /api/pre") == b""  # a head that never ends: closed
    assert TIMEOUT_S - 0.1 < time.monotonic() - started < TIMEOUT_S + 2


def test_hang_ups_leave_no_traceback(server, client, face_png, caplog) -> None:
    caplog.set_level(logging.INFO)
    for request in (
        b"POST /api/predict HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + bytes(10),
        b"POST /api/predict HTTP/1.1\r\nHost: t\r\nX-Detect: 0\r\nContent-Length: "
        + str(len(face_png)).encode() + b"\r\n\r\n" + face_png,
    ):  # fmt: skip
        with socket.create_connection(server.server_address) as sock:
            sock.sendall(request)  # and hang up before the answer
    time.sleep(0.3)
    assert client.get("/api/info").status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_concurrent_requests_share_model_calls(tiny_checkpoint, face_png) -> None:
    predictor = EmotionPredictor.from_pretrained(tiny_checkpoint)
    expected = predictor.predict_image(face_png, detect=False).faces[0].probabilities
    model_call, calls, clients = predictor.predict_faces, [], 8

    def predict_faces(crops: np.ndarray) -> np.ndarray:
        calls.append(len(crops))
        deadline = time.monotonic() + 10
        # The first call waits until the other requests queue up behind it: no timing luck.
        while len(calls) == 1 and calls[0] + jobs.qsize() < clients:
            assert time.monotonic() < deadline, "the requests did not all arrive"
            time.sleep(0.01)
        return model_call(crops)

    predictor.predict_faces = predict_faces  # type: ignore[method-assign]
    server = start(predictor)
    jobs = server.app.state.batcher.jobs
    try:
        with ThreadPoolExecutor(clients) as pool:
            answers = list(pool.map(lambda _: post_face(server.url, face_png), range(clients)))
        assert httpx.get(server.url + "api/info").json()["model_calls"] == len(calls)
    finally:
        server.stop()
    assert all(answer["faces"][0]["probabilities"] == pytest.approx(expected, abs=1e-5)
               for answer in answers)  # fmt: skip
    assert sum(calls) == clients and len(calls) <= 2  # 8 requests, 1 or 2 model calls


def post_face(url: str, data: bytes) -> dict:
    answer = httpx.post(url + "api/predict", content=data, headers={"X-Detect": "0"}, timeout=30)
    assert answer.status_code == 200
    return answer.json()


def test_openapi_lists_the_endpoints_and_docs_need_no_cdn(client) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/", "/api/info", "/api/predict"} <= set(spec["paths"])
    upload = spec["paths"]["/api/predict"]["post"]
    assert {"multipart/form-data", "application/octet-stream"} <= set(
        upload["requestBody"]["content"]
    )
    assert {"200", "400", "408", "413"} <= set(upload["responses"])
    assert {p["name"] for p in upload["parameters"]} == {"X-Filename", "X-Detect"}
    assert client.get("/docs").status_code == 404  # the page would load scripts from a CDN


def test_batcher_gathers_waiting_jobs_and_passes_errors_on() -> None:
    sizes: list[int] = []

    def predict(crops: np.ndarray) -> np.ndarray:
        sizes.append(len(crops))
        if (crops == 255).any():
            raise ValueError("bad crop")
        return crops.reshape(len(crops), -1)[:, :2].astype(np.float32)

    batcher = FaceBatcher(predict, max_faces=4, wait_s=0.2)
    futures = [batcher.submit(np.full((n, 2, 2), n, np.uint8)) for n in (1, 2, 3)]
    assert [f.result(5).tolist() for f in futures] == [[[1, 1]], [[2, 2]] * 2, [[3, 3]] * 3]
    assert sizes == [6]  # one call; it stopped gathering at 4 faces or more
    with pytest.raises(ValueError, match="bad crop"):
        batcher.submit(np.full((1, 2, 2), 255, np.uint8)).result(5)
    assert batcher.submit(np.zeros((1, 2, 2), np.uint8)).result(5).shape == (1, 2)  # still alive
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(np.zeros((1, 2, 2), np.uint8))


@pytest.mark.parametrize(
    "option", [["--port", "70000"], ["--max-upload-mb", "0"], ["--body-timeout", "-1"]]
)
def test_cli_serve_refuses_bad_options(option, capsys) -> None:
    assert main(["serve", *option]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {option[0]} ") and "\n" not in err
