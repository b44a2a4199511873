"""Train/test splits: GRSS-DASE disjoint masks, stratified random splits, errors.

Expected numbers are the data manifest's (independent facts about the published
files), and per-class counts the manifest does not list are recomputed here
from the *original DASE TIFF maps* (files hsilib itself does not read) with the
manifest's DASE-to-EHU label mappings.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import tifffile

from hsilib.data import (DEFECT_POLICIES, SPLIT_KINDS, Split, get_scene, load_gt,
                         make_split)

# --- Manifest facts ---------------------------------------------------------
IP_TRAIN_AS_PUBLISHED = [29, 762, 435, 146, 232, 394, 16, 235, 10, 470, 1424, 328, 132,
                         728, 291, 57]
IP_TEST = [25, 675, 404, 99, 274, 354, 2, 250, 10, 503, 1065, 282, 80, 545, 99, 44]
IP_ON_BACKGROUND, IP_CONFLICTING = 151, 10
IP_CONFLICT_ROWS, IP_CONFLICT_COLS = range(76, 79), range(108, 112)  # y=76..78, x=108..111
IP_DASE_TO_EHU = [0, 2, 3, 5, 6, 8, 10, 11, 12, 14, 1, 4, 7, 9, 13, 15, 16]
PU_TRAIN_AS_PUBLISHED = [548, 540, 392, 524, 265, 532, 375, 514, 231]
PU_TRAIN_CLEAN_TOTAL = 2_774
PU_ON_BACKGROUND = 1_147
PU_TEST = [6304, 18146, 1815, 2912, 1113, 4572, 981, 3364, 795]
PU_DASE_TO_EHU = {1: 8, 2: 2, 3: 3, 4: 9, 5: 7, 6: 6, 7: 5, 8: 1, 9: 4}
SALINAS_A_COUNTS = {1: 391, 10: 1343, 11: 616, 12: 1525, 13: 674, 14: 799}

MASK_SCENES = ("indian_pines", "pavia_university")


def _gt_labels(name: str) -> np.ndarray:
    """Ground truth as 0..K-1 in sorted class-value order, -1 for background."""
    gt = np.asarray(load_gt(name))
    values = np.array(sorted(get_scene(name).classes))
    labels = np.full(gt.shape, -1, dtype=np.int64)
    for k, v in enumerate(values):
        labels[gt == v] = k
    return labels


def _dase_train_ehu(name: str, shared_data) -> np.ndarray:
    """The original DASE training map, relabelled to EHU class values (0 = none)."""
    if name == "indian_pines":
        dase = tifffile.imread(shared_data / "indian_pines" / "indianpines_ts.tif")
        return np.asarray(IP_DASE_TO_EHU)[dase.astype(np.int64)]
    dase = tifffile.imread(shared_data / "pavia_university" / "pavia_ts.tif")[:, :340]
    lookup = np.zeros(int(dase.max()) + 1, dtype=np.int64)
    for d, e in PU_DASE_TO_EHU.items():
        lookup[d] = e
    return lookup[dase.astype(np.int64)]


def _counts(labels: np.ndarray, n: int) -> list[int]:
    return np.bincount(labels[labels >= 0], minlength=n).tolist()


@pytest.fixture(scope="module")
def splits():
    """Disjoint and seed-0 random splits of both mask scenes under both policies."""
    return {
        (name, kind, defects): make_split(name, kind, seed=0, defects=defects)
        for name in MASK_SCENES for kind in SPLIT_KINDS for defects in DEFECT_POLICIES
    }


# --- Disjoint splits ----------------------------------------------------------

def test_indian_pines_as_published_counts_match_manifest(splits):
    """IP as published: 5,689 train / 4,711 test with the manifest's per-class counts."""
    train, test = splits["indian_pines", "disjoint", "as_published"].counts(16)
    assert train.tolist() == IP_TRAIN_AS_PUBLISHED
    assert test.tolist() == IP_TEST
    assert train.sum() == 5_689 and test.sum() == 4_711


def test_indian_pines_clean_drops_151_plus_10_training_pixels(splits, shared_data):
    """IP clean: 151 background + 10 conflicting training pixels fewer, same test set."""
    clean = splits["indian_pines", "disjoint", "clean"]
    train, test = clean.counts(16)
    assert train.sum() == 5_689 - IP_ON_BACKGROUND - IP_CONFLICTING
    assert test.tolist() == IP_TEST
    # Per class: the DASE pixels whose (remapped) label agrees with the gt.
    dase = _dase_train_ehu("indian_pines", shared_data)
    gt = np.asarray(load_gt("indian_pines"))
    agree = (dase > 0) & (dase == gt)
    expected = [int(np.count_nonzero(agree & (gt == v))) for v in range(1, 17)]
    assert train.tolist() == expected


def test_indian_pines_conflicting_pixels_are_the_documented_ones(splits):
    """The 10 conflicting IP pixels (x=108..111, y=76..78) are Soybean-mintill in the
    published mask, Grass-pasture-mowed in the gt, and dropped by 'clean'."""
    published = splits["indian_pines", "disjoint", "as_published"].train
    clean = splits["indian_pines", "disjoint", "clean"].train
    gt = _gt_labels("indian_pines")
    names = get_scene("indian_pines").class_names
    conflict = (published >= 0) & (gt >= 0) & (published != gt)
    rows, cols = np.nonzero(conflict)
    assert len(rows) == IP_CONFLICTING
    assert set(rows.tolist()) <= set(IP_CONFLICT_ROWS)
    assert set(cols.tolist()) <= set(IP_CONFLICT_COLS)
    assert {names[k] for k in published[conflict]} == {"Soybean-mintill"}
    assert {names[k] for k in gt[conflict]} == {"Grass-pasture-mowed"}
    assert np.all(clean[conflict] == -1)
    on_background = (published >= 0) & (gt < 0)
    assert np.count_nonzero(on_background) == IP_ON_BACKGROUND
    assert np.all(clean[on_background] == -1)


def test_indian_pines_train_is_the_dase_map(splits, shared_data):
    """As published, IP training labels are the DASE TIFF map remapped to EHU order."""
    published = splits["indian_pines", "disjoint", "as_published"].train
    dase = _dase_train_ehu("indian_pines", shared_data)
    values = np.array(sorted(get_scene("indian_pines").classes))
    expected = np.where(dase > 0, np.searchsorted(values, dase), -1)
    np.testing.assert_array_equal(published, expected)


def test_pavia_university_counts_match_manifest(splits, shared_data):
    """PU: 3,921 train as published, 2,774 clean (1,147 on background dropped),
    40,002 test, per-class counts from the manifest / the DASE map."""
    train, test = splits["pavia_university", "disjoint", "as_published"].counts(9)
    assert train.tolist() == PU_TRAIN_AS_PUBLISHED
    assert train.sum() == 3_921
    assert test.tolist() == PU_TEST and test.sum() == 40_002

    clean_train, clean_test = splits["pavia_university", "disjoint", "clean"].counts(9)
    assert clean_train.sum() == PU_TRAIN_CLEAN_TOTAL == 3_921 - PU_ON_BACKGROUND
    assert clean_test.tolist() == PU_TEST
    dase = _dase_train_ehu("pavia_university", shared_data)
    gt = np.asarray(load_gt("pavia_university"))
    expected = [int(np.count_nonzero((dase == v) & (gt == v))) for v in range(1, 10)]
    assert clean_train.tolist() == expected


def test_pavia_university_test_is_the_published_test_mask(splits, shared_data):
    """PU's test set is TSpavia_fixed exactly."""
    ts = scipy.io.loadmat(shared_data / "pavia_university" / "TSpavia_fixed.mat")["TSpavia_fixed"]
    test = splits["pavia_university", "disjoint", "clean"].test
    np.testing.assert_array_equal(test >= 0, ts > 0)
    np.testing.assert_array_equal(test[ts > 0] + 1, ts[ts > 0])  # PU values are 1..9


@pytest.mark.parametrize("name", MASK_SCENES)
@pytest.mark.parametrize("defects", DEFECT_POLICIES)
def test_disjoint_test_set_equals_ground_truth(splits, name, defects):
    """Every disjoint test pixel carries its ground-truth label."""
    test = splits[name, "disjoint", defects].test
    gt = _gt_labels(name)
    assert np.count_nonzero(test >= 0) > 0
    np.testing.assert_array_equal(test[test >= 0], gt[test >= 0])


@pytest.mark.parametrize("name", MASK_SCENES)
def test_clean_training_labels_agree_with_ground_truth(splits, name):
    """With defects='clean' every training label equals the ground truth."""
    train = splits[name, "disjoint", "clean"].train
    gt = _gt_labels(name)
    np.testing.assert_array_equal(train[train >= 0], gt[train >= 0])


@pytest.mark.parametrize("name", MASK_SCENES)
def test_disjoint_notes_report_the_defects(splits, name):
    """The notes say how many defective training pixels were dropped or kept."""
    expected = {"indian_pines": [IP_ON_BACKGROUND, IP_CONFLICTING],
                "pavia_university": [PU_ON_BACKGROUND]}[name]
    for defects, verb in (("clean", "dropped"), ("as_published", "kept")):
        notes = splits[name, "disjoint", defects].notes
        assert len(notes) == len(expected)
        for n, note in zip(expected, notes):
            assert str(n) in note and verb in note


# --- Random splits ------------------------------------------------------------

@pytest.mark.parametrize("name", MASK_SCENES)
@pytest.mark.parametrize("defects", DEFECT_POLICIES)
def test_random_split_copies_disjoint_train_counts(splits, name, defects):
    """The random split has exactly the disjoint split's per-class training counts,
    and every other labelled pixel is test."""
    n = get_scene(name).n_classes
    random_train, random_test = splits[name, "random", defects].counts(n)
    disjoint_train, _ = splits[name, "disjoint", defects].counts(n)
    np.testing.assert_array_equal(random_train, disjoint_train)
    totals = np.bincount(_gt_labels(name)[_gt_labels(name) >= 0], minlength=n)
    np.testing.assert_array_equal(random_train + random_test, totals)


@pytest.mark.parametrize("name", MASK_SCENES)
@pytest.mark.parametrize("defects", DEFECT_POLICIES)
def test_random_split_labels_agree_with_ground_truth(splits, name, defects):
    """Random train and test labels are the ground truth's, and cover all labelled pixels."""
    split = splits[name, "random", defects]
    gt = _gt_labels(name)
    for part in (split.train, split.test):
        np.testing.assert_array_equal(part[part >= 0], gt[part >= 0])
        assert np.all(gt[part >= 0] >= 0)
    np.testing.assert_array_equal((split.train >= 0) | (split.test >= 0), gt >= 0)


@pytest.mark.parametrize("key", [(n, k, d) for n in MASK_SCENES for k in SPLIT_KINDS
                                 for d in DEFECT_POLICIES], ids="-".join)
def test_train_and_test_never_overlap(splits, key):
    """No pixel is in both train and test; index helpers agree with the maps."""
    split = splits[key]
    assert not np.any((split.train >= 0) & (split.test >= 0))
    assert split.train.shape == split.test.shape == get_scene(key[0]).shape[:2]
    train_idx, train_lab = split.train_index()
    test_idx, test_lab = split.test_index()
    assert np.intersect1d(train_idx, test_idx).size == 0
    np.testing.assert_array_equal(split.train.ravel()[train_idx], train_lab)
    np.testing.assert_array_equal(split.test.ravel()[test_idx], test_lab)
    assert train_idx.size == np.count_nonzero(split.train >= 0)


def test_split_with_overlap_raises():
    """Constructing a Split whose train and test share pixels raises ValueError."""
    train = np.full((4, 5), -1)
    test = np.full((4, 5), -1)
    train[0, :3] = 0
    test[0, 2:] = 1
    with pytest.raises(ValueError, match="1 pixels are in both"):
        Split("custom", train, test)
    test[0, 2] = -1
    Split("custom", train, test)  # disjoint again: accepted


@pytest.mark.parametrize("name", MASK_SCENES)
def test_random_split_deterministic_per_seed(name):
    """The same seed gives the same split; different seeds give different ones."""
    a = make_split(name, "random", seed=7)
    b = make_split(name, "random", seed=7)
    c = make_split(name, "random", seed=8)
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.test, b.test)
    assert a.seed == 7 and c.seed == 8
    assert not np.array_equal(a.train, c.train)
    np.testing.assert_array_equal(a.counts(get_scene(name).n_classes)[0],
                                  c.counts(get_scene(name).n_classes)[0])


def test_train_fraction_on_salinas_a():
    """train_fraction works on Salinas-A, whose class values are 1, 10..14."""
    scene = get_scene("salinas_a")
    assert sorted(scene.classes) == sorted(SALINAS_A_COUNTS)
    fraction = 0.2
    split = make_split("salinas_a", "random", seed=3, train_fraction=fraction)
    train, test = split.counts(scene.n_classes)
    totals = np.array([SALINAS_A_COUNTS[v] for v in sorted(SALINAS_A_COUNTS)])
    assert np.all(np.abs(train - fraction * totals) <= 0.5 + 1e-9)
    np.testing.assert_array_equal(train + test, totals)
    gt = _gt_labels("salinas_a")
    for part in (split.train, split.test):
        np.testing.assert_array_equal(part[part >= 0], gt[part >= 0])
    assert not np.any((split.train >= 0) & (split.test >= 0))


def test_train_fraction_overrides_disjoint_counts():
    """On a scene with masks, train_fraction replaces the disjoint split's counts."""
    split = make_split("indian_pines", "random", seed=0, train_fraction=0.5)
    train, test = split.counts(16)
    gt = _gt_labels("indian_pines")
    totals = np.bincount(gt[gt >= 0], minlength=16)
    np.testing.assert_array_equal(train + test, totals)
    assert np.all(np.abs(train - 0.5 * totals) <= 0.5 + 1e-9)
    assert train.tolist() != IP_TRAIN_AS_PUBLISHED


# --- Errors -------------------------------------------------------------------

def test_unknown_split_kind_raises():
    """An unknown kind raises ValueError naming it and the accepted kinds."""
    with pytest.raises(ValueError, match="'spatial'") as info:
        make_split("indian_pines", "spatial")
    for kind in SPLIT_KINDS:
        assert kind in str(info.value)


@pytest.mark.parametrize("kind", SPLIT_KINDS)
def test_unknown_defects_policy_raises(kind):
    """An unknown defects policy raises ValueError naming it and the accepted ones."""
    with pytest.raises(ValueError, match="'fixed'") as info:
        make_split("indian_pines", kind, defects="fixed")
    for policy in DEFECT_POLICIES:
        assert policy in str(info.value)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_train_fraction_out_of_range_raises(fraction):
    """train_fraction outside (0, 1) raises ValueError naming train_fraction."""
    with pytest.raises(ValueError, match="train_fraction"):
        make_split("salinas_a", "random", train_fraction=fraction)


def test_scene_without_masks_needs_train_fraction():
    """A random split of a scene without masks and no train_fraction raises, saying
    to pass train_fraction; its disjoint split raises too."""
    with pytest.raises(ValueError, match="train_fraction"):
        make_split("salinas", "random")
    with pytest.raises(ValueError, match="no disjoint split"):
        make_split("salinas", "disjoint")
