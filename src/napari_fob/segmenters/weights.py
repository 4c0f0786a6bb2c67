"""SAM and SAM 2.1 checkpoints: the official tables, where a checkpoint is looked for, the download.

Nothing here downloads anything unless `download` is called (``fob weights download``); finding
a checkpoint only looks at the file system. The sha256 sums and sizes of the SAM files are those
published with the checkpoints (also listed by micro-sam's model registry). Meta publishes no
sums or sizes for the SAM 2.1 files, so theirs are unknown (None) and a download of one is not
hash-checked; the addresses are those of the sam2 repository's ``checkpoints/download_ckpts.sh``.

Standard library + pyyaml at import; pooch (the transfer) only inside `download`. Must not
import torch, napari or Qt.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from napari_fob.core import atomic, paths

ENV_VAR = "FOB_SAM_CHECKPOINT"
CONFIG_KEY = "sam_checkpoint"
SAM_MODEL_TYPES = ("vit_b", "vit_l", "vit_h")
_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
SAM2_ENV_VAR = "FOB_SAM2_CHECKPOINT"
SAM2_CONFIG_KEY = "sam2_checkpoint"
SAM2_MODEL_TYPES = ("hiera_t", "hiera_s", "hiera_b+", "hiera_l")
_SAM2_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"


@dataclass(frozen=True)
class WeightsInfo:
    """One downloadable weights file.

    Attributes:
        name: the name used on the command line (``sam-vit-b``).
        model_type: the segment-anything registry key (``vit_b``), or None for non-SAM files.
        filename: the file name in the weights folder.
        url: the official download address.
        sha256: the expected sha256 (hex), or None when no published sum is known.
        size: the expected size in bytes, or None.
    """

    name: str
    model_type: str | None
    filename: str
    url: str
    sha256: str | None
    size: int | None = None


SAM_CHECKPOINTS: dict[str, WeightsInfo] = {
    "vit_b": WeightsInfo(
        "sam-vit-b",
        "vit_b",
        "sam_vit_b_01ec64.pth",
        _BASE_URL + "sam_vit_b_01ec64.pth",
        "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
        375_042_383,
    ),
    "vit_l": WeightsInfo(
        "sam-vit-l",
        "vit_l",
        "sam_vit_l_0b3195.pth",
        _BASE_URL + "sam_vit_l_0b3195.pth",
        "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
        1_249_524_607,
    ),
    "vit_h": WeightsInfo(
        "sam-vit-h",
        "vit_h",
        "sam_vit_h_4b8939.pth",
        _BASE_URL + "sam_vit_h_4b8939.pth",
        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
        2_564_550_879,
    ),
}
_SAM2_FILES = {"hiera_t": "tiny", "hiera_s": "small", "hiera_b+": "base_plus", "hiera_l": "large"}
SAM2_CHECKPOINTS: dict[str, WeightsInfo] = {
    size: WeightsInfo(
        f"sam2.1-{size.replace('_', '-')}",
        size,
        f"sam2.1_hiera_{stem}.pt",
        f"{_SAM2_BASE_URL}sam2.1_hiera_{stem}.pt",
        None,  # not published by Meta
        None,
    )
    for size, stem in _SAM2_FILES.items()
}
WEIGHTS: dict[str, WeightsInfo] = {
    info.name: info for info in (*SAM_CHECKPOINTS.values(), *SAM2_CHECKPOINTS.values())
}


class DownloadError(RuntimeError):
    """A download could not be completed (offline, server error); the message says what to do."""


def weights_info(name: str) -> WeightsInfo:
    """Look up ``sam-vit-b`` / ``sam2.1-hiera-t`` (or the model type ``vit_b`` / ``hiera_t``) in
    the tables; ValueError if unknown."""
    if name in WEIGHTS:
        return WEIGHTS[name]
    if name in SAM_CHECKPOINTS:
        return SAM_CHECKPOINTS[name]
    if name in SAM2_CHECKPOINTS:
        return SAM2_CHECKPOINTS[name]
    raise ValueError(f"weights {name!r}: expected one of {', '.join(WEIGHTS)}")


def _check_model_type(model_type: str) -> WeightsInfo:
    if model_type not in SAM_CHECKPOINTS:
        raise ValueError(f"SAM model type {model_type!r}: expected one of {SAM_MODEL_TYPES}")
    return SAM_CHECKPOINTS[model_type]


def _config_value(model_type: str, key: str = CONFIG_KEY) -> str | None:
    """The ``sam_checkpoint`` (or ``sam2_checkpoint``) key of the user config: a path, or a
    mapping model type -> path."""
    file = paths.user_config_file()
    if not file.is_file():
        return None
    text = file.read_text()
    try:
        if file.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as err:  # a broken config must be named, not ignored
        raise ValueError(f"user config {file}: cannot be parsed ({err})") from err
    value = (data or {}).get(key) if isinstance(data, dict) else None
    if isinstance(value, dict):
        value = value.get(model_type)
    return None if value in (None, "") else str(value)


def _resolve(where: str, value: str | os.PathLike, info: WeightsInfo) -> Path:
    """A configured path: a file, or a folder holding the official file name."""
    path = Path(value).expanduser()
    if path.is_dir():
        path = path / info.filename
    if not path.is_file():
        kind = "SAM 2.1" if info.model_type in SAM2_CHECKPOINTS else "SAM"
        raise FileNotFoundError(
            f"{kind} checkpoint given by {where} not found: {path} (expected a checkpoint file "
            f"of {kind} {info.model_type}, e.g. {info.filename})"
        )
    return path


def sam_search_locations(model_type: str | None = None) -> list[tuple[str, Path]]:
    """Every place a SAM checkpoint is looked for, in search order, as (what, path).

    Args:
        model_type: ``vit_b``/``vit_l``/``vit_h``; None lists the standard file of every type.
    """
    types = SAM_MODEL_TYPES if model_type is None else (model_type,)
    rows: list[tuple[str, Path]] = []
    env = os.environ.get(ENV_VAR)
    if env:
        rows.append((f"${ENV_VAR}", Path(env).expanduser()))
    for mt in types:
        try:
            value = _config_value(mt)
        except ValueError:
            value = None
        if value:
            rows.append((f"{CONFIG_KEY} in {paths.user_config_file()}", Path(value).expanduser()))
    for mt in types:
        rows.append((f"weights folder ({mt})", paths.weights_dir() / SAM_CHECKPOINTS[mt].filename))
    return rows


def find_sam_checkpoint(model_type: str = "vit_b", explicit: str | None = None) -> Path | None:
    """The SAM checkpoint to use, or None when none is found.

    Search order: ``explicit`` (the ``--sam-checkpoint`` flag), ``$FOB_SAM_CHECKPOINT``, the key
    ``sam_checkpoint`` of the user config file (`paths.user_config_file`), the standard file in
    `paths.weights_dir`. Each of the first three may name a file or a folder holding the official
    file name.

    Raises:
        FileNotFoundError: a path that was given explicitly (flag, env var, config) does not exist;
            a wrong setting is reported, never skipped.
        ValueError: unknown model type, or an unreadable config file.
    """
    info = _check_model_type(model_type)
    if explicit is not None:
        return _resolve("--sam-checkpoint", explicit, info)
    env = os.environ.get(ENV_VAR)
    if env:
        return _resolve(f"${ENV_VAR}", env, info)
    value = _config_value(model_type)
    if value:
        return _resolve(f"{CONFIG_KEY} in {paths.user_config_file()}", value, info)
    standard = paths.weights_dir() / info.filename
    return standard if standard.is_file() else None


def find_sam2_checkpoint(size: str = "hiera_t", explicit: str | None = None) -> Path | None:
    """The SAM 2.1 checkpoint to use, or None when none is found.

    The same search as `find_sam_checkpoint`, with ``--sam2-checkpoint``,
    ``$FOB_SAM2_CHECKPOINT`` and the config key ``sam2_checkpoint`` (a path, or a mapping size
    -> path), then ``sam2.1_hiera_<name>.pt`` in `paths.weights_dir`. A MedSAM2 file is found
    only when given by one of the first three (it has no standard name here).

    Raises:
        FileNotFoundError: a path that was given explicitly does not exist.
        ValueError: unknown size, or an unreadable config file.
    """
    if size not in SAM2_CHECKPOINTS:
        raise ValueError(f"SAM 2.1 model {size!r}: expected one of {', '.join(SAM2_MODEL_TYPES)}")
    info = SAM2_CHECKPOINTS[size]
    if explicit is not None:
        return _resolve("--sam2-checkpoint", explicit, info)
    env = os.environ.get(SAM2_ENV_VAR)
    if env:
        return _resolve(f"${SAM2_ENV_VAR}", env, info)
    value = _config_value(size, SAM2_CONFIG_KEY)
    if value:
        return _resolve(f"{SAM2_CONFIG_KEY} in {paths.user_config_file()}", value, info)
    standard = paths.weights_dir() / info.filename
    return standard if standard.is_file() else None


def sam2_search_locations(size: str) -> list[tuple[str, Path]]:
    """Where a SAM 2.1 checkpoint of ``size`` is looked for, in search order, as (what, path)."""
    rows: list[tuple[str, Path]] = []
    env = os.environ.get(SAM2_ENV_VAR)
    if env:
        rows.append((f"${SAM2_ENV_VAR}", Path(env).expanduser()))
    try:
        value = _config_value(size, SAM2_CONFIG_KEY)
    except ValueError:
        value = None
    if value:
        rows.append((f"{SAM2_CONFIG_KEY} in {paths.user_config_file()}", Path(value).expanduser()))
    rows.append((f"weights folder ({size})", paths.weights_dir() / SAM2_CHECKPOINTS[size].filename))
    return rows


def find_checkpoint(info: WeightsInfo) -> Path | None:
    """`find_sam_checkpoint` or `find_sam2_checkpoint`, whichever table ``info`` is from."""
    if info.model_type in SAM2_CHECKPOINTS:
        return find_sam2_checkpoint(info.model_type)
    return find_sam_checkpoint(info.model_type)


def search_locations(info: WeightsInfo) -> list[tuple[str, Path]]:
    """`sam_search_locations` or `sam2_search_locations` for ``info``'s model type."""
    if info.model_type in SAM2_CHECKPOINTS:
        return sam2_search_locations(info.model_type)
    return sam_search_locations(info.model_type)


def file_sha256(path: str | Path) -> str:
    """The sha256 (hex) of a file; memoised in ``home_dir()/sha256.json`` by path, size, mtime.

    A SAM checkpoint is 0.4–2.5 GB: hashing it on every start would cost seconds.
    """
    path = Path(path).resolve()
    stat = path.stat()
    memo_file = paths.home_dir() / "sha256.json"
    stamp = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, json.JSONDecodeError):
        memo = {}
    if stamp in memo:
        return memo[stamp]
    digest = atomic.sha256_of_file(path)
    memo[stamp] = digest
    try:
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(memo_file, memo, indent=1)
    except OSError:
        pass  # the memo is only an optimisation
    return digest


def download(
    name: str | WeightsInfo,
    dest: str | Path | None = None,
    progress: bool = True,
    *,
    timeout: float = 30.0,
    retries: int = 2,
) -> Path:
    """Download a weights file into ``dest`` (default `paths.weights_dir`), sha256-checked.

    The transfer is pooch's: the bytes go to a temporary file in ``dest``, which is checked
    against the published sha256 and then renamed to the file name, so the folder never holds
    half a checkpoint under the real name; a failed transfer or a mismatch deletes the temporary
    file and is tried again ``retries`` times. An interrupted download starts again from zero.
    A file already there is checked, never replaced.

    Args:
        name: ``sam-vit-b``/``sam-vit-l``/``sam-vit-h`` (or a `WeightsInfo`).
        dest: target folder.
        progress: show a tqdm bar on stderr.
        timeout: seconds to wait for the server.
        retries: further attempts after a failed transfer or a sha256 mismatch.

    Returns:
        The path of the verified file.

    Raises:
        DownloadError: the server could not be reached or answered with an error.
        ValueError: unknown name, or the downloaded file's sha256 differs from the published one.
    """
    info = name if isinstance(name, WeightsInfo) else weights_info(name)
    folder = Path(dest).expanduser() if dest is not None else paths.weights_dir()
    target = folder / info.filename
    if target.is_file():
        _check_existing(target, info)
        return target
    folder.mkdir(parents=True, exist_ok=True)
    _retrieve(info, folder, progress=progress, timeout=timeout, retries=retries)
    return atomic.adopt(target)


def _check_existing(path: Path, info: WeightsInfo) -> None:
    if info.sha256 is None:
        return
    got = atomic.sha256_of_file(path)
    if got != info.sha256:
        raise ValueError(
            f"{path} exists but its sha256 is {got}, not the published {info.sha256}; delete it "
            "and run the download again"
        )


def _retrieve(
    info: WeightsInfo, folder: Path, *, progress: bool, timeout: float, retries: int
) -> None:
    """pooch's transfer of `info` into `folder`; its errors become messages that say what to do."""
    import pooch  # lazy: pooch and requests only load for a download
    import requests

    target = folder / info.filename
    advice = f"download the file elsewhere and put it at {target}"
    if info.model_type:
        flag = "--sam2-checkpoint" if info.model_type in SAM2_CHECKPOINTS else "--sam-checkpoint"
        advice += f" or pass {flag}"
    fetcher = pooch.create(
        path=folder,
        base_url=info.url.rsplit("/", 1)[0] + "/",
        registry={info.filename: f"sha256:{info.sha256}" if info.sha256 else None},
        urls={info.filename: info.url},
        retry_if_failed=retries,
    )
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=timeout)
    log = pooch.get_logger()
    level = log.level
    log.setLevel(logging.WARNING)  # its "Downloading ..." line repeats what the caller says
    try:
        fetcher.fetch(info.filename, downloader=downloader)
    except requests.HTTPError as err:
        answer = err.response
        raise DownloadError(
            f"{info.url} answered HTTP {answer.status_code} ({answer.reason}); {advice}"
        ) from err
    except requests.RequestException as err:
        raise DownloadError(f"could not reach {info.url} ({err}); {advice}") from err
    except ValueError as err:  # pooch's sha256 check; it has deleted the temporary file
        raise ValueError(
            f"sha256 mismatch for {info.url} after {retries + 1} attempt(s) ({err}); run the "
            f"command again, or {advice}"
        ) from err
    finally:
        log.setLevel(level)
