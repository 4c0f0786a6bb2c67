"""The schema of ``prompts.json`` (pydantic), checked field by field before a session is loaded.

A sidecar may be edited by hand; every field the loader uses is checked here against its type
and against the volume it is loaded for (``context={"shape": (Z, Y, X)}``), so that a bad file
ends in one ValueError naming the file and the field (``slices[3].prompts.fg[0]: ...``), never in
a KeyError / TypeError or, worse, a session built from garbage:

- types are strict (a label ``"3"`` or ``true`` is not an integer); numbers must be finite;
- ``shape`` must be the volume's; labels are positive integers; a ``slice`` is an index of the
  volume; ``status`` one of `history.STATUSES`; ``origin`` one of `core.prompts.ORIGINS`;
- points are ``(z, row, col)`` with ``z`` the record's slice and (row, col) on the image (its
  pixel extent, ``-0.5 <= row <= Y - 0.5``); scores, when given, one per point; thresholds in
  [0, 1]; confidences and evidence finite (a generator's evidence is not bounded);
- support runs ``[start, length]`` with ``start >= 0``, ``length >= 1`` and ``start + length <=
  Y * X``, and at least one run; at most one record per (label, slice) in ``slices`` and in
  ``supports``;
- ``window``: finite ``low < high``.

Fields the loader does not read (``source``, ``generator``, ``segmenter``, ``axes``) are only
checked to be objects / strings; unknown fields are ignored (a newer minor format may add some).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from napari_fob.core.prompts import ORIGINS
from napari_fob.session.history import STATUSES

Finite = Annotated[float, Field(allow_inf_nan=False)]
Label = Annotated[int, Field(gt=0)]
# JSON arrays: lists of a fixed length (strict mode takes no list for a tuple)
Point = Annotated[list[Finite], Field(min_length=3, max_length=3)]
Run = Annotated[list[int], Field(min_length=2, max_length=2)]
Shape = Annotated[list[Annotated[int, Field(gt=0)]], Field(min_length=3, max_length=3)]


def _shape(info: ValidationInfo) -> tuple[int, int, int]:
    return tuple((info.context or {})["shape"])  # type: ignore[return-value]


def _check_z(z: int, info: ValidationInfo) -> int:
    n = _shape(info)[0]
    if not 0 <= z < n:
        raise ValueError(f"expected a slice index in [0, {n}) (the volume's), got {z}")
    return z


class _Record(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class WindowRecord(_Record):
    low: Finite
    high: Finite
    source: str = "user"

    @model_validator(mode="after")
    def _ordered(self) -> WindowRecord:
        if not self.high > self.low:
            raise ValueError(f"expected low < high, got low={self.low}, high={self.high}")
        return self


class PromptsRecord(_Record):
    fg: list[Point] = []
    bg: list[Point] = []
    origin: Literal[ORIGINS] = "user"  # type: ignore[valid-type]
    fg_scores: list[Finite] | None = None
    bg_scores: list[Finite] | None = None
    evidence: Finite | None = None
    meta: dict[str, Any] = {}

    @field_validator("fg", "bg")
    @classmethod
    def _on_image(cls, points: list[Point], info: ValidationInfo) -> list[Point]:
        _, h, w = _shape(info)
        for i, (_, r, c) in enumerate(points):
            if not (-0.5 <= r <= h - 0.5 and -0.5 <= c <= w - 0.5):
                raise ValueError(
                    f"point {i} at (row {r}, col {c}) is off the image: expected "
                    f"-0.5 <= row <= {h - 0.5} and -0.5 <= col <= {w - 0.5}"
                )
        return points

    @model_validator(mode="after")
    def _one_score_per_point(self) -> PromptsRecord:
        for kind in ("fg", "bg"):
            scores = getattr(self, f"{kind}_scores")
            if scores is not None and len(scores) != len(getattr(self, kind)):
                raise ValueError(
                    f"{kind}_scores: expected one score per {kind} point "
                    f"({len(getattr(self, kind))}), got {len(scores)}"
                )
        return self


class SliceRecord(_Record):
    label: Label
    slice: int
    status: Literal[STATUSES]  # type: ignore[valid-type]
    confidence: Finite | None = None
    prompts: PromptsRecord | None = None

    @field_validator("slice")
    @classmethod
    def _in_the_volume(cls, z: int, info: ValidationInfo) -> int:
        return _check_z(z, info)

    @model_validator(mode="after")
    def _points_on_the_slice(self) -> SliceRecord:
        for kind in ("fg", "bg"):
            for i, point in enumerate(getattr(self.prompts, kind, [])):
                if point[0] != self.slice:
                    raise ValueError(
                        f"prompts.{kind}[{i}]: expected z = {self.slice} (the record's slice), "
                        f"got {point[0]}"
                    )
        return self


class SupportRecord(_Record):
    label: Label
    slice: int
    rle: list[Run]

    @field_validator("slice")
    @classmethod
    def _in_the_volume(cls, z: int, info: ValidationInfo) -> int:
        return _check_z(z, info)

    @field_validator("rle")
    @classmethod
    def _runs_on_the_slice(cls, runs: list[list[int]], info: ValidationInfo) -> list:
        _, h, w = _shape(info)
        if not runs:
            raise ValueError("expected at least one [start, length] run (a support is not empty)")
        for i, (start, length) in enumerate(runs):
            if start < 0 or length < 1 or start + length > h * w:
                raise ValueError(
                    f"run {i} [{start}, {length}]: expected start >= 0, length >= 1 and "
                    f"start + length <= {h * w} (the {h} x {w} slice)"
                )
        return runs


class Sidecar(_Record):
    format: str
    version: int
    shape: Shape
    window: WindowRecord
    source: dict[str, Any] | None = None
    names: dict[str, str] = {}
    generator: dict[str, Any] | None = None
    segmenter: dict[str, Any] | None = None
    thresholds: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = {}
    slices: list[SliceRecord] = []
    supports: list[SupportRecord] = []
    files: dict[str, str] | None = None

    @field_validator("shape")
    @classmethod
    def _the_volumes(cls, shape: list[int], info: ValidationInfo) -> list[int]:
        if tuple(shape) != _shape(info):
            raise ValueError(
                f"the saved session is for a volume of shape {tuple(shape)}, but the volume "
                f"given has shape {_shape(info)}"
            )
        return shape

    @field_validator("names", "thresholds")
    @classmethod
    def _label_keys(cls, table: dict[str, Any]) -> dict[str, Any]:
        for key in table:
            if not key.strip().isdigit() or int(key) <= 0:
                raise ValueError(f"key {key!r}: expected a positive integer label")
        return table

    @model_validator(mode="after")
    def _one_record_per_slice(self) -> Sidecar:
        for name in ("slices", "supports"):
            seen: set[tuple[int, int]] = set()
            for i, rec in enumerate(getattr(self, name)):
                key = (rec.label, rec.slice)
                if key in seen:
                    raise ValueError(
                        f"{name}[{i}]: a second record for label {key[0]} on slice {key[1]}"
                    )
                seen.add(key)
        return self


def _where(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def validate_sidecar(data: Any, path: Path, shape: tuple[int, ...]) -> Sidecar:
    """`data` (a parsed ``prompts.json``) checked for a volume of `shape`.

    Raises:
        ValueError: naming `path`, each bad field (at most five) and what was expected.
    """
    try:
        return Sidecar.model_validate(data, context={"shape": tuple(int(n) for n in shape)})
    except ValidationError as err:
        problems = []
        for e in err.errors(include_url=False)[:5]:
            msg = e["msg"].removeprefix("Value error, ")
            got = "" if e["type"].startswith("value_error") else f" (got {e.get('input')!r:.60})"
            where = f"field {_where(tuple(e['loc']))}: " if e["loc"] else ""
            problems.append(f"{where}{msg}{got}")
        more = err.error_count() - len(problems)
        tail = f"; and {more} more" if more > 0 else ""
        raise ValueError(
            f"{path}: not a valid napari-fob session sidecar: {'; '.join(problems)}{tail}"
        ) from None
