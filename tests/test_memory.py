import numpy as np
import pytest

from anomalyflow.errors import DataError
from anomalyflow.patches.memory import MemoryBank


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


def test_distances_keep_their_digits_when_small_against_the_norms():
    """‖x‖² − 2x·c + ‖c‖² in float32 loses a distance of 1e-2 next to norms of 8e3; the search's
    distances are the neighbours' ‖x − c‖, so a score does not depend on rounding elsewhere in its batch."""
    rng = np.random.default_rng(0)
    bank_vectors = (1000 + rng.normal(size=(20, 64))).astype(np.float32)
    queries = bank_vectors[:5] + np.float32(1e-3) * rng.normal(size=(5, 64)).astype(np.float32)
    distances, ids = MemoryBank(bank_vectors).search(queries, k=2)
    assert (ids[:, 0] == np.arange(5)).all()
    exact = np.linalg.norm(queries[:, None].astype(np.float64) - bank_vectors[ids].astype(np.float64), axis=2)
    np.testing.assert_allclose(distances, exact, rtol=1e-5)
