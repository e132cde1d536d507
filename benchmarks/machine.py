"""What the speed benchmarks share: the machine's facts and its measured matmul peaks.

A figure of merit that travels between machines is utilisation, achieved FLOP/s over the peak
this machine reaches on a large matmul in the same run and the same precision; raw images/s
depend on the CPU (AMX or not) as much as on the code. ``machine_kind`` names the JSON file a
benchmark writes, so each kind of machine keeps its own figures.
"""

from __future__ import annotations

import platform
import re
import time
from collections.abc import Callable

import numpy as np
import torch

from ganpso.device import cpu_flags as device_cpu_flags
from ganpso.device import cpu_model

FLAGS_OF_INTEREST = (
    "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8",
)  # fmt: skip
PEAK_SIZES = (1024, 2048, 4096)
MAX_PRODUCT_S = 2.0


def cpu_flags() -> list[str]:
    present = device_cpu_flags()
    return [flag for flag in FLAGS_OF_INTEREST if flag in present]


# the widest matrix unit names the kind: one CPU model name covers several generations
KIND_FLAGS = (("amx_bf16", "amx"), ("avx512_bf16", "avx512bf16"), ("avx512f", "avx512"))


def machine_kind() -> str:
    """E.g. ``intel-xeon-amx`` or ``amd-epyc-avx2``: the CPU family and its widest matrix unit."""
    words = re.findall(r"[a-z0-9]+", cpu_model().lower())
    family = "-".join(w for w in words if w not in {"r", "tm", "processor", "cpu"})[:40]
    flags = cpu_flags()
    unit = next((name for flag, name in KIND_FLAGS if flag in flags), "avx2")
    return f"{family}-{unit}"


def machine_facts() -> dict:
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "threads": torch.get_num_threads(),
        "kind": machine_kind(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def torch_matmul_gflops(
    dtype: torch.dtype, size: int, seconds: float = 1.0, device: str = "cpu"
) -> float:
    """The faster of two routes to one (size x size) @ (size x size) product: ``matmul`` (BLAS)
    and a 1x1 convolution (oneDNN, which the models' convolutions use; on some CPUs it is the
    faster GEMM)."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    image = a.T.reshape(1, size, size, 1).contiguous(memory_format=torch.channels_last)
    kernel = b.T.reshape(size, size, 1, 1)
    routes = (lambda: a @ b, lambda: torch.nn.functional.conv2d(image, kernel))
    return max(rate(product, 2 * size**3, seconds, device) for product in routes)


def rate(product: Callable[[], object], flops: int, seconds: float, device: str) -> float:
    """GFLOP/s of ``product`` repeated for ``seconds`` after one warm-up call."""
    product()
    synchronize(device)
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        product()
        count += 1
        if count % 16 == 0:
            synchronize(device)
    synchronize(device)
    return flops * count / (time.perf_counter() - began) / 1e9


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def int8_matmul_gops(size: int, seconds: float = 1.0) -> float:
    """onnxruntime's MatMulInteger (uint8 x int8 -> int32): the int8 kernels its models use."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])],
        "int8_matmul",
        [
            helper.make_tensor_value_info("a", TensorProto.UINT8, [size, size]),
            helper.make_tensor_value_info("b", TensorProto.INT8, [size, size]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [size, size])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(0)
    feeds = {
        "a": rng.integers(0, 255, (size, size), dtype=np.uint8),
        "b": rng.integers(-127, 127, (size, size), dtype=np.int8),
    }
    session.run(None, feeds)
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        session.run(None, feeds)
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - began) / 1e9


def best_rate(measure: Callable[[int], float], sizes: tuple[int, ...]) -> float:
    """The best rate over growing square sizes; a size whose one product would take over
    ``MAX_PRODUCT_S`` at the rate seen so far is skipped (bf16 emulated on CPUs without it)."""
    best = 0.0
    for size in sizes:
        if best and 2 * size**3 / (best * 1e9) > MAX_PRODUCT_S:
            break
        best = max(best, measure(size))
    return best


def matmul_peaks(int8: bool = False, device: str = "cpu") -> dict[str, float]:
    """The best GFLOP/s (GOP/s for int8) over a few square sizes, per precision."""
    sizes = PEAK_SIZES if device == "cpu" else (4096, 8192)
    peaks = {
        "bf16": best_rate(lambda n: torch_matmul_gflops(torch.bfloat16, n, device=device), sizes),
        "fp32": best_rate(lambda n: torch_matmul_gflops(torch.float32, n, device=device), sizes),
    }
    if int8:
        peaks["int8"] = best_rate(int8_matmul_gops, PEAK_SIZES)
    return {name: round(value, 1) for name, value in peaks.items()}
