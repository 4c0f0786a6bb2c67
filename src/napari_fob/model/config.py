"""`FobConfig`: every setting of the FoB prompt generator, and the named configs.

Pure standard library (no torch), so the CLI and the GUI can list and validate configs cheaply.
Grid-scale lengths (``ring_r``, ``ring_eps``, ``sigma``, ``rac_band``, ``spr_offset_radius``) are
in pixels of the ``grid_size x grid_size`` model grid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

ENCODERS = ("resnet101-deeplab", "resnet50", "resnet18", "resnet18-s4", "tiny")
#: "fob": this project's network (`model.fob.Fob`); "official": the FoB authors' network exactly
#: (`model.official.OfficialFob`), which loads their released weights and runs in their
#: inference behaviour (`prompting.official_compat`).
ARCHITECTURES = ("fob", "official")
#: How the predictor runs a model: "product", this project's inference (docs/method.md);
#: "official", the authors' inference behaviour, defects included, which their weights were
#: trained with (`prompting.official_compat`; only for the "official" architecture).
INFERENCE_MODES = ("product", "official")
RAC_KINDS = ("infonce", "hinge")
HEAT_LOSSES = ("mse", "softmax-ce")


def check_location_prior(value: Any, name: str) -> tuple[float, float] | None:
    """A location prior ``(a, b)`` (pixels of a 256 grid, width ``a + b |dz|``) as a float
    pair, or None; ValueError naming `name` unless a > 0 and b >= 0."""
    if value is None:
        return None
    try:
        prior = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        prior = ()
    if len(prior) != 2 or not (prior[0] > 0 and prior[1] >= 0):
        raise ValueError(f"{name}: expected (a > 0, b >= 0) pixels of a 256 grid, got {value!r}")
    return prior


@dataclass(frozen=True)
class FobConfig:
    """Architecture, geometry and loss settings of one FoB model (see `docs/method.md`)."""

    name: str = "custom"  # label stored in checkpoints; a named config's name
    architecture: str = "fob"  # one of ARCHITECTURES: which network the fields describe
    inference: str = "product"  # one of INFERENCE_MODES: how the predictor runs it
    encoder: str = "tiny"  # backbone: one of ENCODERS ("tiny" = three conv layers, for tests)
    encoder_weights: str | None = None  # None=random; "imagenet" | "coco-deeplab" | a file path
    grid_size: int = 64  # S: slices are resized to S x S (paper: 256)
    feature_channels: int = 16  # C after the 1x1 reduction conv (paper: 512)
    n_bg: int = 10  # Np background prompts per slice (paper: 10)
    n_fg: int = 10  # Nf foreground prompts per slice (paper: 10)
    ring_r: int = 6  # outer dilation of the support ring band, Eq. 1 (paper: 15 at 256)
    ring_eps: int = 2  # band width epsilon, Eq. 1 (paper: 2)
    ring_kernel: str = "disk"  # dilation kernel shape for the ring band ("disk" | "square")
    sigma: float = 2.0  # Gaussian sigma of heatmaps and MAP weights, Eq. 2 (paper: 4 at 256)
    spr_offsets: int = 8  # k candidate offsets per point in IDR, Eq. 12 (paper: 8)
    spr_iters: int = 3  # kappa refinement iterations (paper: 3)
    spr_hidden: int = 32  # hidden width of the two-layer offset MLP phi, Eq. 12 (paper: silent)
    spr_offset_radius: float = 4.0  # radius of the initial offset pattern, grid px (one stride)
    bcm_heads: int = 2  # heads of the masked self-attention, Eq. 6 (paper: silent)
    bcm_ffn: int = 32  # hidden width of the FFN, Eq. 7 (paper: silent)
    fg_adaptive_threshold: bool = False  # ADNet-style query threshold on the fg logit (code only)
    tau: float = 0.1  # temperature of L_rac, Eq. 16 (paper: 0.1)
    rac: str = "infonce"  # L_rac form: "infonce" (Eq. 16) or "hinge" (the public code)
    rac_band: int = 4  # width (grid px) of the inner band giving the RAC positive, Eq. 16
    heat_loss: str = "mse"  # L_heat form: "mse" (Eq. 17) or "softmax-ce" (per-channel spatial CE)
    lambda_heat: float = 1e3  # weight of L_heat (paper: 1e3 with "mse"; ~1 with "softmax-ce")
    lambda_coor: float = 1e-4  # weight of L_coor (paper: 1e-4)
    fg_threshold: float = 0.9  # T: foreground prompts where C exceeds it, Sec. 3.7 (paper: 0.9)
    # weight of L_band: distance of the refined points from the query's ring band along the
    # query mask's signed distance (any position on the band; not in the paper). 0 = off
    lambda_band: float = 0.0
    # (a, b): the Gaussian location prior of width a + b |dz| px of a 256 grid around the
    # support ring that seeds SPR, in training (within-volume episodes) as at inference (not in
    # the paper, see docs/method.md); None = the paper's training and the predictor's default
    location_prior: tuple[float, float] | None = None
    # a fixed sinusoidal code of the feature position through a learnt 1x1 conv (zero at the
    # start), added to the features of support and query, so prototypes carry where they were
    # taken (not in the paper; docs/models.md). False = the paper's network
    position_code: bool = False

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"FobConfig.architecture: expected one of {ARCHITECTURES}, "
                f"got {self.architecture!r}"
            )
        if not isinstance(self.position_code, bool):
            raise ValueError(f"FobConfig.position_code: expected true or false, got "
                             f"{self.position_code!r}")  # fmt: skip
        if self.position_code and self.architecture == "official":
            raise ValueError("FobConfig.position_code: the authors' network has no position code")
        if self.inference not in INFERENCE_MODES:
            raise ValueError(
                f"FobConfig.inference: expected one of {INFERENCE_MODES}, got {self.inference!r}"
            )
        if (self.inference == "official") != (self.architecture == "official"):
            raise ValueError(
                "FobConfig: the 'official' inference runs the 'official' architecture and only "
                f"it (got architecture={self.architecture!r}, inference={self.inference!r})"
            )
        if self.encoder not in ENCODERS:
            raise ValueError(f"FobConfig.encoder: expected one of {ENCODERS}, got {self.encoder!r}")
        if self.rac not in RAC_KINDS:
            raise ValueError(f"FobConfig.rac: expected one of {RAC_KINDS}, got {self.rac!r}")
        if self.heat_loss not in HEAT_LOSSES:
            raise ValueError(
                f"FobConfig.heat_loss: expected one of {HEAT_LOSSES}, got {self.heat_loss!r}"
            )
        if self.ring_kernel not in ("disk", "square"):
            raise ValueError(
                f"FobConfig.ring_kernel: expected 'disk' or 'square', got {self.ring_kernel!r}"
            )
        positive = ("grid_size", "feature_channels", "n_bg", "n_fg", "spr_offsets", "spr_hidden")
        for key in positive + ("bcm_heads", "bcm_ffn", "ring_r"):
            if int(getattr(self, key)) <= 0:
                raise ValueError(
                    f"FobConfig.{key}: expected a positive integer, got {getattr(self, key)}"
                )
        if self.n_bg < 3:
            raise ValueError(f"FobConfig.n_bg: the ring needs at least 3 points, got {self.n_bg}")
        if self.spr_iters < 1:
            raise ValueError(f"FobConfig.spr_iters: expected >= 1, got {self.spr_iters}")
        if self.feature_channels % self.bcm_heads:
            raise ValueError(
                f"FobConfig.bcm_heads={self.bcm_heads} must divide "
                f"feature_channels={self.feature_channels}"
            )
        if not 0 < self.ring_eps < self.ring_r:
            raise ValueError(f"FobConfig.ring_eps: expected 0 < eps < ring_r, got {self.ring_eps}")
        if self.lambda_band < 0:
            raise ValueError(f"FobConfig.lambda_band: expected >= 0, got {self.lambda_band}")
        if self.sigma <= 0 or self.tau <= 0:
            raise ValueError(f"FobConfig: sigma and tau must be > 0, got {self.sigma}, {self.tau}")
        prior = check_location_prior(self.location_prior, "FobConfig.location_prior")
        object.__setattr__(self, "location_prior", prior)
        if not 0.0 <= self.fg_threshold <= 1.0:
            raise ValueError(f"FobConfig.fg_threshold: expected [0, 1], got {self.fg_threshold}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON/YAML-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FobConfig:
        """Inverse of `to_dict`; unknown keys raise ValueError (a typo must not pass silently)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"FobConfig: unknown keys {unknown}; known keys are {sorted(known)}")
        return cls(**data)


CONFIGS: dict[str, FobConfig] = {
    # The paper's model: ResNet-101 (DeepLabV3 dilations, layer3 at 1/4), C=512 at 64x64.
    "paper": FobConfig(
        name="paper",
        encoder="resnet101-deeplab",
        grid_size=256,
        feature_channels=512,
        ring_r=15,
        ring_eps=2,
        sigma=4.0,
        spr_hidden=512,
        spr_offset_radius=4.0,
        bcm_heads=8,
        bcm_ffn=1024,
        rac_band=8,
    ),
    # Laptop-sized: ResNet-18 up to layer2 (1/8), C=128 at 32x32 for a 256 grid.
    "compact": FobConfig(
        name="compact",
        encoder="resnet18",
        grid_size=256,
        feature_channels=128,
        ring_r=15,
        ring_eps=2,
        sigma=4.0,
        spr_hidden=128,
        spr_offset_radius=8.0,
        bcm_heads=4,
        bcm_ffn=256,
        rac_band=8,
    ),
    # Tests: three conv layers, grid 64, C=16; geometry scaled down with the grid.
    "tiny": FobConfig(name="tiny"),
    # The authors' network (github primebo1/FoB_SAM, models/FoB.py), checked against their code:
    # ResNet-101 with DeepLab dilations (layer3 1024 ch at 1/4 -> 1x1 conv without bias to 512),
    # plus layer4 -> avgpool -> fc -> linear(1000, 1): a scalar threshold added to the
    # foreground logit; one attention head with FFN expansion 1; InstanceNorm with affine in the
    # head; square ring kernels 15 and 21; SPR with 8 offsets, 3 iterations, one head; the
    # 0.96 foreground threshold of their test code (0.9 in the paper). Only for their weights:
    # `fob weights convert` writes such checkpoints, and they run in their inference behaviour.
    "official": FobConfig(
        name="official",
        architecture="official",
        inference="official",
        encoder="resnet101-deeplab",
        grid_size=256,
        feature_channels=512,
        n_bg=10,
        n_fg=10,
        ring_r=7,  # square kernels 2*7+1 = 15 and 2*(7+3)+1 = 21
        ring_eps=3,
        ring_kernel="square",
        sigma=4.0,
        spr_offsets=8,
        spr_iters=3,
        spr_hidden=512,  # the IDR scale MLP's hidden width (= C)
        bcm_heads=1,
        bcm_ffn=512,  # FFN expansion 1
        fg_adaptive_threshold=True,
        rac="hinge",
        fg_threshold=0.96,
    ),
}


def get_config(name_or_config: str | FobConfig, **overrides: Any) -> FobConfig:
    """A named config (``"paper"``, ``"compact"``, ``"tiny"``, ``"official"``) or a given one,
    with overrides.

    Raises:
        ValueError: for an unknown name or an override that is not a field.
    """
    if isinstance(name_or_config, FobConfig):
        base = name_or_config
    elif isinstance(name_or_config, str):
        if name_or_config not in CONFIGS:
            raise ValueError(
                f"FoB config {name_or_config!r}: expected one of {sorted(CONFIGS)} or a FobConfig"
            )
        base = CONFIGS[name_or_config]
    else:
        raise ValueError(f"FoB config: expected a name or a FobConfig, got {type(name_or_config)}")
    known = {f.name for f in fields(FobConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"FoB config overrides: unknown keys {unknown}")
    return replace(base, **overrides) if overrides else base
