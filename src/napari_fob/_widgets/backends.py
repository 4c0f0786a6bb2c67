"""Which prompt generator and segmenter the annotator uses, and the sentence that says so.

`BackendChoice` is what the form asks for; `build` turns it into objects (loading weights, so it
runs in a worker) and returns the status sentence shown permanently under the model choice, e.g.
"Prompts: FoB default · Segmenter: random walker (No SAM checkpoint found ...)". Nothing is
downloaded. When the *default* FoB weights are not installed, the mask-ring baseline is used and
the sentence says so (an explicitly given checkpoint that is missing is an error instead).
Qt-free; imports torch only through the generator/segmenter builders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FOB_DEFAULT = "default"
#: The baselines the form offers besides FoB (built by name, no weights).
BASELINES = ("mask-ring", "registration")


@dataclass(frozen=True)
class BackendChoice:
    """The models asked for in the form.

    Attributes:
        prompts: "fob", "mask-ring" or "registration".
        fob_checkpoint: "default" (the shipped model) or a checkpoint path.
        segmenter: "auto", "sam" or "random-walker".
        sam_model: "vit_b", "vit_l" or "vit_h".
        sam_checkpoint: a checkpoint path, or None to search the usual places.
        device: "auto", "cpu", "cuda" or "mps".
    """

    prompts: str = "fob"
    fob_checkpoint: str = FOB_DEFAULT
    segmenter: str = "auto"
    sam_model: str = "vit_b"
    sam_checkpoint: str | None = None
    device: str = "auto"

    def describe(self) -> str:
        """What was asked for (before anything is loaded)."""
        prompts = f"{self.prompts} baseline" if self.prompts in BASELINES else None
        prompts = prompts or f"FoB {self.fob_checkpoint}"
        seg = (
            "random walker"
            if self.segmenter == "random-walker"
            else (f"{self.segmenter} (SAM {self.sam_model})")
        )
        return f"Prompts: {prompts} · Segmenter: {seg} (loaded at the first use)"


def _generator_text(generator: Any, choice: BackendChoice, notice: str | None) -> str:
    kind = getattr(generator, "name", type(generator).__name__)
    text = "FoB " + choice.fob_checkpoint if kind == "fob" else f"{kind} baseline"
    return text + (f" ({notice})" if notice else "")


def _segmenter_text(segmenter: Any, notice: str | None) -> str:
    info = segmenter.describe() if hasattr(segmenter, "describe") else {}
    kind = str(info.get("kind", getattr(segmenter, "name", type(segmenter).__name__)))
    text = "random walker" if "random" in kind else kind
    model = info.get("model_type") or info.get("model")
    if model and "random" not in kind:
        text += f" {model}"
    return text + (f" ({notice})" if notice else "")


def status_text(
    generator: Any,
    segmenter: Any,
    choice: BackendChoice,
    *,
    generator_notice: str | None = None,
    segmenter_notice: str | None = None,
) -> str:
    """The sentence naming the generator and segmenter in use, with any fallback notice."""
    return (
        f"Prompts: {_generator_text(generator, choice, generator_notice)} · "
        f"Segmenter: {_segmenter_text(segmenter, segmenter_notice)}"
    )


def build(choice: BackendChoice, *, cache: Any = None) -> tuple[Any, Any, str, str]:
    """Build (generator, segmenter, status sentence, details) for `choice`.

    The status sentence is short (what is used, and a fallback's reason in a few words); the
    details hold the full notices (where weights were looked for, how to get them).

    Raises:
        FileNotFoundError: an explicit FoB or SAM checkpoint is missing, or "sam" was asked
            for and no checkpoint was found.
        ValueError: an unknown name.
    """
    from napari_fob.prompting.generators import make_generator
    from napari_fob.segmenters import get_segmenter

    gen_notice = None
    details: list[str] = []
    if choice.prompts in BASELINES:
        generator = make_generator(choice.prompts)
    else:
        try:
            generator = make_generator(
                "fob", checkpoint=choice.fob_checkpoint, device=choice.device
            )
        except FileNotFoundError as exc:
            if choice.fob_checkpoint != FOB_DEFAULT:
                raise
            # Same rule as `fob demo`: no shipped weights -> the baseline, said out loud.
            generator = make_generator("mask-ring")
            gen_notice = "FoB default weights not installed"
            details.append(f"FoB: {exc}")
    segmenter, seg_notice = get_segmenter(
        choice.segmenter,
        sam_model=choice.sam_model,
        sam_checkpoint=choice.sam_checkpoint or None,
        device=choice.device,
        cache=cache,
    )
    if seg_notice:
        details.append(f"Segmenter: {seg_notice}")
        seg_notice = "no SAM checkpoint found"
    text = status_text(
        generator, segmenter, choice, generator_notice=gen_notice, segmenter_notice=seg_notice
    )
    return generator, segmenter, text, "\n\n".join(details)
