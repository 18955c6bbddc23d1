"""What every benchmark shares: the machine's configuration, the data, and the timing harness.

The harness runs all contenders in one process, alternating: each round runs every contender
once, in an order that changes from round to round so that each contender follows each other
one equally often, and a slow spell of a noisy machine hits them all alike. Results are medians
of per-iteration times and medians of per-round ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tinygrad_nn.data import flatten_images, load_catvnoncat, resolve_data_dir, synthetic_catvnoncat

CAT_LAYER_DIMS = (12288, 20, 7, 5, 1)
CAT_LEARNING_RATE = 0.0075  # the course's
TINY_LAYER_DIMS = (2, 16, 16, 1)
TINY_POINTS = 64
TINY_LEARNING_RATE = 0.5
DTYPE_CHOICES = ("float64", "float32", "both")

Step = Callable[[], object]  # one training iteration
StepFactory = Callable[[], Step]  # a fresh training run, returning its step


# --------------------------------------------------------------------------- command line


def argument_parser(doc: str, dtype_default: str, with_data: bool) -> argparse.ArgumentParser:
    """A parser with ``--dtype`` (and ``--data`` for the cat workload); its help is the doc."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dtype", choices=DTYPE_CHOICES, default=dtype_default)
    if with_data:
        parser.add_argument("--data", default=None, help="folder of the course's .h5 files")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="limit BLAS to this many threads (threadpoolctl); default: as configured",
    )
    return parser


def parse_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line and apply ``--blas-threads`` to this process."""
    args = parser.parse_args()
    if args.blas_threads is not None:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            parser.error("--blas-threads needs threadpoolctl (pip install threadpoolctl)")
        threadpool_limits(limits=args.blas_threads, user_api="blas")
    return args


def add_timing_arguments(
    parser: argparse.ArgumentParser, rounds: int, warmup: int, inner: int, torch: bool = True
) -> None:
    """``--rounds``, ``--warmup``, ``--inner`` for ``alternate``, and ``--no-torch`` (where
    PyTorch is a contender)."""
    parser.add_argument("--rounds", type=int, default=rounds, help=f"measured rounds ({rounds})")
    parser.add_argument("--warmup", type=int, default=warmup, help="rounds run first, not kept")
    parser.add_argument(
        "--inner", type=int, default=inner, help=f"iterations per contender per round ({inner})"
    )
    if torch:
        parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")


# --------------------------------------------------------------------------- configuration


def print_configuration(data_description: str, with_torch: bool, with_jax: bool = False) -> None:
    """numpy, BLAS (via threadpoolctl when installed), OPENBLAS_* variables, CPU, torch, jax, data.

    torch is imported only ``with_torch`` (its OpenMP pool then lives in the process too), jax
    only ``with_jax`` (where it is a contender: its import alone takes a second or more).
    """
    print("=== configuration")
    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    print(f"cpu: {cpu_model()}")
    for line in blas_description():
        print(f"blas: {line}")
    always_shown = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")
    for name in always_shown + ("OMP_NUM_THREADS",):
        print(f"{name}: {os.environ.get(name, 'not set')}")
    for name in sorted(k for k in os.environ if k.startswith("OPENBLAS_")):
        if name not in always_shown:
            print(f"{name}: {os.environ[name]}")
    if with_torch:
        torch = import_torch()
        if torch is None:
            print("torch: not installed (its contender is skipped)")
        else:
            policy = os.environ.get("OMP_WAIT_POLICY")
            print(
                f"torch: {torch.__version__}, {torch.get_num_threads()} threads, "
                f"OMP_WAIT_POLICY={policy}"
            )
    else:
        print("torch: not used in this run")
    if with_jax:
        jax = import_jax()
        print(f"jax: {jax.__version__}, {jax.devices()[0].platform}" if jax is not None else
              "jax: not installed (its contender is skipped; pip install -e '.[bench]')")
    else:
        print("jax: not used in this run")
    print(f"data: {data_description}")
    print_load()
    print()


def print_load() -> None:
    """The load average, with a warning when other work competes for the cores."""
    cpus = os.cpu_count() or 1
    load = os.getloadavg()[0]
    print(f"load average (1 min): {load:.2f} on {cpus} CPUs")
    if load > cpus - 0.5:
        print(
            "WARNING: the machine is busy; a multi-threaded BLAS can stall many-fold under "
            "contention (try --blas-threads 1, or wait)"
        )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_description() -> list[str]:
    """One line per thread pool threadpoolctl sees, or numpy's build information without it."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
        return [
            f"{blas.get('name', '?')} {blas.get('version', '?')} (numpy build info; "
            "pip install threadpoolctl for threads and architecture)"
        ]
    lines = []
    for pool in threadpool_info():
        lines.append(
            f"{pool.get('internal_api')} {pool.get('version')}, {pool.get('num_threads')} threads, "
            f"architecture {pool.get('architecture', '-')}, "
            f"threading {pool.get('threading_layer', '-')} ({Path(pool['filepath']).name})"
        )
    return lines or ["threadpoolctl found no BLAS thread pool"]


def import_torch() -> Any:
    """The torch module, or None: torch is a contender when installed, never a dependency.

    Its OpenMP threads would otherwise spin for a while after each op, taking the cores from
    whichever contender runs next; passive waiting keeps the alternation fair (set before the
    import, and only if the user has not chosen a policy).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        return None
    return torch


def import_jax() -> Any:
    """The jax module in float64 mode, or None: JAX is a contender when installed (the ``bench``
    extra), never a dependency. Its CPU backend, as on this machine."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)  # so that float64 stays float64
    return jax


# --------------------------------------------------------------------------- data and parameters


class Problem(NamedTuple):
    """Training inputs (n_x, m), labels (1, m) and held-out ones, all in one float dtype."""

    X: np.ndarray
    Y: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    description: str


def cat_problem(data_dir: str | None, dtype: np.dtype[Any] | type) -> Problem:
    """The 209 course images as (12288, 209) columns, or the synthetic stand-in of that shape."""
    directory = resolve_data_dir(data_dir)
    if directory is None:
        data = synthetic_catvnoncat(seed=0)
        description = "synthetic stand-in (no course data found; pass --data or TINYGRAD_NN_DATA)"
    else:
        data = load_catvnoncat(directory)
        description = f"course cat/non-cat data from {directory}"
    return Problem(
        flatten_images(data.train_x_orig, dtype),
        data.train_y.astype(dtype),
        flatten_images(data.test_x_orig, dtype),
        data.test_y.astype(dtype),
        description,
    )


def tiny_problem(dtype: np.dtype[Any] | type = np.float64) -> Problem:
    """64 points in the plane labelled by the sign of x0·x1, and 64 more held out."""
    rng = np.random.RandomState(0)
    X = rng.randn(2, 2 * TINY_POINTS)
    Y = (X[:1] * X[1:] > 0).astype(dtype)
    X = X.astype(dtype)
    description = f"{TINY_POINTS} random points, label sign(x0·x1)"
    return Problem(
        X[:, :TINY_POINTS], Y[:, :TINY_POINTS], X[:, TINY_POINTS:], Y[:, TINY_POINTS:], description
    )


def initial_params(layer_dims: Sequence[int], dtype: np.dtype[Any] | type) -> dict[str, np.ndarray]:
    """The course's deep initialisation: W_l = randn(n_l, n_{l-1}) / sqrt(n_{l-1}), b_l = 0.

    Seeded as the course's np.random.seed(1), with a RandomState of our own.
    """
    rng = np.random.RandomState(1)
    params = {}
    for layer in range(1, len(layer_dims)):
        n, n_prev = layer_dims[layer], layer_dims[layer - 1]
        params[f"W{layer}"] = (rng.randn(n, n_prev) / np.sqrt(n_prev)).astype(dtype)
        params[f"b{layer}"] = np.zeros((n, 1), dtype=dtype)
    return params


def selected_dtypes(choice: str) -> list[np.dtype[Any]]:
    return [np.dtype(np.float64), np.dtype(np.float32)] if choice == "both" else [np.dtype(choice)]


# --------------------------------------------------------------------------- timing


@dataclass
class Timings:
    """Seconds per iteration of each contender, one entry per measured round."""

    per_round: dict[str, list[float]]

    def median(self, name: str) -> float:
        return statistics.median(self.per_round[name])

    def ratio(self, numerator: str, denominator: str) -> float:
        """Median over rounds of numerator / denominator measured in the same round."""
        pairs = zip(self.per_round[numerator], self.per_round[denominator])
        return statistics.median(a / b for a, b in pairs)

    def difference(self, minuend: str, subtrahend: str) -> float:
        """Median over rounds of minuend - subtrahend measured in the same round."""
        pairs = zip(self.per_round[minuend], self.per_round[subtrahend])
        return statistics.median(a - b for a, b in pairs)


def balanced_orders(count: int) -> list[list[int]]:
    """Running orders of ``count`` contenders in which each runs right after each other one
    equally often: a Williams design (``count`` orders for an even count, twice as many for
    an odd one). Whoever runs before a contender leaves it cold caches, a heap in some state,
    another library's threads waking: a fixed order would charge that to the same contender
    in every round.
    """
    first, low, high = [0], 1, count - 1
    while len(first) < count:  # 0, 1, n-1, 2, n-2, ...
        first.append(low)
        low += 1
        if len(first) < count:
            first.append(high)
            high -= 1
    orders = [[(position + shift) % count for position in first] for shift in range(count)]
    if count % 2:
        orders += [order[::-1] for order in orders]
    return orders


def alternate(
    contenders: Mapping[str, StepFactory], rounds: int, warmup: int, iterations_per_round: int
) -> Timings:
    """Time ``iterations_per_round`` steps of every contender per round, the order changing
    from round to round through ``balanced_orders``.

    Each round starts every contender afresh from its factory (untimed), so the rounds are alike
    and a long run never trains into saturation. The first ``warmup`` rounds are not kept.
    """
    names = list(contenders)
    orders = balanced_orders(len(names))
    per_round: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(warmup + rounds):
        for position in orders[round_index % len(orders)]:
            name = names[position]
            step = contenders[name]()
            start = time.perf_counter()
            for _ in range(iterations_per_round):
                step()
            elapsed = (time.perf_counter() - start) / iterations_per_round
            if round_index >= warmup:
                per_round[name].append(elapsed)
    return Timings(per_round)


def print_times(timings: Timings, unit: str = "ms") -> None:
    scale = {"ms": 1e3, "us": 1e6}[unit]
    print(f"{'contender':<24} {'median ' + unit:>12} {'min ' + unit:>12} {'max ' + unit:>12}")
    for name, times in timings.per_round.items():
        print(
            f"{name:<24} {timings.median(name) * scale:>12.3f} {min(times) * scale:>12.3f} "
            f"{max(times) * scale:>12.3f}"
        )


def print_ratio(label: str, ratio: float, bar: float | None = None) -> None:
    """One ratio line; with a bar, the bar and PASS (ratio ≤ bar) or MISS beside it."""
    verdict = "" if bar is None else f"   bar ≤ {bar:.2f}  {'PASS' if ratio <= bar else 'MISS'}"
    print(f"{label:<40} {ratio:>7.3f}{verdict}")


def print_verdict(label: str, passed: bool, detail: str) -> None:
    print(f"{label:<40} {detail}   {'PASS' if passed else 'MISS'}")
