"""CUDA out-of-memory handling: batches halve and retry, with a log line, and the numbers do not change.

The GPU is simulated on the CPU: the model's per-batch call raises ``torch.cuda.OutOfMemoryError``
for batches larger than a limit, as a GPU with less memory would.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from test_patchcore import PARAMS, _dataset

from anomalyflow.batching import AdaptiveBatch
from anomalyflow.data.table import read_samples
from anomalyflow.errors import ConfigError
from anomalyflow.patchcore import fit_patchcore
from anomalyflow.scoring import score_paths


@pytest.fixture
def warnings_of_batching():
    """The batching module's log records (the anomalyflow logger does not propagate to the root)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("anomalyflow.batching")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def limited(fn, limit: int, calls: list[int] | None = None):
    """``fn`` on a device that holds at most ``limit`` images per batch."""

    def call(batch):
        if calls is not None:
            calls.append(len(batch))
        if len(batch) > limit:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (simulated: batch {len(batch)} > {limit})")
        return fn(batch)

    return call


def test_halves_until_it_fits_and_keeps_the_size(warnings_of_batching):
    calls: list[int] = []
    adaptive = AdaptiveBatch(16, what="test pass")
    items = torch.arange(21)
    parts = adaptive.run(limited(lambda x: x * 2, 3, calls), items)
    assert torch.cat([result for _, result in parts]).tolist() == (items * 2).tolist()
    assert [(p.start, p.stop) for p, _ in parts] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14),
                                                      (14, 16), (16, 18), (18, 20), (20, 21)]
    assert calls[:4] == [16, 8, 4, 2] and adaptive.size == 2
    messages = [record.getMessage() for record in warnings_of_batching]
    assert messages == [f"test pass: CUDA out of memory at batch size {a}; retrying with batch size {b}"
                        for a, b in ((16, 8), (8, 4), (4, 2))]
    # The size found is kept for the next batch: no new failures.
    adaptive.run(limited(lambda x: x, 3, calls := []), torch.arange(5))
    assert calls == [2, 2, 1]


def test_one_image_that_does_not_fit_is_a_clear_error():
    with pytest.raises(ConfigError, match="out of GPU memory even with one image per batch; lower image_size"):
        AdaptiveBatch(4, what="scoring").run(limited(lambda x: x, 0), torch.arange(3))


def test_other_errors_are_not_retried():
    calls: list[int] = []

    def broken(batch):
        calls.append(len(batch))
        raise RuntimeError("not a memory problem")

    with pytest.raises(RuntimeError, match="not a memory problem"):
        AdaptiveBatch(4).run(broken, torch.arange(8))
    assert calls == [4]


def test_scoring_and_features_after_halving_equal_the_unhalved_run(tmp_path, warnings_of_batching):
    samples = _dataset(tmp_path, n_train=6, n_test=6)
    model = fit_patchcore(samples, tmp_path / "model", {**PARAMS, "batch_size": 8}, device="cpu")
    paths = read_samples(samples)["path"].tolist()
    scores, maps, _ = score_paths(model, paths, batch_size=8, desc=None)
    features = model.embed(paths, desc=None)
    assert not warnings_of_batching

    model.predict = limited(model.predict, 3)
    model.features.forward = limited(model.features.forward, 3)
    halved_scores, halved_maps, _ = score_paths(model, paths, batch_size=8, desc=None)
    halved_features = model.embed(paths, desc=None)
    np.testing.assert_array_equal(halved_scores, scores)
    np.testing.assert_array_equal(halved_maps, maps)
    torch.testing.assert_close(halved_features, features, rtol=0, atol=0)
    messages = [record.getMessage() for record in warnings_of_batching]
    assert "scoring: CUDA out of memory at batch size 8; retrying with batch size 4" in messages
    assert "PatchCore features: CUDA out of memory at batch size 4; retrying with batch size 2" in messages


def test_batches_of_several_views_are_sliced_together(tmp_path):
    """A transform may give several views of an image (an ensemble's members' input sizes): every view of
    a batch is moved, sliced and halved together, and rows still index the paths."""
    from PIL import Image

    from anomalyflow.batching import batch_length, map_batches
    from anomalyflow.data.transforms import to_tensor

    paths = []
    for i in range(7):
        Image.fromarray(np.full((10, 12 + i % 2, 3), 30 * i, np.uint8)).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))

    def views(image):
        full = to_tensor(image.resize((12, 10)))
        return full, full[:, :4, :6], torch.tensor([image.height, image.width])

    calls: list[int] = []

    def fn(batch):
        full, small, sizes = batch
        calls.append(batch_length(batch))
        if len(full) > 2:
            raise torch.cuda.OutOfMemoryError("simulated")
        assert len(full) == len(small) == len(sizes)
        return full.mean(dim=(1, 2, 3)), small.mean(dim=(1, 2, 3)), sizes[:, 1]

    results = list(map_batches(fn, paths, views, 4))
    assert calls[:2] == [4, 2]
    rows = [(r.start, r.stop) for r, _ in results]
    assert rows == [(0, 2), (2, 4), (4, 6), (6, 7)]
    means = torch.cat([out[0] for _, out in results])
    torch.testing.assert_close(means, torch.tensor([30 * i / 255 for i in range(7)]))
    torch.testing.assert_close(torch.cat([out[1] for _, out in results]), means)
    assert torch.cat([out[2] for _, out in results]).tolist() == [12 + i % 2 for i in range(7)]
