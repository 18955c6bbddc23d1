"""The course's data for the tests, found by the examples' rule (``data.resolve_data_dir``):
``$TINYGRAD_NN_DATA``, else the project's own ``data/``; the tests that need it skip without it."""

from pathlib import Path

import pytest

from tinygrad_nn.data import missing_data, resolve_data_dir


@pytest.fixture(scope="session")
def course_data_dir() -> Path:
    found = resolve_data_dir(None)
    if found is None:
        pytest.skip(f"the course's data was not found: {missing_data()} (see data/README.md)")
    return found
