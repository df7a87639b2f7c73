"""REST API of `vbg web`: results as `vbg still` makes them, JSON errors, batches, ID photos."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from vbg.cli import main as vbg_main
from vbg.measure.metrics import iou
from vbg.web.app import create_app

BASE = "http://127.0.0.1:7860"
PORTRAIT = "000000000036"  # one person facing the camera (ID photos work on it)
OTHER = "000000000110"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    app = create_app(port=7860, output_dir=tmp_path_factory.mktemp("studio"))
    with TestClient(app, base_url=BASE) as c:
        yield c


@pytest.fixture(scope="module")
def photos(shared_set) -> Path:
    return shared_set("coco_person")


def post_image(client: TestClient, url: str, path: Path, **fields: str):
    with open(path, "rb") as f:
        return client.post(url, data=fields, files={"image": (path.name, f, "image/jpeg")})


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, "the response is not an image"
    return image


def still(tmp_path: Path, photo: Path, out_name: str, *flags: str) -> np.ndarray:
    """What `vbg still` writes for the same photo and flags."""
    out = tmp_path / out_name
    assert vbg_main(["still", str(photo), "-o", str(out), *flags]) == 0
    return cv2.imread(str(out), cv2.IMREAD_UNCHANGED)


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A tiny PNG whose header declares width x height pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b""))


def test_cutout_is_what_vbg_still_makes(client: TestClient, photos: Path, tmp_path: Path):
    photo = photos / "images" / f"{PORTRAIT}.jpg"
    reply = post_image(client, "/api/cutout", photo)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "image/png"
    web = decode(reply.content)
    assert web.shape[2] == 4, "the default is a transparent RGBA cut-out"
    cli = still(tmp_path, photo, "cli.png")
    assert web.shape == cli.shape
    web_alpha, cli_alpha = web[:, :, 3] / 255.0, cli[:, :, 3] / 255.0
    assert iou(web_alpha, cli_alpha) >= 0.99
    truth = cv2.imread(str(photos / "alpha" / f"{PORTRAIT}.png"), cv2.IMREAD_GRAYSCALE) / 255.0
    assert abs(iou(web_alpha, truth) - iou(cli_alpha, truth)) <= 0.01
    assert iou(web_alpha, truth) > 0.5, "a real matte of the person"


def test_options_mean_what_the_still_flags_mean(client: TestClient, photos: Path,
                                                tmp_path: Path):
    photo = photos / "images" / f"{OTHER}.jpg"
    reply = post_image(client, "/api/cutout", photo, background="#00ff00", format="jpeg",
                       erode="3", feather="4", alpha_threshold="0.6", quality="90")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "image/jpeg"
    web = decode(reply.content)
    cli = still(tmp_path, photo, "cli.jpg", "--color", "#00ff00", "--erode", "3", "--feather",
                "4", "--alpha-threshold", "0.6", "--quality", "90")
    assert web.shape == cli.shape
    assert np.abs(web.astype(int) - cli.astype(int)).mean() < 1.0
    plain = decode(post_image(client, "/api/cutout", photo, background="#00ff00",
                              format="png").content)
    green = np.all(np.abs(plain.astype(int) - (0, 255, 0)) < 10, axis=2).mean()
    green_eroded = np.all(np.abs(web.astype(int) - (0, 255, 0)) < 40, axis=2).mean()
    assert green_eroded > green, "erode 3 + threshold 0.6 shows more background"


def test_matte_and_webp_and_blur(client: TestClient, photos: Path):
    photo = photos / "images" / f"{PORTRAIT}.jpg"
    matte = post_image(client, "/api/matte", photo)
    assert matte.status_code == 200
    grey = Image.open(io.BytesIO(matte.content))
    assert grey.mode == "L"
    cut = decode(post_image(client, "/api/cutout", photo, format="webp").content)
    assert cut.shape[2] == 4 and cut.shape[:2] == np.asarray(grey).shape
    assert iou(np.asarray(grey) / 255.0, cut[:, :, 3] / 255.0) > 0.97  # lossy WebP alpha
    blurred = post_image(client, "/api/cutout", photo, background="blur:20")
    assert blurred.status_code == 200 and decode(blurred.content).shape[2] == 3


@pytest.mark.parametrize(("name", "content", "status", "words"), [
    ("notes.txt", b"this is not a photo\n", 415, "not an image"),
    ("empty.jpg", b"", 422, "empty"),
    ("bomb.png", bomb_png(), 413, "too large"),
])
def test_bad_uploads_get_json_errors(client: TestClient, name: str, content: bytes,
                                     status: int, words: str):
    reply = client.post("/api/cutout", files={"image": (name, content, "image/jpeg")})
    assert reply.status_code == status, reply.text
    assert words in reply.json()["error"] and name in reply.json()["error"]
    assert client.get("/api/about").status_code == 200, "the server keeps serving"


def test_truncated_jpeg_then_a_good_one(client: TestClient, photos: Path):
    data = (photos / "images" / f"{OTHER}.jpg").read_bytes()
    reply = client.post("/api/cutout", files={"image": ("cut.jpg", data[: len(data) // 2])})
    assert reply.status_code == 422 and "truncated" in reply.json()["error"]
    assert client.post("/api/matte", files={"image": ("ok.jpg", data)}).status_code == 200


@pytest.mark.parametrize(("url", "fields", "words"), [
    ("/api/cutout", {"background": "no-such-colour"}, "not a colour"),
    ("/api/cutout", {"format": "jpeg"}, "cannot store the transparent"),
    ("/api/cutout", {"format": "gif"}, "use png, jpeg or webp"),
    ("/api/cutout", {"erode": "lots"}, "expected an integer"),
    ("/api/cutout", {"alpha_threshold": "2"}, "0 to 1"),
    ("/api/id-photo", {"preset": "moon"}, "unknown ID-photo preset"),
    ("/api/id-photo", {"color": "#12"}, "colour"),
])
def test_bad_fields_are_422(client: TestClient, url: str, fields: dict, words: str):
    reply = client.post(url, data=fields, files={"image": ("a.png", b"\x89PNG\r\n\x1a\n")})
    assert reply.status_code == 422, reply.text
    assert words in reply.json()["error"].lower() or words in reply.json()["error"]


def test_missing_image_and_not_multipart(client: TestClient):
    reply = client.post("/api/cutout")
    assert reply.status_code == 422 and "missing field 'image'" in reply.json()["error"]
    reply = client.post("/api/cutout", content=b'{"image": 1}',
                        headers={"content-type": "application/json"})
    assert reply.status_code == 422 and "error" in reply.json()


def test_batch_zip_has_good_outputs_and_errors(client: TestClient, photos: Path):
    good = [photos / "images" / f"{s}.jpg" for s in (PORTRAIT, OTHER)]
    files = [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in good]
    files.insert(1, ("images", ("broken.jpg", good[0].read_bytes()[:3000], "image/jpeg")))
    reply = client.post("/api/batch", data={"background": "white", "format": "jpeg"},
                        files=files)
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(reply.content))
    assert sorted(archive.namelist()) == sorted([f"{PORTRAIT}.jpg", f"{OTHER}.jpg",
                                                 "errors.txt"])
    errors = archive.read("errors.txt").decode().splitlines()
    assert len(errors) == 1 and errors[0].startswith("broken.jpg: truncated JPEG")
    assert decode(archive.read(f"{OTHER}.jpg")).shape[2] == 3


def test_id_photo_at_300_dpi_with_report(client: TestClient, photos: Path):
    reply = post_image(client, "/api/id-photo", photos / "images" / f"{PORTRAIT}.jpg",
                       preset="passport", color="blue")
    assert reply.status_code == 200, reply.text
    im = Image.open(io.BytesIO(reply.content))
    assert im.format == "JPEG" and im.size == (413, 531)
    assert tuple(round(d) for d in im.info["dpi"]) == (300, 300)
    report = json.loads(reply.headers["x-vbg-report"])
    assert report["preset"] == "passport" and report["ok"] is True
    assert report["checks"] and all(c["ok"] and c["message"] for c in report["checks"])
    corner = np.asarray(im.convert("RGB"))[2, 2].astype(int)
    assert np.abs(corner - (67, 142, 219)).max() < 12, "ID blue background"


def test_id_photo_refusal_says_why_and_force_makes_it(client: TestClient, photos: Path):
    group = photos / "images" / f"{OTHER}.jpg"  # two people
    refused = post_image(client, "/api/id-photo", group, preset="passport")
    assert refused.status_code == 422 and "faces" in refused.json()["error"]
    made = post_image(client, "/api/id-photo", group, preset="us", allow_multiple="1",
                      force="1", color="white")
    assert made.status_code == 200, made.text
    assert Image.open(io.BytesIO(made.content)).size == (600, 600)
    assert "rules" in json.loads(made.headers["x-vbg-report"])


def test_id_photo_without_a_face_says_so(client: TestClient):
    scene = Path(__file__).resolve().parents[1] / "vbg/backgrounds/images/space.jpg"
    reply = post_image(client, "/api/id-photo", scene, preset="1inch")
    assert reply.status_code == 422
    assert "face" in reply.json()["error"]


def test_presets_and_about(client: TestClient):
    names = [p["name"] for p in client.get("/api/presets").json()]
    assert {"passport", "1inch", "2inch", "us"} <= set(names)
    about = client.get("/api/about").json()
    assert about["app"] == "vbg" and about["live"] is False
    assert {"fastapi", "uvicorn", "pillow"} <= set(about["versions"])
    assert any(m["name"] == "selfie" and m["licence"] for m in about["models"])
    assert about["provider"]["running"], "the provider really used after a photo"


def test_docs_and_page_are_served_offline(client: TestClient):
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    for asset in ("/static/app.js", "/static/app.css", "/docs", "/static/docs.js"):
        body = client.get(asset).text
        assert "http://" not in body.replace("http://${location.host}", "") or asset == "/docs"
        assert "https://" not in body, f"{asset} must not load anything from the internet"
    spec = client.get("/openapi.json").json()
    assert {"/api/cutout", "/api/matte", "/api/id-photo", "/api/batch"} <= set(spec["paths"])


def test_page_render_keeps_result_and_matte(client: TestClient, photos: Path):
    reply = post_image(client, "/api/studio/render", photos / "images" / f"{PORTRAIT}.jpg",
                       mode="cutout", matte="1", background="blur:10", format="webp")
    assert reply.status_code == 200, reply.text
    out = reply.json()
    result = client.get(out["url"])
    assert result.headers["content-type"] == "image/webp"
    assert decode(result.content).shape[:2] == (out["height"], out["width"])
    matte = Image.open(io.BytesIO(client.get(out["matte_url"]).content))
    assert matte.mode == "L" and matte.size == (out["width"], out["height"])
    download = client.get(out["url"] + "?download=1")
    assert download.headers["content-disposition"].startswith("attachment")
    assert f'{PORTRAIT}.webp' in download.headers["content-disposition"]
    for bad in ("..%2F..%2Fetc%2Fpasswd", ".hidden", "nothing.png"):
        assert client.get(f"/api/studio/files/scratch/{bad}").status_code == 404
    assert client.get("/api/studio/files/nobatch/x.png").status_code == 404


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_batch_takes_zips_of_photos(client: TestClient, photos: Path):
    good = (photos / "images" / f"{OTHER}.jpg").read_bytes()
    archive = zip_of({"shoot/a.jpg": good, "shoot/b.jpg": good[:2000], "notes.md": b"x",
                      "__MACOSX/._a.jpg": b"junk"})
    reply = client.post("/api/batch", data={"background": "studio"}, files=[
        ("images", ("shoot.zip", archive, "application/zip")),
        ("images", ("bad.zip", b"PK\x03\x04 not really", "application/zip"))])
    assert reply.status_code == 200, reply.text
    result = zipfile.ZipFile(io.BytesIO(reply.content))
    assert sorted(result.namelist()) == ["a.png", "errors.txt"]
    errors = result.read("errors.txt").decode().splitlines()
    assert errors[0].startswith("bad.zip: not a readable zip archive")
    assert errors[1].startswith("shoot.zip/shoot/b.jpg: truncated JPEG")


def test_own_background_image(client: TestClient, photos: Path):
    photo = photos / "images" / f"{PORTRAIT}.jpg"
    backdrop = np.zeros((300, 400, 3), np.uint8)
    backdrop[:] = (255, 0, 0)  # blue (BGR)
    _, encoded = cv2.imencode(".png", backdrop)
    with open(photo, "rb") as f:
        reply = client.post("/api/cutout", files={
            "image": (photo.name, f, "image/jpeg"),
            "background_image": ("blue.png", encoded.tobytes(), "image/png")})
    assert reply.status_code == 200, reply.text
    out = decode(reply.content)
    assert out.shape[2] == 3 and tuple(out[2, 2]) == (255, 0, 0)
    bad = client.post("/api/cutout", files={"image": (photo.name, photo.read_bytes()),
                                            "background_image": ("x.png", b"nope")})
    assert bad.status_code == 415 and "background_image x.png" in bad.json()["error"]


def test_page_batch_from_a_zip(client: TestClient, photos: Path):
    good = (photos / "images" / f"{PORTRAIT}.jpg").read_bytes()
    batch = client.post("/api/studio/batches").json()
    members = client.post(f"/api/studio/batches/{batch['id']}/unzip", files={
        "archive": ("set.zip", zip_of({"one.jpg": good, "two.png": b"not a png"}))}).json()
    assert members["members"] == ["set.zip/one.jpg", "set.zip/two.png"]
    first = client.post("/api/studio/render", data={"batch": batch["id"],
                                                    "member": "set.zip/one.jpg"})
    assert first.status_code == 200 and first.json()["saved"].endswith("one.png")
    second = client.post("/api/studio/render", data={"batch": batch["id"],
                                                     "member": "set.zip/two.png"})
    assert second.status_code == 415
    result = zipfile.ZipFile(io.BytesIO(client.get(
        f"/api/studio/batches/{batch['id']}/zip").content))
    assert sorted(result.namelist()) == ["errors.txt", "one.png"]
    assert result.read("errors.txt").decode().startswith("set.zip/two.png: not an image")


def test_fast_matting_is_vbg_still_matting_fast(client: TestClient, photos: Path,
                                                tmp_path: Path):
    photo = photos / "images" / f"{OTHER}.jpg"
    reply = post_image(client, "/api/matte", photo, matting="fast", feather="2")
    assert reply.status_code == 200, reply.text
    web = np.asarray(Image.open(io.BytesIO(reply.content))) / 255.0
    cli = still(tmp_path, photo, "fast.png", "--matting", "fast", "--feather", "2")
    assert iou(web, cli[:, :, 3] / 255.0) >= 0.99
    assert post_image(client, "/api/matte", photo, matting="slow").status_code == 422
