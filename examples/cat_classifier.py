"""Cat / non-cat: the deeplearning.ai course 1 week 4 application, on tinygrad_nn.

    python3 examples/cat_classifier.py                      # deep net, [12288, 20, 7, 5, 1]
    python3 examples/cat_classifier.py --model two-layer    # [12288, 7, 1]
    python3 examples/cat_classifier.py --dtype float32 --save out/params.npz
    python3 examples/cat_classifier.py --load out/params.npz --predict my_cat.jpg
    python3 examples/cat_classifier.py --load out/params.npz --export out/cat.onnx

Data: --data DIR, else $TINYGRAD_NN_DATA, else the project's own data/ (see data/README.md).
Without the files a generated stand-in set of the same shapes is used, so the pipeline runs on a
fresh machine; the run says which file it missed where, and the plots say which set they show.
On the course's data the deep net reproduces the course: cost 0.771749 at iteration 0 and
0.092878 at 2400, train accuracy 0.9856, test 0.80 (two-layer: 0.693050 → 0.048555, 1.00, 0.72).

Every flag and path is checked before training starts (--save by writing a file there and
removing it); should saving fail after training all the same, the parameters are written to the
current directory, --out or the temporary directory instead, and the run says where. A --load
file brings its own model and dtype. Ctrl-C during training stops after the current step: the
parameters reached are still evaluated, saved (--save) and plotted. The run starts with the BLAS
library and its threads, and ends with the time training took. Plots need matplotlib (``pip
install -e '.[examples]'``); without it they are skipped.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import nn
from tinygrad_nn.data import (
    CatDataset,
    DataError,
    flatten_images,
    load_catvnoncat,
    missing_data,
    resolve_data_dir,
    synthetic_catvnoncat,
)

# Architecture and initialization of each of the course's two models.
MODELS: dict[str, tuple[list[int], nn.Scheme]] = {
    "deep": ([12288, 20, 7, 5, 1], "scaled"),
    "two-layer": ([12288, 7, 1], "small"),
}
DEFAULTS = {"model": "deep", "iterations": 2500, "learning_rate": 0.0075, "seed": 1}
RECORD_EVERY = 100  # the course prints (and plots) the cost every 100 iterations
INSTALL_HINT = "pip install -e '.[examples]'"
PLOTS = ("cost.png", "mislabeled.png")


class UsageError(Exception):
    """A flag or a path that cannot work, found before any training."""


@dataclass
class Run:
    """What training (or loading) gave: the parameters and every iteration's cost."""

    params: dict[str, np.ndarray]
    model: str
    costs: list[float] = field(default_factory=list)
    planned: int = 0  # iterations asked for
    interrupted: bool = False
    loaded_from: Path | None = None
    seconds: float = 0.0  # spent training


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", metavar="DIR",
        help="directory holding train_catvnoncat.h5 and test_catvnoncat.h5 "
        "(default: $TINYGRAD_NN_DATA, else the project's data/, else a generated stand-in)")
    parser.add_argument("--synthetic", action="store_true",
                        help="use the generated stand-in set even if the course's files are found")
    parser.add_argument("--model", choices=sorted(MODELS),
                        help="deep [12288, 20, 7, 5, 1] (default) or two-layer [12288, 7, 1]")
    parser.add_argument("--iterations", type=int, metavar="N", help="default: 2500")
    parser.add_argument("--learning-rate", type=float, metavar="RATE", help="default: 0.0075")
    parser.add_argument("--dtype", choices=["float64", "float32"],
                        help="default: float64, or the --load file's")
    parser.add_argument("--seed", type=int, help="initialization seed (default: 1, the course's)")
    parser.add_argument("--save", metavar="FILE.npz", help="write the trained parameters here")
    parser.add_argument("--load", metavar="FILE.npz",
                        help="use these parameters (their model and dtype) instead of training")
    parser.add_argument("--out", metavar="DIR", default="out",
                        help="where the PNG plots go (default: out/)")
    parser.add_argument("--no-plots", action="store_true", help="write no PNG files")
    parser.add_argument("--no-jit", action="store_true",
                        help="run each training step op by op instead of under tg.jit (the same "
                        "numbers, for comparison)")
    parser.add_argument("--predict", metavar="IMAGE", help="classify a picture of your own")
    parser.add_argument("--export", metavar="FILE.onnx",
                        help="write the model to ONNX (needs pip install -e '.[onnx]')")
    args = parser.parse_args(argv)
    training = {"--iterations": args.iterations, "--learning-rate": args.learning_rate,
                "--seed": args.seed}
    if args.load and (given := [flag for flag, value in training.items() if value is not None]):
        parser.error(f"--load uses saved parameters and trains nothing: drop {' and '.join(given)}")
    for name, default in DEFAULTS.items():  # the model of a --load file is the file's
        if getattr(args, name) is None and not (args.load and name == "model"):
            setattr(args, name, default)
    if args.iterations < 0:
        parser.error(f"--iterations must be >= 0, got {args.iterations}")
    if not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        parser.error(f"--learning-rate must be a finite number > 0, got {args.learning_rate}")
    if not 0 <= args.seed < 2**32:
        parser.error(f"--seed must be between 0 and 2**32 - 1, got {args.seed}")
    return args


# --------------------------------------------------------------------------- checks first


def npz_path(path: str) -> Path:
    """Where ``nn.save_params(path)`` writes: ``.npz`` is added when missing."""
    target = Path(path).expanduser()
    return target if target.suffix == ".npz" else target.with_name(target.name + ".npz")


def check_writable_dir(directory: Path, flag: str) -> None:
    """UsageError unless ``directory`` is, or can be made as, a writable directory."""
    existing = directory
    while not existing.exists():
        if existing.is_symlink():  # a dangling link: mkdir would fail on it
            raise UsageError(f"{flag}: {existing} is a broken symbolic link")
        existing = existing.parent
    if not existing.is_dir():
        made = "" if existing == directory else f", so {directory} cannot be made"
        raise UsageError(f"{flag}: {existing} is a file, not a directory{made}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{flag}: cannot write in {existing} (permission denied)")


def check_save_target(path: str) -> Path:
    target = npz_path(path)
    if target.is_dir():
        raise UsageError(f"--save: {target} is a directory; give a file name such as "
                         f"{target / 'params.npz'}")
    check_writable_dir(target.parent, "--save")
    probe_writable(target.parent, "--save")
    return target


def probe_writable(directory: Path, flag: str) -> None:
    """Make ``directory`` and a file in it, then remove the file: permissions alone do not tell
    (a read-only mount, a full disk, quotas, root's rights), an attempt does."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".cat_classifier-probe-", dir=directory)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:  # its text would name the probe, a file the user never asked for
        raise UsageError(f"{flag}: cannot write in {directory} ({reason(error)})") from None


def reason(error: OSError) -> str:
    """What went wrong, without the file names that ``str(error)`` adds."""
    return error.strerror or type(error).__name__


@dataclass
class Picture:
    """A picture to classify, as the network sees pictures, and what was done to make it so."""

    pixels: np.ndarray  # (64, 64, 3) uint8, RGB
    changes: str  # "" when the file was 64×64 RGB already


def read_picture(path: str) -> Picture:
    """The picture as the network sees pictures: (64, 64, 3) uint8, RGB."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise UsageError(f"--predict needs Pillow, which matplotlib brings ({INSTALL_HINT})"
                         ) from None
    picture = Path(path).expanduser()
    if not picture.is_file():
        what = "is a directory" if picture.is_dir() else "not found"
        raise UsageError(f"--predict: {picture} {what}; give a picture file (JPEG, PNG, …)")
    try:
        with Image.open(picture) as image:
            # 64×64 RGB as the training pictures: resize, and drop any alpha channel.
            pixels = image.convert("RGB").resize((64, 64), Image.Resampling.LANCZOS)
            return Picture(np.asarray(pixels), picture_changes(image.size, image.mode))
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise UsageError(f"--predict: cannot read {picture} as a picture ({error})") from None


def picture_changes(size: tuple[int, int], mode: str) -> str:
    """What makes a (width, height) picture of PIL ``mode`` a 64×64 RGB one, in words."""
    changes = [] if mode == "RGB" else [f"converted from {mode} to RGB"]
    if size != (64, 64):
        changes.append(f"resized from {size[0]}×{size[1]} to 64×64")
    return " and ".join(changes)


def model_name(layer_dims: list[int]) -> str:
    return next((name for name, (dims, _) in MODELS.items() if dims == layer_dims), "custom")


def load_run(args: argparse.Namespace) -> Run:
    """The --load file's parameters, checked against --model and --dtype."""
    path = Path(args.load).expanduser()
    if path.is_file() and not zipfile.is_zipfile(path):  # np.load would guess at a pickle
        raise UsageError(f"--load: {path} is not an .npz file (write one with --save)")
    try:
        params = nn.load_params(path)  # the file's own dtype
    except (OSError, DataError) as error:
        raise UsageError(f"--load: {error}") from None
    dims, dtype = nn.layer_dims(params), params["W1"].dtype
    if dims[0] != 12288 or dims[-1] != 1:
        raise UsageError(f"--load: {path} holds a network {dims}; this example needs 12288 inputs "
                         "(64×64×3 pictures) and 1 output (p(cat))")
    if args.model is not None and MODELS[args.model][0] != dims:
        raise UsageError(f"--load: {path} holds a {model_name(dims)} net {dims}, --model "
                         f"{args.model} is {MODELS[args.model][0]}: drop --model")
    if args.dtype is not None and np.dtype(args.dtype) != dtype:
        raise UsageError(f"--load: {path} holds {dtype} parameters, --dtype asks for "
                         f"{args.dtype}: drop --dtype (the file's dtype is used)")
    return Run(params, model_name(dims), loaded_from=path)


@dataclass
class Checked:
    """What the checks before training found."""

    save: Path | None
    picture: Picture | None
    plots: bool
    loaded: Run | None
    export: Path | None = None


def check_everything(args: argparse.Namespace) -> Checked:
    """Every path and flag, before minutes of training: UsageError on the first bad one."""
    loaded = load_run(args) if args.load else None
    save = check_save_target(args.save) if args.save else None
    picture = read_picture(args.predict) if args.predict else None
    export = check_export_target(args.export) if args.export else None
    plots = not args.no_plots
    if plots:
        out = Path(args.out).expanduser()
        for name in PLOTS:
            if (out / name).is_dir():
                raise UsageError(f"--out: {out / name} is a directory; the plot cannot go there")
        check_writable_dir(out, "--out")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(f"Plots skipped: matplotlib is not installed ({INSTALL_HINT})")
            plots = False
    return Checked(save, picture, plots, loaded, export)


def check_export_target(path: str) -> Path:
    target = Path(path).expanduser()
    if target.suffix != ".onnx":
        raise UsageError(f"--export: {target} does not end in .onnx; give a file name such as "
                         "out/cat.onnx")
    if target.is_dir():
        raise UsageError(f"--export: {target} is a directory; give a file name such as "
                         f"{target / 'cat.onnx'}")
    check_writable_dir(target.parent, "--export")
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise UsageError("--export needs onnx and onnxruntime: pip install -e '.[onnx]'") from None
    return target


def export(path: Path, params: dict[str, np.ndarray], train_x: np.ndarray, test_x: np.ndarray,
           test_predictions: np.ndarray) -> None:
    """Write the model to ONNX, and classify the test pictures with ONNX Runtime to show that
    it agrees with the engine."""
    import onnxruntime

    tg.export_onnx(nn.forward, params, train_x, argnames=["X"], path=path)
    session = onnxruntime.InferenceSession(str(path))
    labels = session.run(None, {"X": test_x})[0] > 0.5
    agree = int(np.sum(labels == test_predictions))
    print(f"Wrote {path} (ONNX): ONNX Runtime labels {agree} of {test_x.shape[1]} test pictures "
          "as the engine does")


# --------------------------------------------------------------------------- data and training


@dataclass
class Data:
    """The pictures, and which set they are."""

    dataset: CatDataset
    title: str  # for plots
    stand_in: bool


def load_data(args: argparse.Namespace) -> Data:
    """The course's files if found, else the stand-in (saying why)."""
    if not args.synthetic:
        data_dir = resolve_data_dir(args.data)
        if data_dir is not None:
            try:
                dataset = load_catvnoncat(data_dir)
            except (OSError, DataError) as error:
                raise UsageError(f"--data: {error}" if args.data else str(error)) from None
            print(f"Data: {data_dir} ({len(dataset.train_y[0])} train, "
                  f"{len(dataset.test_y[0])} test pictures)")
            return Data(dataset, "the course's cat pictures", stand_in=False)
        print(f"Data: the course's files were not found: {missing_data()}")
    print(f"Data: {'--synthetic: ' if args.synthetic else ''}using a generated stand-in set of "
          "the same shapes (coloured discs, not cats: the figures will not be the course's; "
          "see data/README.md)")
    return Data(synthetic_catvnoncat(), "the generated stand-in set (not the course's pictures)",
                stand_in=True)


def train(args: argparse.Namespace, dtype: np.dtype[np.floating], train_x: np.ndarray,
          train_y: np.ndarray) -> Run:
    """nn.train, keeping every iteration's cost; Ctrl-C keeps what was reached."""
    layer_dims, scheme = MODELS[args.model]
    print(f"Model: {args.model} {layer_dims}, learning rate {args.learning_rate}, "
          f"{args.iterations} iterations, {dtype}, seed {args.seed}")
    run = Run(nn.init_params(layer_dims, scheme, seed=args.seed, dtype=dtype), args.model,
              planned=args.iterations)

    def keep(iteration: int, cost: float, params: dict[str, np.ndarray]) -> None:
        run.costs.append(cost)  # the cost at `iteration`, before its update
        run.params = params  # after it (train never overwrites an iterate kept here)

    start = time.perf_counter()
    try:
        # nn.train stops by itself at the end of the step on Ctrl-C and returns what it reached;
        # should the interrupt still come through, `keep` has the last step's parameters.
        run.params, _ = nn.train(run.params, train_x, train_y, args.learning_rate,
                                 args.iterations, print_cost=True, record_every=RECORD_EVERY,
                                 callback=keep, jit=not args.no_jit)
    except KeyboardInterrupt:
        run.interrupted = True
    run.interrupted = run.interrupted or len(run.costs) < args.iterations
    run.seconds = time.perf_counter() - start
    if run.interrupted:
        print(f"Interrupted (Ctrl-C) after {len(run.costs)} of {args.iterations} iterations, "
              f"{run.seconds:.1f} s: evaluating, saving and plotting the parameters reached")
    else:
        print(f"Trained {args.iterations} iterations in {run.seconds:.1f} s")
    return run


def class_name(classes: np.ndarray, label: int) -> str:
    return bytes(classes[label]).decode("utf-8")


def report_accuracy(name: str, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                    stand_in: bool) -> np.ndarray:
    predictions = nn.predict(params, X)
    correct = int(np.sum(predictions == Y))
    which = " (stand-in data)" if stand_in else ""  # not the course's figures: say so
    print(f"{name} accuracy{which}: {correct / Y.shape[1]:.4f} ({correct}/{Y.shape[1]})")
    return predictions


# --------------------------------------------------------------------------- plots


def remove_stale(path: Path, why: str) -> None:
    """Say that ``path`` is not written this time, and remove an old one so none is mistaken
    for this run's."""
    if path.exists():
        path.unlink()
        print(f"No {path.name} this run ({why}): removed the old {path}")
    else:
        print(f"No {path.name} this run ({why})")


def write_cost_plot(path: Path, run: Run, learning_rate: float, data_title: str) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axes = figure.subplots()
    iterations = np.arange(len(run.costs))
    few = len(run.costs) <= 50  # a short run: each iteration a visible point
    axes.plot(iterations, run.costs, marker="o" if few else None, linewidth=1.5)
    axes.set_xlabel("iteration")
    axes.set_ylabel("cost (cross-entropy)")
    if few:
        axes.xaxis.get_major_locator().set_params(integer=True)
    stopped = (f", interrupted at {len(run.costs)} of {run.planned}" if run.interrupted else "")
    axes.set_title(f"{run.model} net, learning rate {learning_rate}{stopped}\n"
                   f"trained on {data_title}", fontsize=10)
    axes.grid(alpha=0.3)
    figure.savefig(path, dpi=100)
    print(f"Wrote {path} (the cost at each of {len(run.costs)} iterations)")


def write_mislabeled_plot(path: Path, dataset: CatDataset, predictions: np.ndarray,
                          data_title: str) -> None:
    from matplotlib.figure import Figure

    mislabeled = np.flatnonzero(predictions[0] != dataset.test_y[0])
    if mislabeled.size == 0:
        remove_stale(path, "no test picture is mislabeled")
        return
    columns = min(5, mislabeled.size)
    rows = math.ceil(mislabeled.size / columns)
    figure = Figure(figsize=(2.2 * columns, 2.5 * rows + 0.6), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes in grid.flat:
        axes.axis("off")
    for axes, index in zip(grid.flat, mislabeled):
        axes.imshow(dataset.test_x_orig[index], interpolation="nearest")
        predicted = class_name(dataset.classes, int(predictions[0, index]))
        actual = class_name(dataset.classes, int(dataset.test_y[0, index]))
        # A text above the picture, not set_title: matplotlib places each title against every
        # other axes of the figure, which took 2 of the 3.5 s a 33-picture grid took to draw.
        axes.text(0.5, 1.02, f"predicted: {predicted}\ntrue: {actual}", fontsize=9,
                  ha="center", va="bottom", transform=axes.transAxes)
    figure.suptitle(f"Mislabeled test pictures ({mislabeled.size} of {dataset.test_y.shape[1]})"
                    f"\nfrom {data_title}")
    figure.savefig(path, dpi=100)
    print(f"Wrote {path} ({mislabeled.size} pictures)")


def write_plots(out: Path, run: Run, learning_rate: float, dataset: CatDataset,
                predictions: np.ndarray, data_title: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    cost_png = out / "cost.png"
    if run.loaded_from is not None:
        remove_stale(cost_png, f"parameters loaded from {run.loaded_from}, not trained")
    elif not run.costs:
        remove_stale(cost_png, "no iteration was trained")
    else:
        write_cost_plot(cost_png, run, learning_rate, data_title)
    write_mislabeled_plot(out / "mislabeled.png", dataset, predictions, data_title)


def classify(picture: Picture, source: str, params: dict[str, np.ndarray],
             classes: np.ndarray) -> None:
    if picture.changes:
        print(f"{source}: {picture.changes}, as the training pictures")
    X = flatten_images(picture.pixels[np.newaxis], params["W1"].dtype)
    probability = float(nn.forward(params, X).data[0, 0])
    label = int(nn.predict(params, X)[0, 0])
    print(f'{source}: y = {label}, the model predicts a "{class_name(classes, label)}" picture '
          f"(p(cat) = {probability:.3f})")


# --------------------------------------------------------------------------- saving, reporting


def save(target: Path, params: dict[str, np.ndarray], out: Path) -> bool:
    """Write the parameters to --save. Should that fail after all (checked before training,
    but a disk fills up), write them elsewhere so that the training is not lost; False then."""
    try:
        print(f"Saved the parameters to {nn.save_params(target, params)}")
        return True
    except OSError as error:
        failure = f"--save: could not write {target} ({reason(error)})"
    for directory in rescue_dirs(target.parent, out):
        try:
            rescued = nn.save_params(unused_path(directory / target.name), params)
        except OSError:
            continue
        print(f"error: {failure}; the trained parameters are saved in {rescued} instead",
              file=sys.stderr)
        return False
    print(f"error: {failure}, nor in the current directory, {out} or the temporary directory: "
          "the trained parameters are lost", file=sys.stderr)
    return False


def rescue_dirs(failed: Path, out: Path) -> list[Path]:
    """Where parameters go when --save's directory fails: the current directory, --out, the
    system's temporary directory; each once, and never the one that failed."""
    found: list[Path] = []
    for directory in (Path.cwd(), out, Path(tempfile.gettempdir())):
        if directory.resolve() != failed.resolve() and directory.resolve() not in found:
            found.append(directory.resolve())
    return found


def unused_path(path: Path) -> Path:
    """``path``, or ``name-1.npz``, ``name-2.npz``, …: a rescue never overwrites a file."""
    candidate, number = path, 0
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


def blas_line() -> str:
    """One line: the BLAS library numpy calls, and its threads (threadpoolctl sees them; numpy's
    build information names the library only)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return numpy_blas_line()
    pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
    if not pools:
        return numpy_blas_line()
    return "BLAS: " + "; ".join(
        f"{pool.get('internal_api')} {pool.get('version') or ''}".rstrip()
        + f", {plural(pool.get('num_threads'), 'thread')}" for pool in pools)


def numpy_blas_line() -> str:
    blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    name = f"{blas.get('name', 'unknown')} {blas.get('version', '')}".rstrip()
    pinned = [f"{var}={os.environ[var]}" for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
              if os.environ.get(var)]
    threads = ", ".join(pinned) or "threads unknown (pip install threadpoolctl to see them)"
    return f"BLAS: {name} (numpy's build), {threads}"


def plural(count: object, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def time_line(run: Run, seconds: float) -> str:
    if run.loaded_from is not None:
        return f"Time: {seconds:.1f} s (no training: parameters loaded)"
    return f"Time: training {run.seconds:.1f} s of the whole run's {seconds:.1f} s"


# --------------------------------------------------------------------------- main


def evaluate_and_write(args: argparse.Namespace, checked: Checked) -> tuple[Run, bool]:
    """Load the data, train (or take the --load file), report, save, export, plot, classify.
    The flag is False when --save failed and the parameters went elsewhere."""
    data = load_data(args)
    dataset, run = data.dataset, checked.loaded
    dtype = np.dtype(args.dtype or "float64") if run is None else run.params["W1"].dtype
    train_x = flatten_images(dataset.train_x_orig, dtype)
    test_x = flatten_images(dataset.test_x_orig, dtype)
    if run is not None:
        print(f"Loaded {run.loaded_from}: {run.model} net {nn.layer_dims(run.params)}, "
              f"{dtype} (no training)")
    else:
        run = train(args, dtype, train_x, dataset.train_y)
    report_accuracy("Train", run.params, train_x, dataset.train_y, data.stand_in)
    predictions = report_accuracy("Test", run.params, test_x, dataset.test_y, data.stand_in)
    saved = checked.save is None or save(checked.save, run.params, Path(args.out).expanduser())
    if checked.export is not None:
        export(checked.export, run.params, train_x, test_x, predictions)
    if checked.plots:
        write_plots(Path(args.out).expanduser(), run, args.learning_rate, dataset,
                    predictions, data.title)
    if checked.picture is not None:
        classify(checked.picture, args.predict, run.params, dataset.classes)
    return run, saved


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    try:
        checked = check_everything(args)
        print(blas_line())
        run, saved = evaluate_and_write(args, checked)
    except (UsageError, OSError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted (Ctrl-C): stopped before finishing", file=sys.stderr)
        return 130
    print(time_line(run, time.perf_counter() - started))
    if run.interrupted:
        return 130
    return 0 if saved else 1


if __name__ == "__main__":
    sys.exit(main())
