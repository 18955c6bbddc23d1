"""Cat / non-cat: the deeplearning.ai course 1 week 4 application, on tinygrad_nn.

    python3 examples/cat_classifier.py                      # deep net, [12288, 20, 7, 5, 1]
    python3 examples/cat_classifier.py --model two-layer    # [12288, 7, 1]
    python3 examples/cat_classifier.py --save out/deep.npz --predict my_cat.jpg

Data: --data DIR, else ./data, else $TINYGRAD_NN_DATA (see data/README.md). Without the files
a generated stand-in set of the same shapes is used, so the pipeline runs on a fresh machine.
On the course's data the deep net reproduces the course: cost 0.771749 at iteration 0 and
0.092878 at 2400, train accuracy 0.9856, test 0.80 (two-layer: 0.693050 → 0.048555, 1.00, 0.72).
Plots need matplotlib (``pip install -e '.[examples]'``); without it they are skipped.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tinygrad_nn import nn
from tinygrad_nn.data import (
    CatDataset,
    DataError,
    flatten_images,
    load_catvnoncat,
    resolve_data_dir,
    synthetic_catvnoncat,
)
from tinygrad_nn.nn import load_params, save_params

# Architecture and initialization of each of the course's two models.
MODELS: dict[str, tuple[list[int], nn.Scheme]] = {
    "deep": ([12288, 20, 7, 5, 1], "scaled"),
    "two-layer": ([12288, 7, 1], "small"),
}
RECORD_EVERY = 100
INSTALL_HINT = "pip install -e '.[examples]'"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", metavar="DIR",
        help="directory holding train_catvnoncat.h5 and test_catvnoncat.h5 "
        "(default: ./data, else $TINYGRAD_NN_DATA, else a generated stand-in)",
    )
    parser.add_argument("--synthetic", action="store_true",
                        help="use the generated stand-in set even when the real files are found")
    parser.add_argument("--model", choices=sorted(MODELS), default="deep")
    parser.add_argument("--iterations", type=int, default=2500, metavar="N")
    parser.add_argument("--learning-rate", type=float, default=0.0075, metavar="RATE")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--seed", type=int, default=1, help="initialization seed (course: 1)")
    parser.add_argument("--save", metavar="FILE.npz", help="write the trained parameters here")
    parser.add_argument("--load", metavar="FILE.npz",
                        help="use these parameters instead of training")
    parser.add_argument("--out", metavar="DIR", default="out",
                        help="where the PNG plots go (default: out/)")
    parser.add_argument("--no-plots", action="store_true", help="write no PNG files")
    parser.add_argument("--predict", metavar="IMAGE", help="classify a picture of your own")
    args = parser.parse_args(argv)
    if args.iterations < 0 or args.learning_rate <= 0:
        parser.error("--iterations must be >= 0 and --learning-rate > 0")
    return args


def load_data(args: argparse.Namespace) -> CatDataset:
    """The course's files if found, else the stand-in (announced on one line)."""
    data_dir = None if args.synthetic else resolve_data_dir(args.data)
    if data_dir is None:
        reason = "--synthetic" if args.synthetic else (
            "no cat data in --data, ./data or $TINYGRAD_NN_DATA"
        )
        print(f"Data: {reason}: using a generated stand-in set of the same shapes "
              "(figures will not be the course's; see data/README.md)")
        return synthetic_catvnoncat()
    dataset = load_catvnoncat(data_dir)
    print(f"Data: {data_dir} ({len(dataset.train_y[0])} train, {len(dataset.test_y[0])} test "
          "pictures)")
    return dataset


def class_name(classes: np.ndarray, label: int) -> str:
    return bytes(classes[label]).decode("utf-8")


def report_accuracy(name: str, params: dict[str, np.ndarray], X: np.ndarray,
                    Y: np.ndarray) -> np.ndarray:
    predictions = nn.predict(params, X)
    correct = int(np.sum(predictions == Y))
    print(f"{name} accuracy: {correct / Y.shape[1]:.4f} ({correct}/{Y.shape[1]})")
    return predictions


def write_plots(out_dir: Path, costs: list[float], learning_rate: float,
                dataset: CatDataset, test_predictions: np.ndarray) -> None:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print(f"Plots skipped: matplotlib is not installed ({INSTALL_HINT})")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    if costs:
        figure = Figure(figsize=(6, 4), layout="constrained")
        axes = figure.subplots()
        axes.plot(np.arange(len(costs)) * RECORD_EVERY, costs)
        axes.set_xlabel("iteration")
        axes.set_ylabel("cost")
        axes.set_title(f"Learning rate = {learning_rate}")
        path = out_dir / "cost.png"
        figure.savefig(path, dpi=100, bbox_inches="tight")
        print(f"Wrote {path}")

    mislabeled = np.flatnonzero(test_predictions[0] != dataset.test_y[0])
    if mislabeled.size == 0:
        print("No mislabeled test pictures: no grid written")
        return
    columns = min(5, mislabeled.size)
    rows = math.ceil(mislabeled.size / columns)
    figure = Figure(figsize=(2.2 * columns, 2.5 * rows), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes in grid.flat:
        axes.axis("off")
    for axes, index in zip(grid.flat, mislabeled):
        axes.imshow(dataset.test_x_orig[index], interpolation="nearest")
        predicted = class_name(dataset.classes, int(test_predictions[0, index]))
        actual = class_name(dataset.classes, int(dataset.test_y[0, index]))
        axes.set_title(f"predicted: {predicted}\ntrue: {actual}", fontsize=9)
    figure.suptitle(f"Mislabeled test pictures ({mislabeled.size} of {dataset.test_y.shape[1]})")
    path = out_dir / "mislabeled.png"
    figure.savefig(path, dpi=100, bbox_inches="tight")
    print(f"Wrote {path}")


def classify_picture(path: Path, params: dict[str, np.ndarray], classes: np.ndarray,
                     dtype: np.dtype[np.floating]) -> None:
    try:
        from PIL import Image
    except ImportError:
        raise RuntimeError(
            f"--predict needs Pillow, which matplotlib brings ({INSTALL_HINT})"
        ) from None
    with Image.open(path) as image:
        # The network saw 64×64 RGB pictures: resize and drop any alpha channel the same way.
        picture = np.asarray(image.convert("RGB").resize((64, 64), Image.Resampling.LANCZOS))
    X = flatten_images(picture[np.newaxis], dtype)
    probability = float(nn.forward(params, X).data[0, 0])
    label = int(nn.predict(params, X)[0, 0])
    print(f'{path}: y = {label}, the model predicts a "{class_name(classes, label)}" picture '
          f"(p(cat) = {probability:.3f})")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    dtype = np.dtype(args.dtype)
    layer_dims, scheme = MODELS[args.model]
    try:
        dataset = load_data(args)
        train_x = flatten_images(dataset.train_x_orig, dtype)
        test_x = flatten_images(dataset.test_x_orig, dtype)
        costs: list[float] = []
        if args.load:
            params = load_params(args.load, layer_dims, dtype)
            print(f"Loaded parameters from {args.load}")
        else:
            print(f"Model: {args.model} {layer_dims}, learning rate {args.learning_rate}, "
                  f"{args.iterations} iterations, {dtype}, seed {args.seed}")
            initial = nn.init_params(layer_dims, scheme, seed=args.seed, dtype=dtype)
            params, costs = nn.train(initial, train_x, dataset.train_y, args.learning_rate,
                                     args.iterations, print_cost=True,
                                     record_every=RECORD_EVERY)
        report_accuracy("Train", params, train_x, dataset.train_y)
        test_predictions = report_accuracy("Test", params, test_x, dataset.test_y)
        if not args.no_plots:
            write_plots(Path(args.out), costs, args.learning_rate, dataset, test_predictions)
        if args.save:
            print(f"Saved parameters to {save_params(args.save, params)}")
        if args.predict:
            classify_picture(Path(args.predict), params, dataset.classes, dtype)
    except (OSError, DataError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
