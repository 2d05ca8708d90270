"""Tests of the procedural chest radiograph phantoms (explain_engine.demo.phantoms)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from explain_engine.demo import phantoms
from explain_engine.demo.phantoms import lungs


@pytest.fixture(scope="module")
def train_set() -> phantoms.PhantomDataset:
    return phantoms.make_phantom_dataset(80, size=64, seed=11, shortcut_strength=0.8, split="train")


def factor_stats(split: str, strength: float, n: int = 2000) -> tuple[float, float]:
    """P(shortcut | positive), P(shortcut | negative) over n phantoms' factors (no rendering)."""
    draws = [phantoms.phantom_factors(21, i, shortcut_strength=strength, split=split) for i in range(n)]
    y = np.array([f.label for f in draws], bool)
    s = np.array([f.shortcut_present for f in draws])
    return s[y].mean(), s[~y].mean()


def test_archive_holds_517_lung_masks():
    assert len(phantoms.list_lung_mask_files()) == 517
    bank = phantoms.load_lung_mask_bank()
    assert bank.n_archive == 517
    # Empty masks (lateral views, CT) and non-frontal shapes are dropped, most remain.
    assert 380 <= len(bank) <= 517
    assert bank.masks.shape[1:] == (2, 256, 256)


def test_processed_bank_cache_roundtrip(tmp_path, monkeypatch):
    full = phantoms.load_lung_mask_bank()
    # A slice of the bank keeps the compression quick.
    bank = dataclasses.replace(
        full,
        names=full.names[:3],
        masks=full.masks[:3],
        medial_x=full.medial_x[:3],
        base_y=full.base_y[:3],
        boxes=full.boxes[:3],
    )
    monkeypatch.setenv(phantoms.CACHE_ENV, str(tmp_path))
    file = lungs._bank_cache_file(phantoms.lung_mask_zip_path())
    assert file.parent == tmp_path
    lungs._write_bank(bank, file)
    back = lungs._read_bank(file)
    assert back.names == bank.names and back.n_archive == bank.n_archive
    np.testing.assert_array_equal(back.masks, bank.masks)
    np.testing.assert_array_equal(back.base_y, bank.base_y)
    monkeypatch.setenv(phantoms.CACHE_ENV, "")
    assert phantoms.bank_cache_dir() is None


def test_missing_archive_raises_clear_error(tmp_path, monkeypatch):
    missing = tmp_path / "torchxrayvision" / "data" / "semantic_masks_v7labs_lungs.zip"
    monkeypatch.setattr(lungs, "lung_mask_zip_path", lambda: missing)
    with pytest.raises(phantoms.LungMaskArchiveNotFoundError, match="semantic_masks_v7labs_lungs.zip"):
        phantoms.load_lung_mask_bank()
    with pytest.raises(FileNotFoundError, match=str(missing)):
        phantoms.list_lung_mask_files()


def test_same_seed_same_phantom_and_different_seeds_differ():
    a = phantoms.make_phantom(3, index=5, size=64)
    b = phantoms.make_phantom(3, index=5, size=64)
    c = phantoms.make_phantom(4, index=5, size=64)
    assert a.factors == b.factors
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.opacity_mask, b.opacity_mask)
    np.testing.assert_array_equal(a.lung_mask, b.lung_mask)
    assert not np.array_equal(a.image, c.image)


def test_phantom_i_does_not_depend_on_dataset_length():
    small = phantoms.make_phantom_dataset(3, size=64, seed=7)
    large = phantoms.make_phantom_dataset(6, size=64, seed=7)
    np.testing.assert_array_equal(small.images, large.images[:3])
    assert small.factors == large.factors[:3]
    chunk = phantoms.make_phantom_dataset(3, size=64, seed=7, start=3)
    np.testing.assert_array_equal(chunk.images, large.images[3:])


@pytest.mark.parametrize("size", [64, 128])
def test_shapes_dtypes_and_ranges(size):
    p = phantoms.make_phantom(0, index=1, size=size, label=1)
    assert p.image.shape == p.opacity_mask.shape == p.lung_mask.shape == (size, size)
    assert p.image.dtype == np.float32
    assert p.opacity_mask.dtype == bool and p.lung_mask.dtype == bool
    assert 0.0 <= p.image.min() and p.image.max() <= 1.0
    # Looks like a radiograph: aerated lung darker than the (denser) rest of the body.
    body = p.image[int(0.85 * size) :, size // 3 : 2 * size // 3]
    assert p.image[p.lung_mask & ~p.opacity_mask].mean() < body.mean() - 0.2
    assert 0.2 < p.lung_mask.mean() < 0.6
    ds = phantoms.make_phantom_dataset(4, size=size, seed=2)
    assert ds.images.shape == (4, size, size) and ds.images.dtype == np.uint8
    assert ds.opacity_masks.shape == ds.lung_masks.shape == (4, size, size)
    assert ds.labels.dtype == np.int64
    as_float = phantoms.make_phantom_dataset(4, size=size, seed=2, dtype=np.float32)
    assert as_float.images.dtype == np.float32
    np.testing.assert_allclose(ds.images_float(), as_float.images, atol=0.5 / 255 + 1e-6)


def test_opacity_mask_empty_for_negatives_and_inside_lungs_for_positives():
    for i in range(len(phantoms.OPACITY_ZONES)):
        zone = phantoms.OPACITY_ZONES[i]
        for size in (64, 128):
            pos = phantoms.make_phantom(5, index=i, size=size, label=1, opacity_zone=zone)
            assert pos.factors.opacity_zone == zone
            assert pos.opacity_mask.any()
            assert not (pos.opacity_mask & ~pos.lung_mask).any()
            # Right-sided zones are in the image's left half (patient's right), left-sided in the right half.
            cols = np.nonzero(pos.opacity_mask)[1].mean() / size
            assert (cols < 0.5) if zone.startswith("right") else (cols > 0.5)
    neg = phantoms.make_phantom(5, index=0, size=64, label=0)
    assert neg.factors.opacity_zone is None and not neg.opacity_mask.any()


def test_opacity_is_denser_than_the_same_lung_without_it():
    pos = phantoms.make_phantom(9, index=2, size=128, label=1, opacity_density=0.9, opacity_size=0.25)
    clear = phantoms.render_phantom(
        dataclasses.replace(pos.factors, label=0, opacity_zone=None, opacity_density=0.0, opacity_size=0.0),
        size=128,
        seed=(9, 2, 1),
    )
    m = pos.opacity_mask
    assert pos.image[m].mean() > clear.image[m].mean() + 0.08
    # Outside the opacity the two renderings are nearly identical.
    far = pos.lung_mask & ~phantoms_dilate(m, 12)
    assert abs(pos.image[far].mean() - clear.image[far].mean()) < 0.03


def phantoms_dilate(mask: np.ndarray, iterations: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=iterations)


def test_shortcut_realised_at_requested_strength(train_set):
    p_pos, p_neg = factor_stats("train", 0.8)
    assert abs(p_pos - 0.8) < 0.035 and abs(p_neg - 0.2) < 0.035
    # The rendered dataset carries the same factors as the factor stream, and they match its labels.
    assert train_set.factors == [phantoms.phantom_factors(11, i, shortcut_strength=0.8) for i in range(80)]
    assert all(f.label == y for f, y in zip(train_set.factors, train_set.labels, strict=True))
    assert all(f.portable_ap == s for f, s in zip(train_set.factors, train_set.shortcut_present, strict=True))
    labels = train_set.labels.astype(bool)
    assert train_set.shortcut_present[labels].mean() > train_set.shortcut_present[~labels].mean() + 0.3


def test_flipped_and_neutral_splits():
    p_pos, p_neg = factor_stats("flipped", 0.8)
    assert abs(p_pos - 0.2) < 0.035 and abs(p_neg - 0.8) < 0.035
    p_pos, p_neg = factor_stats("neutral", 0.9)
    assert abs(p_pos - 0.5) < 0.045 and abs(p_neg - 0.5) < 0.045
    flipped = phantoms.make_phantom_dataset(40, size=64, seed=12, shortcut_strength=0.8, split="flipped")
    y, s = flipped.labels.astype(bool), flipped.shortcut_present
    assert s[~y].mean() > s[y].mean()


def test_anatomy_is_the_same_at_every_size():
    small = phantoms.make_phantom(8, index=3, size=64, label=1)
    large = phantoms.make_phantom(8, index=3, size=128, label=1)
    assert small.factors == large.factors
    pooled = large.lung_mask.reshape(64, 2, 64, 2).mean(axis=(1, 3)) >= 0.5
    assert (pooled != small.lung_mask).mean() < 0.03
    pooled = large.opacity_mask.reshape(64, 2, 64, 2).mean(axis=(1, 3)) >= 0.5
    overlap = (pooled & small.opacity_mask).sum() / max(1, (pooled | small.opacity_mask).sum())
    assert overlap > 0.7


def test_device_as_shortcut_factor():
    rng = np.random.default_rng(1)
    draws = [
        phantoms.sample_factors(rng, shortcut_factor="device", shortcut_strength=1.0) for _ in range(200)
    ]
    assert all((f.device != "none") == bool(f.label) for f in draws)
    assert {f.device for f in draws} - {"none"} <= set(phantoms.DEVICES)
    for device in phantoms.DEVICES:
        p = phantoms.make_phantom(1, index=0, size=64, device=device)
        assert p.image.shape == (64, 64)


def test_save_and_load_roundtrip(tmp_path):
    ds = phantoms.make_phantom_dataset(5, size=64, seed=4)
    path = tmp_path / "phantoms.npz"
    ds.save(path)
    back = phantoms.PhantomDataset.load(path)
    np.testing.assert_array_equal(back.images, ds.images)
    np.testing.assert_array_equal(back.labels, ds.labels)
    np.testing.assert_array_equal(back.opacity_masks, ds.opacity_masks)
    np.testing.assert_array_equal(back.lung_masks, ds.lung_masks)
    assert back.factors == ds.factors and back.seed == 4


def test_invalid_arguments_are_rejected():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        phantoms.sample_factors(rng, split="test")
    with pytest.raises(ValueError):
        phantoms.sample_factors(rng, shortcut_strength=1.5)
    with pytest.raises(ValueError):
        phantoms.render_phantom(phantoms.PhantomFactors(label=1, opacity_zone="nowhere"))
