"""mini-Xception port: Keras 'same' pooling, shapes, and the HDF5 -> torch weight layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganpso.classifier.mini_xception import (
    MiniXception,
    SamePadMaxPool,
    load_mini_xception,
    preprocess,
)
from ganpso.errors import CheckpointError

h5py = pytest.importorskip("h5py")


@pytest.mark.parametrize(("size", "expected"), [(60, 30), (15, 8), (8, 4), (4, 2)])
def test_same_pad_max_pool_sizes_like_keras(size, expected) -> None:
    x = torch.randn(1, 2, size, size)
    assert SamePadMaxPool()(x).shape[-1] == expected


def test_same_pad_max_pool_values_on_even_input() -> None:
    # Keras pads an even side by one at the end: windows start at 0, 2 and cover [0..2], [2..4]
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    expected = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float("-inf")), 3, 2)
    assert torch.equal(SamePadMaxPool()(x), expected)
    assert SamePadMaxPool()(x)[0, 0].tolist() == [[10.0, 11.0], [14.0, 15.0]]


def test_network_shapes_and_preprocess() -> None:
    faces = np.array([np.zeros((48, 48)), np.full((48, 48), 255)], dtype=np.uint8)
    batch = preprocess(faces)
    assert batch.shape == (2, 1, 64, 64)
    assert batch.min() == -1.0 and batch.max() == 1.0
    assert MiniXception().eval()(batch).shape == (2, 7)


def write_fake_keras_file(path, model: MiniXception, rng: np.random.Generator) -> dict:
    """A Keras-2-layout HDF5 file with random weights for every layer of ``model``."""
    config = {"config": {"layers": [{"config": {"batch_input_shape": [None, 64, 64, 1]}}]}}
    arrays: dict = {}
    with h5py.File(path, "w") as handle:
        handle.attrs["model_config"] = json.dumps(config)
        weights = handle.create_group("model_weights")
        for name, module in model.keras_layers().items():
            group = weights.create_group(name).create_group(f"{name}_1")
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                params = {
                    "gamma": rng.random(n),
                    "beta": rng.random(n),
                    "moving_mean": rng.random(n),
                    "moving_variance": rng.random(n) + 0.5,
                }
            elif isinstance(module, torch.nn.Sequential):
                depthwise, pointwise = module[0].weight.shape, module[1].weight.shape
                params = {
                    "depthwise_kernel": rng.random((3, 3, depthwise[0], 1)),
                    "pointwise_kernel": rng.random((1, 1, pointwise[1], pointwise[0])),
                }
            else:
                out, inp, kh, kw = module.weight.shape
                params = {"kernel": rng.random((kh, kw, inp, out))}
                if module.bias is not None:
                    params["bias"] = rng.random(out)
            params = {key: value.astype(np.float32) for key, value in params.items()}
            for key, value in params.items():
                group.create_dataset(f"{key}:0", data=value)
            arrays[name] = params
    return arrays


def test_keras_weights_land_in_the_right_places(tmp_path) -> None:
    path = tmp_path / "emotion_model.hdf5"
    arrays = write_fake_keras_file(path, MiniXception(), np.random.default_rng(0))
    model = load_mini_xception(path)
    kernel = arrays["conv2d_3"]["kernel"]  # (1, 1, 8, 16): first shortcut
    np.testing.assert_array_equal(
        model.blocks[0].shortcut.weight.detach()[5, 3, 0, 0], kernel[0, 0, 3, 5]
    )
    head = arrays["conv2d_7"]["kernel"]  # (3, 3, 128, 7)
    np.testing.assert_array_equal(model.head.weight.detach()[6, 100, 2, 1], head[2, 1, 100, 6])
    depthwise = arrays["separable_conv2d_8"]["depthwise_kernel"]  # (3, 3, 128, 1)
    np.testing.assert_array_equal(
        model.blocks[3].sep2[0].weight.detach()[7, 0, 0, 2], depthwise[0, 2, 7, 0]
    )
    bn = arrays["batch_normalization_14"]  # block 4's second separable BN
    np.testing.assert_array_equal(model.blocks[3].bn2.running_var.numpy(), bn["moving_variance"])


def test_wrong_file_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "other.hdf5"
    with h5py.File(path, "w") as handle:
        handle.attrs["model_config"] = json.dumps({"config": {"layers": []}})
    with pytest.raises(CheckpointError, match="other.hdf5: not the expected mini-Xception"):
        load_mini_xception(path)
