"""The test session's set-up: one BLAS thread, hypothesis without deadlines, and the course's
data found by the examples' rule.

``course_data_dir`` finds the files with ``data.resolve_data_dir``: ``$TINYGRAD_NN_DATA``, else
the project's own ``data/``; the tests that need them skip without them and say where they looked.

Each pytest-xdist worker (``-n auto`` in pyproject.toml) is a pytest session of its own: it runs
the session fixtures below for itself, and imports this file (so loads the profile) itself.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tinygrad_nn.data import missing_data, resolve_data_dir

# No deadline: with the tests on every core, or another program on the machine, one example can
# take several times its usual time, and hypothesis' default deadline (200 ms) would fail it.
# The example counts stay in each test's @settings. HYPOTHESIS_PROFILE chooses another profile
# ("default" is hypothesis' own).
settings.register_profile("tinygrad_nn", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "tinygrad_nn"))

# Child processes (the examples and benchmarks run as scripts, the notebook's kernel) read these
# when their BLAS or OpenMP library loads.
ONE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="session", autouse=True)
def one_blas_thread() -> Iterator[None]:
    """Every test on one BLAS thread, in this process and in the processes it starts: on a busy
    2-core machine two threads per process fight for the cores (one test took 101 s with two,
    33 s with one)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ONE_THREAD_ENV.items():
            patch.setenv(name, value)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # the dev extra brings it; without it only the children are pinned
            yield
            return
        with threadpool_limits(limits=1):
            yield


@pytest.fixture(scope="session")
def course_data_dir() -> Path:
    found = resolve_data_dir(None)
    if found is None:
        pytest.skip(f"the course's data was not found: {missing_data()} (see data/README.md)")
    return found
