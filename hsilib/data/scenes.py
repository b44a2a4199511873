"""Registry of the public hyperspectral benchmark scenes.

Each :class:`Scene` names its files (canonical URL, size, sha256, MATLAB key),
its classes, sensor, approximate wavelengths and a false-colour band triplet.
Checksums are the published EHU values where they exist (see the data
manifest); split masks are pinned to a commit of their source repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..registry import Registry

EHU = "https://www.ehu.eus/ccwintco/uploads"
MHAUT = (
    "https://raw.githubusercontent.com/mhaut/HSI-datasets/"
    "29efb503bdde94f620ba3873d3a56039fef18257/Classification"
)
XDRL1 = (
    "https://raw.githubusercontent.com/xdrl1/SpatiallyDisjointHSI/"
    "3f5a1dfd1a71feb63bb60a5f3b607aae5fcf0a3a/creation/raw"
)


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file of a scene.

    Parameters
    ----------
    name : file name in the scene's folder of the data directory.
    url : canonical download address.
    sha256 : published checksum; ``None`` where none is published (the file is
        then accepted with a warning that prints its hash).
    size : size in bytes where known.
    key : MATLAB variable holding the array (``None`` for TIFF files).
    """

    name: str
    url: str
    sha256: str | None
    size: int | None = None
    key: str | None = None


@dataclass(frozen=True)
class DisjointMasks:
    """The GRSS-DASE spatially disjoint split of a scene.

    ``train`` (and ``test``, where a separate test mask exists) are label maps;
    ``label_map[i]`` is the ground-truth class id of mask id ``i`` (identity if
    ``None``). Without a test mask the test set is the ground truth minus every
    training position.
    """

    train: RemoteFile
    test: RemoteFile | None = None
    label_map: tuple[int, ...] | None = None


def water_band_ranges(bands: tuple[int, ...]) -> str:
    """Band numbers as runs, in words: ``(104, 105, 106, 150, 220)`` gives
    ``"104-106, 150 and 220"``."""
    runs: list[list[int]] = []
    for band in sorted(bands):
        if runs and band == runs[-1][-1] + 1:
            runs[-1].append(band)
        else:
            runs.append([band])
    parts = [f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs]
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


@dataclass(frozen=True)
class Scene:
    """A registered benchmark scene.

    ``classes`` maps ground-truth values to class names (values need not be
    contiguous: Salinas-A uses Salinas' ids). ``rgb_bands`` are 0-based band
    indices of the cube for a false-colour composite. ``water_bands`` are the
    1-based water-absorption bands still in the cube (preprocessing drops
    them); ``removed_bands`` are the 1-based bands of the sensor's original
    band list that the distributed cube already lacks.
    """

    name: str
    title: str
    sensor: str
    cube: RemoteFile
    gt: RemoteFile
    shape: tuple[int, int, int]
    dtype: str
    classes: Mapping[int, str]
    rgb_bands: tuple[int, int, int]
    wavelength_range_nm: tuple[float, float]
    gsd_m: float
    folder: str = ""
    disjoint: DisjointMasks | None = None
    extras: tuple[RemoteFile, ...] = ()
    water_bands: tuple[int, ...] = ()
    removed_bands: tuple[int, ...] = ()
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.folder:
            object.__setattr__(self, "folder", self.name)

    @property
    def class_names(self) -> list[str]:
        """Class names in training-label order (sorted ground-truth values)."""
        return [self.classes[v] for v in sorted(self.classes)]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_bands(self) -> int:
        """Bands left after preprocessing drops the water-absorption bands."""
        return self.shape[2] - len(self.water_bands)

    @property
    def files(self) -> tuple[RemoteFile, ...]:
        """Every file of the scene: cube, ground truth, split masks, extras."""
        masks = ()
        if self.disjoint is not None:
            masks = tuple(f for f in (self.disjoint.train, self.disjoint.test) if f)
        return (self.cube, self.gt, *masks, *self.extras)

    @property
    def label_files(self) -> tuple[RemoteFile, ...]:
        """The small files a twin needs: every file but the cube."""
        return tuple(f for f in self.files if f is not self.cube)

    def wavelengths(self) -> np.ndarray:
        """Approximate band centres in nm (evenly spaced over the sensor range,
        with already removed bands left out); for plotting, not for physics."""
        lo, hi = self.wavelength_range_nm
        n_raw = self.shape[2] + len(self.removed_bands)
        grid = np.linspace(lo, hi, n_raw)
        removed = np.asarray(self.removed_bands, dtype=int) - 1
        return np.delete(grid, removed)


IP_CLASSES = {
    1: "Alfalfa", 2: "Corn-notill", 3: "Corn-mintill", 4: "Corn",
    5: "Grass-pasture", 6: "Grass-trees", 7: "Grass-pasture-mowed",
    8: "Hay-windrowed", 9: "Oats", 10: "Soybean-notill", 11: "Soybean-mintill",
    12: "Soybean-clean", 13: "Wheat", 14: "Woods",
    15: "Buildings-Grass-Trees-Drives", 16: "Stone-Steel-Towers",
}
SALINAS_CLASSES = {
    1: "Brocoli_green_weeds_1", 2: "Brocoli_green_weeds_2", 3: "Fallow",
    4: "Fallow_rough_plow", 5: "Fallow_smooth", 6: "Stubble", 7: "Celery",
    8: "Grapes_untrained", 9: "Soil_vinyard_develop",
    10: "Corn_senesced_green_weeds", 11: "Lettuce_romaine_4wk",
    12: "Lettuce_romaine_5wk", 13: "Lettuce_romaine_6wk",
    14: "Lettuce_romaine_7wk", 15: "Vinyard_untrained",
    16: "Vinyard_vertical_trellis",
}
IP_GT = RemoteFile(
    "Indian_pines_gt.mat", f"{EHU}/c/c4/Indian_pines_gt.mat",
    "65c4687a8ab04f6da4789799bc3bc4f6e88bccac3ed6a2e6ae367e5e6b9e429c", 1125,
    "indian_pines_gt",
)
# DASE id i is EHU class IP_DASE_TO_EHU[i] (confirmed against the Purdue ground truth).
IP_DASE_TO_EHU = (0, 2, 3, 5, 6, 8, 10, 11, 12, 14, 1, 4, 7, 9, 13, 15, 16)
IP_DISJOINT = DisjointMasks(
    train=RemoteFile(
        "indianpines_disjoint_dset.mat", f"{MHAUT}/indianpines_disjoint_dset.mat",
        "430c37ce56a160d410378aa136e5e696e2436e2fe03e275f306c3502f622e77b", 21248,
        "indianpines_disjoint_dset",
    ),
    label_map=IP_DASE_TO_EHU,
)
IP_PURDUE_GT = RemoteFile(
    "19920612_AVIRIS_IndianPine_Site3_gr.tif",
    f"{XDRL1}/IndianPines/19920612_AVIRIS_IndianPine_Site3_gr.tif",
    "363b829406adbe953235c253bb20c63b8ad76a8ac62c00443cdf0c9eee45c3c5", 22871,
)
IP_WATER_BANDS = (*range(104, 109), *range(150, 164), 220)

_SCENES = (
    Scene(
        name="indian_pines", title="Indian Pines (corrected, 200 bands)",
        sensor="AVIRIS",
        cube=RemoteFile(
            "Indian_pines_corrected.mat", f"{EHU}/6/67/Indian_pines_corrected.mat",
            "ec2f8808710919d566f70f0d4aa885aae1ddfd42b734aba71c5e12ca65450939",
            5953527, "indian_pines_corrected",
        ),
        gt=IP_GT, shape=(145, 145, 200), dtype="uint16", classes=IP_CLASSES,
        rgb_bands=(43, 21, 11), wavelength_range_nm=(400.0, 2500.0), gsd_m=20.0,
        disjoint=IP_DISJOINT, extras=(IP_PURDUE_GT,), removed_bands=IP_WATER_BANDS,
        notes="Water-absorption bands 104-108, 150-163 and 220 already removed.",
    ),
    Scene(
        name="indian_pines_220", title="Indian Pines (original, 220 bands)",
        sensor="AVIRIS", folder="indian_pines",
        cube=RemoteFile(
            "Indian_pines.mat", f"{EHU}/2/22/Indian_pines.mat", None, None,
            "indian_pines",
        ),
        gt=IP_GT, shape=(145, 145, 220), dtype="uint16", classes=IP_CLASSES,
        rgb_bands=(43, 21, 11), wavelength_range_nm=(400.0, 2500.0), gsd_m=20.0,
        disjoint=IP_DISJOINT, extras=(IP_PURDUE_GT,), water_bands=IP_WATER_BANDS,
        notes="Contains the water-absorption bands; preprocessing can drop them.",
    ),
    Scene(
        name="pavia_university", title="Pavia University", sensor="ROSIS",
        cube=RemoteFile(
            "PaviaU.mat", f"{EHU}/e/ee/PaviaU.mat",
            "28447fa87f7a5797845e9a189c0da85e23b1d06a4ba7361e5ff44efbf834d2fb",
            34806917, "paviaU",
        ),
        gt=RemoteFile(
            "PaviaU_gt.mat", f"{EHU}/5/50/PaviaU_gt.mat",
            "23f6a426928f9b32984adffe659e29f554f9fb6c93b5a107528d308d5087a829",
            11005, "paviaU_gt",
        ),
        shape=(610, 340, 103), dtype="uint16",
        classes={
            1: "Asphalt", 2: "Meadows", 3: "Gravel", 4: "Trees",
            5: "Painted metal sheets", 6: "Bare Soil", 7: "Bitumen",
            8: "Self-Blocking Bricks", 9: "Shadows",
        },
        rgb_bands=(55, 41, 12), wavelength_range_nm=(430.0, 860.0), gsd_m=1.3,
        disjoint=DisjointMasks(
            train=RemoteFile(
                "TRpavia_fixed.mat", f"{MHAUT}/TRpavia_fixed.mat",
                "9eb125761f65b562f4b33c48af45131c9bdf26cb5eaa50cecf744873033a063b",
                2379, "TRpavia_fixed",
            ),
            test=RemoteFile(
                "TSpavia_fixed.mat", f"{MHAUT}/TSpavia_fixed.mat",
                "da9aa60e63079f2743fe9c435e00ed88a7fb2d7171c8cce7a18a6d2faab12e4e",
                11167, "TSpavia_fixed",
            ),
        ),
    ),
    Scene(
        name="pavia_centre", title="Pavia Centre", sensor="ROSIS",
        cube=RemoteFile(
            "Pavia.mat", f"{EHU}/e/e3/Pavia.mat",
            "b60341da323fd271cd97dd6d7a69514d385ccd7fdfc5a60c4ff5994b047f152e",
            129624657, "pavia",
        ),
        gt=RemoteFile(
            "Pavia_gt.mat", f"{EHU}/5/53/Pavia_gt.mat",
            "7eb54ab81b404dd3ae572e6d0ec211595029e5a847bec2cfb8f9e72d07066b69",
            34887, "pavia_gt",
        ),
        shape=(1096, 715, 102), dtype="uint16",
        classes={
            1: "Water", 2: "Trees", 3: "Asphalt", 4: "Self-Blocking Bricks",
            5: "Bitumen", 6: "Tiles", 7: "Shadows", 8: "Meadows", 9: "Bare Soil",
        },
        rgb_bands=(65, 28, 9), wavelength_range_nm=(430.0, 860.0), gsd_m=1.3,
    ),
    Scene(
        name="salinas", title="Salinas (corrected, 204 bands)", sensor="AVIRIS",
        cube=RemoteFile(
            "Salinas_corrected.mat", f"{EHU}/a/a3/Salinas_corrected.mat",
            "5ec1c0d22f56d18ecd336f8e35735863c0f160682e04e0c18ef3f89a3334d87d",
            26552770, "salinas_corrected",
        ),
        gt=RemoteFile(
            "Salinas_gt.mat", f"{EHU}/f/fa/Salinas_gt.mat",
            "ecfab4d31ef5553f097943235d8ea502038eb4a2067b2ad10b33e37c949955e2",
            4277, "salinas_gt",
        ),
        shape=(512, 217, 204), dtype="int16", classes=SALINAS_CLASSES,
        rgb_bands=(43, 21, 11), wavelength_range_nm=(400.0, 2500.0), gsd_m=3.7,
    ),
    Scene(
        name="salinas_a", title="Salinas-A (corrected, 204 bands)", sensor="AVIRIS",
        cube=RemoteFile(
            "SalinasA_corrected.mat", f"{EHU}/d/df/SalinasA_corrected.mat",
            "d75684ed3ab71a1024cee0f9db9061f50a3523a92ff5edfbbb1eed976b9f1721",
            1539086, "salinasA_corrected",
        ),
        gt=RemoteFile(
            "SalinasA_gt.mat", f"{EHU}/a/aa/SalinasA_gt.mat",
            "17814c1d3296c0e29b27f320f2c4174d2a68adb87e376abe78f02923e2c2e454",
            587, "salinasA_gt",
        ),
        shape=(83, 86, 204), dtype="int16",
        classes={v: SALINAS_CLASSES[v] for v in (1, 10, 11, 12, 13, 14)},
        rgb_bands=(43, 21, 11), wavelength_range_nm=(400.0, 2500.0), gsd_m=3.7,
        notes="Ground-truth values are Salinas class ids (1, 10-14).",
    ),
    Scene(
        name="ksc", title="Kennedy Space Center", sensor="AVIRIS",
        cube=RemoteFile(
            "KSC.mat", "http://www.ehu.es/ccwintco/uploads/2/26/KSC.mat",
            "b1ad011cfdb65c853e4f9f6108ca4774467d87f90a5c23b74ff3a2984a3b4786",
            56824624, "KSC",
        ),
        gt=RemoteFile(
            "KSC_gt.mat", "http://www.ehu.es/ccwintco/uploads/a/a6/KSC_gt.mat",
            "a1d6ab9293691006bd4d9742d1a1e1c141b1aaa5fbc5fa128b33c1d09038510b",
            3240, "KSC_gt",
        ),
        shape=(512, 614, 176), dtype="uint16",
        classes={
            1: "Scrub", 2: "Willow swamp", 3: "Cabbage palm hammock",
            4: "Cabbage palm/oak hammock", 5: "Slash pine",
            6: "Oak/broadleaf hammock", 7: "Hardwood swamp", 8: "Graminoid marsh",
            9: "Spartina marsh", 10: "Cattail marsh", 11: "Salt marsh",
            12: "Mud flats", 13: "Water",
        },
        rgb_bands=(43, 21, 11), wavelength_range_nm=(400.0, 2500.0), gsd_m=18.0,
    ),
    Scene(
        name="botswana", title="Botswana (Okavango Delta)", sensor="Hyperion",
        cube=RemoteFile(
            "Botswana.mat", "http://www.ehu.es/ccwintco/uploads/7/72/Botswana.mat",
            "f1603903c844cdc2980550b0180688e8e1a72d4292595d1120e1dec2a80a91c7",
            78911133, "Botswana",
        ),
        gt=RemoteFile(
            "Botswana_gt.mat",
            "http://www.ehu.es/ccwintco/uploads/5/58/Botswana_gt.mat",
            "668394905e10e629c16584bfd02b0f533b96d6ba18a63274a94ff3a77126a887",
            4039, "Botswana_gt",
        ),
        shape=(1476, 256, 145), dtype="uint16",
        classes={
            1: "Water", 2: "Hippo grass", 3: "Floodplain grasses 1",
            4: "Floodplain grasses 2", 5: "Reeds", 6: "Riparian", 7: "Firescar",
            8: "Island interior", 9: "Acacia woodlands", 10: "Acacia shrublands",
            11: "Acacia grasslands", 12: "Short mopane", 13: "Mixed mopane",
            14: "Exposed soils",
        },
        rgb_bands=(75, 33, 15), wavelength_range_nm=(400.0, 2500.0), gsd_m=30.0,
    ),
)

class UnknownSceneError(KeyError):
    """A scene name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return self.args[0]


SCENES: Registry[Scene] = Registry("scene", UnknownSceneError, _SCENES)
get_scene = SCENES.find
