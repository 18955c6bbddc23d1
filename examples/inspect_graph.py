"""See what autodiff does: the course's 5-layer network cost as a graph, forward and gradient.

Prints the forward pass as a jaxpr-like listing with its costs, then the gradient's graph,
with every VJP the engine runs, and draws both with Graphviz (``dot``; without it the
``.dot`` files are written and the message says how to install it).

    python examples/inspect_graph.py [--out out/graphs] [--examples 209]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn.graph import Graph, GraphvizNotFoundError
from tinygrad_nn.nn import init_params

LAYER_DIMS = [12288, 20, 7, 5, 1]  # 64·64·3 pixels, three ReLU layers, one sigmoid unit


def cost(params: dict[str, Any], X: Any, Y: Any) -> tg.Tensor:
    """The course's cross-entropy cost of the L-layer network on X (n_x, m), Y (1, m)."""
    L = len(params) // 2
    A = X
    for layer in range(1, L):
        A = tg.relu(params[f"W{layer}"] @ A + params[f"b{layer}"])
    AL = tg.sigmoid(params[f"W{L}"] @ A + params[f"b{L}"])
    m = Y.shape[1]
    return -1 / m * tg.sum(Y * tg.log(AL) + (1 - Y) * tg.log(1 - AL))


def draw(graph: Graph, path: Path, collapse: bool = False) -> None:
    try:
        print(f"wrote {graph.render(path, collapse=collapse)}")
    except GraphvizNotFoundError as error:
        print(error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/graphs"), help="where to draw")
    parser.add_argument("--examples", type=int, default=209, help="columns m of X")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    # Random pictures stand in for the cat data: the graph depends on shapes only.
    rng = np.random.default_rng(0)
    X = rng.random((LAYER_DIMS[0], args.examples))
    Y = (rng.random((1, args.examples)) > 0.5).astype(np.float64)
    params = init_params(LAYER_DIMS, seed=1)

    # argnums=0: the parameters need gradients, X and Y are data.
    forward = tg.make_graph(cost, argnums=0)(params, X, Y)
    print("--- the forward pass ---")
    print(forward)
    print(forward.summary())

    gradient = tg.make_graph(tg.grad(cost), argnums=0)(params, X, Y)
    print("\n--- the gradient: the forward pass, then every VJP the engine runs ---")
    print(gradient)
    print(gradient.summary())
    print("no backward matmul has X's shape: the engine never computes dX")

    print()
    draw(forward, args.out / "forward.svg")
    draw(gradient, args.out / "gradient.svg")
    draw(gradient, args.out / "gradient_layers.svg", collapse=True)  # one box per layer


if __name__ == "__main__":
    main()
