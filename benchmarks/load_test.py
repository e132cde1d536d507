"""Load test of ``ganpso serve`` on localhost: good, bad and slow clients at the same time.

Starts ``ganpso serve`` with the bundled model on 127.0.0.1 (a free port, a short body timeout)
as its own process, then runs three groups of clients at once:

- good: uploads over ``--concurrency`` keep-alive clients, half of them sending a 512x512 JPEG
  with one face (scikit-image's astronaut; the server detects it), half that face cropped to
  96x96 (sent with detect=0: the classifier alone), as raw bytes and multipart forms in turn;
- bad: a text file, a Content-Length over the limit, a malformed Content-Length, a form without
  its ``file`` field and an unknown path, in turn; each must get its 4xx JSON error;
- slow: connections that declare 1000 bytes and send 10; each must get 408 within the timeout.

It records per group the answered (the expected status) and failed counts and the latency
percentiles, the model calls the good uploads needed (fewer than uploads: batching), and the
server process's threads, RSS and open file descriptors before, at the peak and at the end.

    python benchmarks/load_test.py --out results/inference/load-test.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image
from skimage import data as skdata

from ganpso.inference.faces import crop_face, detect_faces

SERVE = "from ganpso.cli import main; raise SystemExit(main())"
FORM = b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--\r\n'


def http(head: str, body: bytes = b"", length: int | str | None = None) -> bytes:
    """A raw HTTP/1.1 request: ``head`` is the request line plus extra header lines."""
    length = len(body) if length is None else length
    lines = [head, "Host: localhost", "Connection: close", f"Content-Length: {length}", "", ""]
    return "\r\n".join(lines).encode() + body


BAD_REQUESTS: list[tuple[str, bytes, int]] = [  # (name, raw HTTP request, expected status)
    ("not an image", http("POST /api/predict HTTP/1.1\r\nX-Filename: a.txt", b"text " * 4), 400),
    ("declared too large", http("POST /api/predict HTTP/1.1", length=500_000_000), 413),
    ("malformed Content-Length", http("POST /api/predict HTTP/1.1", length=-1), 400),
    ("form without file", http(
        "POST /api/predict HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=x", FORM), 400),
    ("unknown path", http("GET /nothing HTTP/1.1"), 404),
]  # fmt: skip
SLOW_REQUEST = http("POST /api/predict HTTP/1.1", bytes(10), length=1000)  # 990 bytes short


Upload = tuple[str, bytes, str]  # (file name, bytes, the detect flag sent)


def test_uploads() -> list[Upload]:
    """A 512x512 JPEG photo with one face, and that face cropped to 96x96 (as after detection)."""
    photo = skdata.astronaut()
    gray = np.asarray(Image.fromarray(photo).convert("L"))
    face = crop_face(gray, detect_faces(gray)[0], 0.0, 96)
    encoded = []
    for image, fmt in ((photo, "JPEG"), (face, "PNG")):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format=fmt, quality=90)
        encoded.append(buffer.getvalue())
    return [("astronaut.jpg", encoded[0], "1"), ("astronaut-face.png", encoded[1], "0")]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def process_state(pid: int) -> dict[str, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {
        "threads": int(fields["Threads"]),
        "rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
        "peak_rss_mb": round(int(fields["VmHWM"].split()[0]) / 1024, 1),
        "open_fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def start_server(body_timeout_s: float) -> tuple[subprocess.Popen[str], str, list[str]]:
    command = [sys.executable, "-c", SERVE, "serve", "--port", "0", "--quiet"]
    command += ["--body-timeout", f"{body_timeout_s:g}"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline() if server.stdout else ""  # "serving MODEL on URL (...)"
    if " on http://" not in line:
        server.kill()
        raise SystemExit(f"ganpso serve did not start: {line!r}")
    url = line.split(" on ", 1)[1].split()[0]
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url + "api/info", timeout=5).raise_for_status()
            return server, url, ["ganpso", *command[3:]]
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.1)


def raw(address: tuple[str, int], request: bytes, timeout_s: float) -> int:
    """Send one raw request on a fresh connection; the status of the answer (0: none)."""
    with socket.create_connection(address, timeout=timeout_s) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head or "error" not in json.loads(body or b"{}"):
        return 0  # not the API's JSON error
    return int(head.split()[1])


def timed(kind: str, run: Any, expected: int) -> dict[str, Any]:
    began = time.perf_counter()
    try:
        status = run()
    except (OSError, httpx.HTTPError, ValueError) as exc:
        status = f"{type(exc).__name__}"
    latency = 1000 * (time.perf_counter() - began)
    return {"kind": kind, "status": status, "ok": status == expected, "ms": latency}


def send(client: httpx.Client, upload: Upload, as_form: bool) -> int:
    """One good upload; its status, negated when the answer holds no face."""
    name, data, detect = upload
    if as_form:
        answer = client.post("/api/predict", files={"file": (name, data)}, data={"detect": detect})
    else:
        headers = {"X-Filename": name, "X-Detect": detect}
        answer = client.post("/api/predict", content=data, headers=headers)
    faces = answer.json().get("faces") if answer.status_code == 200 else None
    return answer.status_code if faces else -answer.status_code


def good_client(url: str, upload: Upload, count: int) -> list[dict[str, Any]]:
    """One keep-alive client: ``count`` uploads of one image, raw and as a form in turn."""
    records = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for index in range(count):
            record = timed("good", partial(send, client, upload, index % 2 == 1), 200)
            records.append({**record, "upload": upload[0]})
    return records


def percentiles(records: list[dict[str, Any]]) -> dict[str, float]:
    times = [r["ms"] for r in records]
    p50, p95, p99 = np.percentile(times, [50, 95, 99]) if times else (np.nan,) * 3
    return {"p50": round(float(p50), 1), "p95": round(float(p95), 1), "p99": round(float(p99), 1)}


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "requests": len(records),
        "answered": sum(r["ok"] for r in records),
        "failed": sum(not r["ok"] for r in records),
        "statuses": dict(Counter(str(r["status"]) for r in records)),
        "latency_ms": percentiles(records),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--good", type=int, default=100, help="good uploads")
    parser.add_argument("--concurrency", type=int, default=8, help="clients sending them")
    parser.add_argument("--bad", type=int, default=20, help="bad requests")
    parser.add_argument("--slow", type=int, default=20, help="slow clients, all at once")
    parser.add_argument("--body-timeout", type=float, default=2.0, help="the server's, seconds")
    parser.add_argument("--out", type=Path, default=Path("results/inference/load-test.json"))
    args = parser.parse_args()

    uploads = test_uploads()
    load_before = round(os.getloadavg()[0], 2)  # other work on the machine slows the server
    server, url, server_command = start_server(args.body_timeout)
    address = (url.split("//")[1].split(":")[0], int(url.rsplit(":", 1)[1].strip("/")))
    try:
        info = httpx.get(url + "api/info", timeout=10).json()
        httpx.post(url + "api/predict", content=uploads[0][1], timeout=30)  # warm-up
        calls_before = httpx.get(url + "api/info", timeout=10).json()["model_calls"]
        before = process_state(server.pid)
        peak = dict(before)
        done = threading.Event()

        def watch() -> None:  # the server's most threads and descriptors during the run
            while not done.wait(0.02):
                state = process_state(server.pid)
                peak.update({k: max(peak[k], state[k]) for k in ("threads", "open_fds")})

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        began = time.perf_counter()
        share = [args.good // args.concurrency + (i < args.good % args.concurrency)
                 for i in range(args.concurrency)]  # fmt: skip
        with ThreadPoolExecutor(args.concurrency + args.slow + 2) as pool:
            good = [
                pool.submit(good_client, url, uploads[i % len(uploads)], count)
                for i, count in enumerate(share)
            ]
            slow = [
                pool.submit(
                    timed, "slow", lambda: raw(address, SLOW_REQUEST, 3 * args.body_timeout), 408
                )
                for _ in range(args.slow)
            ]
            bad = []
            for i in range(args.bad):
                name, request, expected = BAD_REQUESTS[i % len(BAD_REQUESTS)]
                bad.append(
                    pool.submit(timed, name, lambda r=request: raw(address, r, 10), expected)
                )
                time.sleep(0.02)  # spread over the run
            records = {
                "good": [r for future in good for r in future.result()],
                "bad": [future.result() for future in bad],
                "slow": [future.result() for future in slow],
            }
        wall = time.perf_counter() - began
        time.sleep(0.5)  # let the server close what the clients closed
        done.set()
        watcher.join()
        after = process_state(server.pid)
        model_calls = httpx.get(url + "api/info", timeout=10).json()["model_calls"]
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl+C: a graceful shutdown
        exit_code = server.wait(timeout=30)

    good_count = len(records["good"])
    result = {
        "check": "ganpso serve under good, bad and slow clients at once, on localhost",
        "server": {
            "command": " ".join(server_command),
            "model": info["model"],
            "engine": info["engine"],
            "body_timeout_s": info["body_timeout_s"],
            "exit_code_after_ctrl_c": exit_code,
        },
        "clients": {
            "good": f"{good_count} uploads over {args.concurrency} keep-alive clients, half of "
            f"them sending {uploads[0][0]} ({len(uploads[0][1])} bytes; the server finds the "
            f"face), half {uploads[1][0]} ({len(uploads[1][1])} bytes, with detect=0); each "
            "client sends raw bytes and multipart forms in turn",
            "bad": f"{args.bad} requests, in turn: " + ", ".join(b[0] for b in BAD_REQUESTS),
            "slow": f"{args.slow} connections declaring 1000 bytes and sending 10, all at once",
        },
        "results": {kind: summarise(rows) for kind, rows in records.items()},
        "good_by_upload": {
            name: summarise([r for r in records["good"] if r["upload"] == name])
            for name, _, _ in uploads
        },
        "bad_by_case": {
            name: summarise([r for r in records["bad"] if r["kind"] == name])
            for name, _, _ in BAD_REQUESTS
        },
        "model_calls": model_calls - calls_before,  # for the good uploads
        "wall_s": round(wall, 2),
        "good_uploads_per_s": round(good_count / wall, 1),
        "server_process": {
            "before": before,
            "peak": {"threads": peak["threads"], "open_fds": peak["open_fds"]},
            "end": after,
        },
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average_1min": {"before": load_before, "after": round(os.getloadavg()[0], 2)},
        "command": "python benchmarks/load_test.py " + " ".join(sys.argv[1:]),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
