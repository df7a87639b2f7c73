"""`vbg web`'s guard: loopback only, foreign Host/Origin refused, token, caps, 503, ports."""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from vbg.cli import main as vbg_main
from vbg.errors import ConfigError
from vbg.web.app import bind, create_app, serve_in_thread
from vbg.web.work import Busy, WorkPool

BASE = "http://127.0.0.1:7860"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    app = create_app(port=7860, output_dir=tmp_path_factory.mktemp("out"), max_body=100_000)
    with TestClient(app, base_url=BASE) as c:
        yield c


@pytest.mark.parametrize("host", ["evil.example", "evil.example:7860", "127.0.0.1:9999",
                                  "192.168.1.5:7860", "localhost.evil.example:7860"])
def test_foreign_host_is_refused(client: TestClient, host: str):
    reply = client.get("/api/about", headers={"Host": host})
    assert reply.status_code == 421 and "DNS-rebinding" in reply.json()["error"]


@pytest.mark.parametrize("host", ["127.0.0.1:7860", "localhost:7860", "[::1]:7860"])
def test_loopback_names_are_served(client: TestClient, host: str):
    assert client.get("/api/about", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:9999",
                                    "https://127.0.0.1:7860"])
def test_foreign_origin_is_refused(client: TestClient, origin: str):
    reply = client.post("/api/cutout", headers={"Origin": origin},
                        files={"image": ("a.jpg", b"x")})
    assert reply.status_code == 403 and "cross-site" in reply.json()["error"]
    assert "access-control-allow-origin" not in reply.headers, "no CORS"


def test_own_origin_and_cross_site_fetch(client: TestClient):
    own = client.get("/api/about", headers={"Origin": BASE})
    assert own.status_code == 200 and "access-control-allow-origin" not in own.headers
    sneaky = client.post("/api/matte", headers={"Sec-Fetch-Site": "cross-site",
                                                "Sec-Fetch-Mode": "no-cors"},
                         files={"image": ("a.jpg", b"x")})
    assert sneaky.status_code == 403
    link = client.get("/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
    assert link.status_code == 200, "following a link to the studio still works"


def test_upload_cap_is_413(client: TestClient):
    reply = client.post("/api/cutout", files={"image": ("big.jpg", b"\xff" * 200_000)})
    assert reply.status_code == 413 and "too large" in reply.json()["error"]


def test_chunked_upload_over_the_cap_is_413(client: TestClient):
    def chunks():
        yield (b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n"
               b"Content-Type: image/jpeg\r\n\r\n")
        for _ in range(30):
            yield b"\xff" * 10_000
        yield b"\r\n--b--\r\n"
    reply = client.post("/api/cutout", content=chunks(),
                        headers={"content-type": "multipart/form-data; boundary=b"})
    assert reply.status_code == 413 and "too large" in reply.json()["error"]
    assert client.get("/api/about").status_code == 200


def test_token_when_set(tmp_path):
    app = create_app(port=7860, token="s3cret", output_dir=tmp_path)
    with TestClient(app, base_url=BASE) as c:
        assert c.get("/api/about").status_code == 401
        assert c.get("/api/about", headers={"X-Vbg-Token": "wrong"}).status_code == 401
        assert c.get("/api/about", headers={"X-Vbg-Token": "s3cret"}).status_code == 200
        assert c.get("/api/about", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        page = c.get("/?token=s3cret")
        assert page.status_code == 200 and "HttpOnly" in page.headers["set-cookie"]
        assert c.get("/api/about").status_code == 200, "the page keeps the token as a cookie"


def test_beyond_loopback_needs_a_token(tmp_path):
    with pytest.raises(ConfigError, match="needs a token"):
        create_app(host="0.0.0.0", output_dir=tmp_path)
    app = create_app(host="0.0.0.0", token="t", output_dir=tmp_path)
    with TestClient(app, base_url="http://192.168.1.5:7860") as c:
        assert c.get("/api/about").status_code == 401
        assert c.get("/api/about", headers={"X-Vbg-Token": "t"}).status_code == 200
    assert vbg_main(["web", "--host", "0.0.0.0", "--port", "7999"]) == 2


def test_full_queue_is_503_with_retry_after(tmp_path):
    app = create_app(port=7860, output_dir=tmp_path, workers=1, queue=0)
    release = threading.Event()
    pool: WorkPool = app.state.pool
    holder = threading.Thread(target=asyncio.run, args=(pool.run(release.wait, 10),))
    holder.start()  # the only worker is taken, no queue left
    try:
        with TestClient(app, base_url=BASE) as c:
            while pool.pending == 0:
                threading.Event().wait(0.01)
            reply = c.post("/api/matte", files={"image": ("a.jpg", b"x")})
            assert reply.status_code == 503
            assert int(reply.headers["retry-after"]) >= 1
            assert "busy" in reply.json()["error"]
            assert pool.stats()["rejected"] == 1
    finally:
        release.set()
        holder.join(10)


def test_pool_bound_counts_abandoned_jobs():
    async def scenario() -> None:
        pool = WorkPool(workers=1, queue=1)
        gate = threading.Event()
        first = asyncio.ensure_future(pool.run(gate.wait, 5))
        second = asyncio.ensure_future(pool.run(gate.wait, 5))
        await asyncio.sleep(0.05)
        with pytest.raises(Busy) as busy:
            await pool.run(gate.wait, 5)
        assert busy.value.retry_after >= 1
        second.cancel()  # the client gave up before its job started: the job is dropped
        await asyncio.sleep(0.05)
        third = asyncio.ensure_future(pool.run(lambda: 3))
        await asyncio.sleep(0.05)
        assert pool.pending == 2
        gate.set()
        assert await first is True and await third == 3
        await asyncio.sleep(0.05)
        assert pool.pending == 0 and await pool.run(lambda: 7) == 7
        pool.shutdown()
    asyncio.run(scenario())


def test_port_in_use_names_the_holder(tmp_path):
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen(1)
    port = other.getsockname()[1]
    with pytest.raises(ConfigError, match="in use by another program"):
        bind("127.0.0.1", port)
    other.close()
    handle = serve_in_thread(create_app(port=0, output_dir=tmp_path), "127.0.0.1", 0)
    try:
        port = int(handle.url.rsplit(":", 1)[1].strip("/"))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/api/about")
        assert conn.getresponse().status == 200
        with pytest.raises(ConfigError, match="in use by vbg itself"):
            bind("127.0.0.1", port)
        assert vbg_main(["web", "--port", str(port)]) == 2
    finally:
        handle.stop()
    assert not handle.thread.is_alive()


def test_nothing_listens_beyond_loopback(tmp_path):
    handle = serve_in_thread(create_app(port=0, output_dir=tmp_path), "127.0.0.1", 0)
    try:
        assert handle.server.servers[0].sockets[0].getsockname()[0] == "127.0.0.1"
    finally:
        handle.stop()


def test_vbg_web_command(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [str(Path(sys.executable).with_name("vbg")), "web", "--port", str(port),
               "--output", str(tmp_path)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"vbg web: studio at http://127.0.0.1:{port}/"), line
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/about")
        reply = conn.getresponse()
        assert reply.status == 200 and json.loads(reply.read())["server"]["port"] == port
        conn.request("GET", "/", headers={"Host": "evil.example"})
        assert conn.getresponse().status == 421
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "Traceback" not in err
