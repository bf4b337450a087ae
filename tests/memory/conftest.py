import pytest

from deskmate.memory import FileBackend


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def backend(data_dir):
    return FileBackend(data_dir)
