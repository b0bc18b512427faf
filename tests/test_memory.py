import numpy as np
import pytest

from anomalyflow.errors import DataError
from anomalyflow.pni.memory import MemoryBank


def test_exact_search_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    bank_vectors = rng.normal(size=(50, 8)).astype(np.float32)
    queries = rng.normal(size=(7, 8)).astype(np.float32)
    bank = MemoryBank(bank_vectors)
    distances, ids = bank.search(queries, k=3)
    brute = np.linalg.norm(queries[:, None] - bank_vectors[None], axis=2)
    np.testing.assert_array_equal(ids, np.argsort(brute, axis=1)[:, :3])
    np.testing.assert_allclose(distances, np.sort(brute, axis=1)[:, :3], rtol=1e-4, atol=1e-4)
    bank.save(tmp_path / "bank.faiss")
    loaded = MemoryBank.load(tmp_path / "bank.faiss")
    assert len(loaded) == 50
    np.testing.assert_array_equal(loaded.search(queries, 3)[1], ids)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.faiss"):
        MemoryBank.load(tmp_path / "missing.faiss")
    broken = tmp_path / "broken.faiss"
    broken.write_bytes(b"not an index")
    with pytest.raises(DataError, match="broken.faiss"):
        MemoryBank.load(broken)
    with pytest.raises(DataError, match="dims"):
        MemoryBank(np.zeros((3, 4), np.float32)).search(np.zeros((1, 5), np.float32))
