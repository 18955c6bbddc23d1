"""Benchmark 4: exporting the 5-layer cat net [12288, 20, 7, 5, 1] to ONNX, bar: under a second.

One export is ``export_onnx(nn.forward, params, X)`` on the 209 training pictures: tracing
(twice: the second trace, one column wider, checks that the program does not depend on the
batch size), writing the ONNX graph with its weights as initializers, and the full ONNX check.
The first export (cold) is timed apart; the bar judges the median of the others.
Then ONNX Runtime loads the model and classifies the 50 test pictures, timed for information.

    python3 benchmarks/export.py [--runs N] [--dtype float64|float32|both] [--data DIR]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
from common import (
    CAT_LAYER_DIMS,
    Problem,
    argument_parser,
    cat_problem,
    initial_params,
    parse_arguments,
    print_configuration,
    print_verdict,
    selected_dtypes,
)

from tinygrad_nn import export, nn

EXPORT_BAR = 1.0  # seconds, the median export


def parse_args() -> argparse.Namespace:
    parser = argument_parser(__doc__, "float64", with_data=True)
    parser.add_argument("--runs", type=int, default=10, help="timed exports after the first (10)")
    return parse_arguments(parser)


def export_seconds(params: dict[str, np.ndarray], X: np.ndarray) -> tuple[float, Any]:
    start = time.perf_counter()
    model = export.export_onnx(nn.forward, params, X, argnames=["X"])
    return time.perf_counter() - start, model


def measure(problem: Problem, dtype: np.dtype[Any], runs: int) -> None:
    params = initial_params(CAT_LAYER_DIMS, dtype)
    print(f"=== export, {dtype}: {list(CAT_LAYER_DIMS)} traced on X {problem.X.shape}")
    first, model = export_seconds(params, problem.X)
    times = [export_seconds(params, problem.X)[0] for _ in range(runs)]
    median = statistics.median(times)
    print(f"first export (cold): {first * 1e3:.1f} ms; {runs} more: median "
          f"{median * 1e3:.1f} ms, min {min(times) * 1e3:.1f} ms, max {max(times) * 1e3:.1f} ms")
    print(f"model: {len(model.graph.node)} ONNX nodes, {model.ByteSize() / 2**20:.2f} MiB, "
          f"opset {model.opset_import[0].version}")
    print_verdict("export time, median", median < EXPORT_BAR,
                  f"{median:.3f} s   bar < {EXPORT_BAR:.0f} s")
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime: not installed (pip install 'tinygrad_nn[onnx]'): not run")
        print()
        return
    start = time.perf_counter()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    probabilities = session.run(None, {"X": problem.X_test})[0]
    ran = time.perf_counter() - start
    same = np.array_equal(probabilities > 0.5, nn.forward(params, problem.X_test).data > 0.5)
    print(f"onnxruntime {ort.__version__}: session {loaded * 1e3:.1f} ms, "
          f"{problem.X_test.shape[1]} test pictures {ran * 1e3:.2f} ms, labels as the engine: "
          f"{same}")
    print()


def main() -> None:
    args = parse_args()
    import onnx

    problems = {dtype: cat_problem(args.data, dtype) for dtype in selected_dtypes(args.dtype)}
    print_configuration(next(iter(problems.values())).description, with_torch=False)
    print(f"onnx {onnx.__version__}, opset {export.OPSET}")
    print()
    for dtype, problem in problems.items():
        measure(problem, dtype, args.runs)


if __name__ == "__main__":
    main()
