"""SAM checkpoint lookup order, the official table, and the download (local HTTP server)."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from napari_fob.core import paths
from napari_fob.segmenters import weights
from napari_fob.segmenters.weights import (
    DownloadError,
    WeightsInfo,
    download,
    find_sam_checkpoint,
    sam_search_locations,
)

PAYLOAD = bytes(range(256)) * 40  # 10 kB


def test_official_table():
    assert [i.filename for i in weights.SAM_CHECKPOINTS.values()] == [
        "sam_vit_b_01ec64.pth",
        "sam_vit_l_0b3195.pth",
        "sam_vit_h_4b8939.pth",
    ]
    for info in weights.SAM_CHECKPOINTS.values():
        assert info.url == f"https://dl.fbaipublicfiles.com/segment_anything/{info.filename}"
        assert info.sha256 is not None and len(info.sha256) == 64
        assert info.sha256.startswith(info.sha256.lower())
    assert weights.weights_info("vit_h") is weights.weights_info("sam-vit-h")
    with pytest.raises(ValueError, match="sam-vit-b"):
        weights.weights_info("sam-vit-x")


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_search_order_flag_env_config_folder(tmp_path, monkeypatch):
    assert find_sam_checkpoint("vit_b") is None
    standard = _touch(paths.weights_dir() / "sam_vit_b_01ec64.pth")
    assert find_sam_checkpoint("vit_b") == standard
    from_config = _touch(tmp_path / "cfg" / "b.pth")
    paths.user_config_file().write_text(f"sam_checkpoint: {from_config}\n")
    assert find_sam_checkpoint("vit_b") == from_config
    from_env = _touch(tmp_path / "env" / "sam_vit_b_01ec64.pth")
    monkeypatch.setenv("FOB_SAM_CHECKPOINT", str(from_env.parent))  # a folder works too
    assert find_sam_checkpoint("vit_b") == from_env
    explicit = _touch(tmp_path / "flag.pth")
    assert find_sam_checkpoint("vit_b", str(explicit)) == explicit
    whats = [what for what, _ in sam_search_locations("vit_b")]
    assert whats[0] == "$FOB_SAM_CHECKPOINT" and "sam_checkpoint in" in whats[1]
    assert whats[2].startswith("weights folder")


def test_config_mapping_per_model_type(tmp_path):
    vit_l = _touch(tmp_path / "l.pth")
    paths.user_config_file().write_text(f"sam_checkpoint:\n  vit_l: {vit_l}\n")
    assert find_sam_checkpoint("vit_l") == vit_l
    assert find_sam_checkpoint("vit_b") is None


def test_given_paths_that_do_not_exist_are_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="--sam-checkpoint.*nope.pth"):
        find_sam_checkpoint("vit_b", str(tmp_path / "nope.pth"))
    monkeypatch.setenv("FOB_SAM_CHECKPOINT", str(tmp_path / "gone.pth"))
    with pytest.raises(FileNotFoundError, match="FOB_SAM_CHECKPOINT"):
        find_sam_checkpoint("vit_b")
    monkeypatch.delenv("FOB_SAM_CHECKPOINT")
    paths.user_config_file().write_text("sam_checkpoint: [unclosed\n")
    with pytest.raises(ValueError, match="cannot be parsed"):
        find_sam_checkpoint("vit_b")
    with pytest.raises(ValueError, match="vit_x"):
        find_sam_checkpoint("vit_x")


class _RangeHandler(BaseHTTPRequestHandler):
    """Serves PAYLOAD at any path, honouring ``Range: bytes=N-``; records the ranges asked."""

    ranges: list[str | None] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        asked = self.headers.get("Range")
        type(self).ranges.append(asked)
        start = int(asked.split("=")[1].rstrip("-")) if asked else 0
        body = PAYLOAD[start:]
        self.send_response(206 if asked else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _RangeHandler.ranges = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _info(url: str, sha: str | None) -> WeightsInfo:
    return WeightsInfo("test-weights", "vit_b", "w.bin", f"{url}/w.bin", sha, len(PAYLOAD))


def test_download_checks_sha256_and_resumes_a_partial_file(server, tmp_path):
    good = hashlib.sha256(PAYLOAD).hexdigest()
    (tmp_path / "w.bin.part").write_bytes(PAYLOAD[:3000])
    path = download(_info(server, good), tmp_path, progress=False)
    assert path == tmp_path / "w.bin" and path.read_bytes() == PAYLOAD
    assert _RangeHandler.ranges == ["bytes=3000-"] and not (tmp_path / "w.bin.part").exists()
    assert download(_info(server, good), tmp_path, progress=False) == path  # already there
    assert len(_RangeHandler.ranges) == 1


def test_download_rejects_a_sha256_mismatch(server, tmp_path):
    with pytest.raises(ValueError, match="sha256 mismatch"):
        download(_info(server, "0" * 64), tmp_path, progress=True)
    assert not (tmp_path / "w.bin").exists() and not (tmp_path / "w.bin.part").exists()
    (tmp_path / "w.bin").write_bytes(b"not it")
    with pytest.raises(ValueError, match="delete it"):
        download(_info(server, "0" * 64), tmp_path, progress=False)


def test_offline_download_fails_clearly(tmp_path):
    info = WeightsInfo("test-weights", "vit_b", "w.bin", "http://127.0.0.1:9/x", None)
    with pytest.raises(DownloadError) as err:
        download(info, tmp_path, progress=False, timeout=5)
    message = str(err.value)
    assert "could not reach http://127.0.0.1:9/x" in message
    assert str(tmp_path / "w.bin") in message and "--sam-checkpoint" in message
