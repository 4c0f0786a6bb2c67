"""SAM checkpoint lookup order, the official table, and the download (local HTTP server)."""

from __future__ import annotations

import hashlib
import socket
import stat
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


class _Handler(BaseHTTPRequestHandler):
    """Serves PAYLOAD at any path; a path with "flaky" answers 500 to its first request."""

    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).requests.append(self.path)
        if "missing" in self.path or ("flaky" in self.path and len(type(self).requests) == 1):
            self.send_error(404 if "missing" in self.path else 500)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _info(url: str, sha: str | None, name: str = "w.bin") -> WeightsInfo:
    return WeightsInfo("test-weights", "vit_b", "w.bin", f"{url}/{name}", sha, len(PAYLOAD))


GOOD = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_with_the_right_sha256_lands_as_one_file(server, tmp_path, capsys):
    dest = tmp_path / "weights"  # created by the download
    path = download(_info(server, GOOD), dest, progress=True)
    assert path == dest / "w.bin" and path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.iterdir()) == ["w.bin"]  # no temporary file left
    probe = tmp_path / "probe"
    probe.write_bytes(b"")  # the mode a plain open() gets under this umask, not mkstemp's 0600
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(probe.stat().st_mode)
    assert "100%" in capsys.readouterr().err  # the bar, on stderr when asked
    assert download(_info(server, GOOD), dest, progress=False) == path  # already there
    assert _Handler.requests == ["/w.bin"]  # checked, not fetched again


def test_a_failed_transfer_is_retried(server, tmp_path):
    path = download(_info(server, GOOD, "flaky"), tmp_path, progress=False, retries=1)
    assert path.read_bytes() == PAYLOAD and _Handler.requests == ["/flaky", "/flaky"]


def test_download_rejects_a_sha256_mismatch_and_leaves_nothing(server, tmp_path):
    with pytest.raises(ValueError, match="sha256 mismatch for http://127.0.0.1:.*/w.bin") as err:
        download(_info(server, "0" * 64), tmp_path, progress=False, retries=0)
    assert GOOD in str(err.value) and "--sam-checkpoint" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one
    (tmp_path / "w.bin").write_bytes(b"not it")
    with pytest.raises(ValueError, match="delete it"):
        download(_info(server, "0" * 64), tmp_path, progress=False)
    assert (tmp_path / "w.bin").read_bytes() == b"not it"  # a file already there is never replaced


def test_an_http_error_names_the_url_and_what_to_do(server, tmp_path):
    with pytest.raises(DownloadError, match=r"/missing answered HTTP 404") as err:
        download(_info(server, GOOD, "missing"), tmp_path, progress=False, retries=0)
    assert str(tmp_path / "w.bin") in str(err.value) and list(tmp_path.iterdir()) == []


def test_server_down_fails_clearly(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(DownloadError) as err:
        download(_info(url, None), tmp_path, progress=False, timeout=5, retries=0)
    message = str(err.value)
    assert f"could not reach {url}/w.bin" in message
    assert str(tmp_path / "w.bin") in message and "--sam-checkpoint" in message
    assert list(tmp_path.iterdir()) == []
