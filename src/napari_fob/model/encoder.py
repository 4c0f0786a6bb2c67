"""The shared image encoder f(.) of FoB (Sec. 3.3): a truncated torchvision ResNet or a tiny CNN.

Imports torch/torchvision; only imported when a model is built. Pretrained weights are loaded
only when a config asks for them, from torch's hub cache or a local file: nothing is downloaded
here, and weights that were asked for but are missing raise FileNotFoundError (never a silent
random init).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EncoderSpec:
    """What a backbone name means: depth, dilations, output channels and stride."""

    arch: str  # torchvision constructor name, or "tiny"
    layers: tuple[str, ...]  # ResNet stages kept, in order
    dilation: tuple[bool, bool, bool]  # replace_stride_with_dilation for layer2..layer4
    out_channels: int
    stride: int  # input pixels per feature pixel
    # stages whose first block keeps its input resolution (stride 1 instead of 2): how a
    # BasicBlock ResNet, which cannot dilate, reaches a finer output stride with the same weights
    unstrided: tuple[str, ...] = ()


SPECS: dict[str, EncoderSpec] = {
    # Like the public code: layer2/layer3 dilated, so layer3 (1024 ch) is at 1/4 (64x64 for 256).
    "resnet101-deeplab": EncoderSpec(
        "resnet101", ("layer1", "layer2", "layer3"), (True, True, False), 1024, 4
    ),
    "resnet50": EncoderSpec(
        "resnet50", ("layer1", "layer2", "layer3"), (True, True, False), 1024, 4
    ),
    # BasicBlock cannot dilate; stop after layer2 (128 ch at 1/8) to stay fast on a laptop.
    "resnet18": EncoderSpec("resnet18", ("layer1", "layer2"), (False, False, False), 128, 8),
    # The same weights with layer2 at stride 1: 128 ch at 1/4, the paper's feature scale.
    "resnet18-s4": EncoderSpec(
        "resnet18", ("layer1", "layer2"), (False, False, False), 128, 4, unstrided=("layer2",)
    ),
    "tiny": EncoderSpec("tiny", (), (False, False, False), 32, 4),
}

# torchvision weight enums per (arch, source); looked up only in torch's hub cache.
_WEIGHT_ENUMS = {
    ("resnet101", "imagenet"): ("ResNet101_Weights", "IMAGENET1K_V2"),
    ("resnet50", "imagenet"): ("ResNet50_Weights", "IMAGENET1K_V2"),
    ("resnet18", "imagenet"): ("ResNet18_Weights", "IMAGENET1K_V1"),
    ("resnet101", "coco-deeplab"): ("DeepLabV3_ResNet101_Weights", "COCO_WITH_VOC_LABELS_V1"),
    ("resnet50", "coco-deeplab"): ("DeepLabV3_ResNet50_Weights", "COCO_WITH_VOC_LABELS_V1"),
}


class TinyBackbone(nn.Sequential):
    """Three 3x3 convs (stride 2, 2, 1) with GroupNorm: (B,3,S,S) -> (B,32,S/4,S/4)."""

    def __init__(self) -> None:
        def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
            conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            return [conv, nn.GroupNorm(4, cout), nn.ReLU(inplace=True)]

        super().__init__(*block(3, 16, 2), *block(16, 32, 2), *block(32, 32, 1))


class ResNetTrunk(nn.Module):
    """The stem and the first stages of a torchvision ResNet, with torchvision's key names."""

    def __init__(self, *, spec: EncoderSpec) -> None:
        super().__init__()
        import torchvision

        net = getattr(torchvision.models, spec.arch)(
            weights=None, replace_stride_with_dilation=list(spec.dilation)
        )
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.stages = list(spec.layers)
        for name in self.stages:
            setattr(self, name, getattr(net, name))
        for name in spec.unstrided:
            first = getattr(net, name)[0]
            first.conv1.stride = (1, 1)
            if first.downsample is not None:
                first.downsample[0].stride = (1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in self.stages:
            x = getattr(self, name)(x)
        return x


class Encoder(nn.Module):
    """Grey image -> features: (B,1,S,S) float in [0,1] -> (B,C,S/stride,S/stride).

    Repeats the grey channel to RGB, applies ImageNet normalisation, runs the backbone and a
    1x1 conv that reduces its channels to C (as the public code does for layer3).
    """

    def __init__(self, *, name: str, out_channels: int) -> None:
        super().__init__()
        if name not in SPECS:
            raise ValueError(f"encoder {name!r}: expected one of {sorted(SPECS)}")
        self.name, self.spec = name, SPECS[name]
        self.backbone = TinyBackbone() if name == "tiny" else ResNetTrunk(spec=self.spec)
        self.reduce = nn.Conv2d(self.spec.out_channels, out_channels, kernel_size=1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def stride(self) -> int:
        return self.spec.stride

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"Encoder: expected (B,1,S,S) grey images, got {tuple(images.shape)}")
        x = (images.expand(-1, 3, -1, -1) - self.mean) / self.std
        # channels-last makes oneDNN's convs and the stem max-pool several times faster on CPU
        x = x.contiguous(memory_format=torch.channels_last)
        return self.reduce(self.backbone(x)).contiguous()

    def load_pretrained(self, source: str) -> None:
        """Load backbone weights: "imagenet", "coco-deeplab" (hub cache only) or a file path."""
        state = _read_pretrained(self.spec.arch, source)
        load_backbone_state(self.backbone, state, source=source)


def _read_pretrained(arch: str, source: str) -> dict[str, torch.Tensor]:
    if source in ("imagenet", "coco-deeplab"):
        if (arch, source) not in _WEIGHT_ENUMS:
            raise ValueError(f"encoder weights {source!r} do not exist for backbone {arch!r}")
        import torchvision.models as tvm

        enum_name, member = _WEIGHT_ENUMS[(arch, source)]
        url = getattr(getattr(tvm, enum_name), member).url
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
        if not path.is_file():
            raise FileNotFoundError(
                f"encoder weights {source!r} for {arch}: {path} is missing. Nothing is downloaded "
                f"implicitly; fetch {url} into {path.parent} while online, or set "
                "encoder_weights to a local file."
            )
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"encoder weights file {path} not found (encoder_weights must be None, "
                "'imagenet', 'coco-deeplab' or an existing .pth/.pt file)"
            )
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict"):  # training checkpoints wrap the state dict
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"encoder weights {path}: expected a state dict, got {type(state)}")
    return state


def load_backbone_state(backbone: nn.Module, state: dict, *, source: str) -> None:
    """Copy a ResNet or DeepLabV3 state dict into ``backbone``; keys it lacks raise ValueError.

    DeepLabV3 keys carry a ``backbone.`` prefix (``backbone.layer3.0.conv1.weight``) that is
    stripped; heads (``classifier.``, ``aux_classifier.``, ``fc.``) and unused stages are ignored.
    """
    if any(k.startswith("backbone.") for k in state):
        state = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    # ResNetTrunk keeps torchvision's names; the stage list attribute holds no tensors.
    wanted = backbone.state_dict()
    missing = sorted(set(wanted) - set(state))
    if missing:
        raise ValueError(
            f"encoder weights {source}: {len(missing)} backbone keys missing, e.g. {missing[:5]}"
        )
    bad = [k for k in wanted if tuple(state[k].shape) != tuple(wanted[k].shape)]
    if bad:
        raise ValueError(f"encoder weights {source}: shape mismatch for keys {bad[:5]}")
    backbone.load_state_dict({k: state[k] for k in wanted}, strict=True)


def upsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of (B,K,h,w) maps to (B,K,size,size), pixel centres aligned."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
