"""The .npz dataset file: ELL's four keys, atomic save, non-finite rows dropped, labels → indices, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.data.dataset import Dataset
from kwsc.errors import FormatError, InputError


def _dataset() -> Dataset:
    features = np.arange(12, dtype=np.float32).reshape(4, 3)
    features[2, 1] = np.nan
    return Dataset(features, ["b", "a", "a", "b"], ["a", "b", "c"], [16000, 512, 80, 40, 40])


def test_round_trip_with_numpy_alone(tmp_path):
    ds = _dataset()
    assert len(ds) == 3 and ds.labels.tolist() == ["b", "a", "b"]  # the NaN row is gone
    path = ds.save(tmp_path / "sub" / "d.npz")
    assert [p.name for p in path.parent.iterdir()] == ["d.npz"]
    with np.load(path) as data:
        assert sorted(data.files) == ["features", "labels", "parameters", "valid_classes"]
        assert data["features"].dtype == np.float32 and data["labels"].dtype.kind == "U"
    again = Dataset.load(path)
    np.testing.assert_array_equal(again.features, ds.features)
    assert again.window_size == 40 and again.valid_classes.tolist() == ["a", "b", "c"]


def test_indices_weights_and_normalisation():
    ds = _dataset()
    assert ds.label_indices().tolist() == [1, 0, 1]
    np.testing.assert_allclose(ds.class_weights(), [3.0, 1.5, 0.0])
    mean, std = ds.mean_std()
    np.testing.assert_allclose(mean, ds.features.mean(axis=0))
    assert (std > 0).all()


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="no such dataset file"):
        Dataset.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(FormatError, match="not a readable .npz"):
        Dataset.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "partial.npz", features=np.zeros((1, 2)))
    with pytest.raises(FormatError, match="missing labels, valid_classes, parameters"):
        Dataset.load(tmp_path / "partial.npz")
