"""The photographs that the project's own Python dependencies install: the offline demo's data, no download."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from inpaint.data.sources.common import DatasetLayoutError, ImageRecord, split_name

log = logging.getLogger(__name__)

# Every photograph that the project's own dependencies install (no download, works offline), as
# (package, file inside the package's data folder). gradio comes with the `app` extra, which `make install`
# installs; without it those six are skipped with a warning. Synthetic graphics (colour wheel, chessboards, logos,
# silhouettes, tiny thumbnails, screenshots) are left out. Grayscale photos are converted to RGB when loaded.
BUNDLED_PHOTOS: tuple[tuple[str, str], ...] = (
    ("skimage", "astronaut.png"),
    ("skimage", "brick.png"),
    ("skimage", "camera.png"),
    ("skimage", "cell.png"),
    ("skimage", "chelsea.png"),
    ("skimage", "clock_motion.png"),
    ("skimage", "coffee.png"),
    ("skimage", "coins.png"),
    ("skimage", "grass.png"),
    ("skimage", "gravel.png"),
    ("skimage", "hubble_deep_field.jpg"),
    ("skimage", "ihc.png"),
    ("skimage", "moon.png"),
    ("skimage", "motorcycle_left.png"),
    ("skimage", "motorcycle_right.png"),
    ("skimage", "page.png"),
    ("skimage", "retina.jpg"),
    ("skimage", "rocket.jpg"),
    ("skimage", "text.png"),
    ("sklearn", "china.jpg"),
    ("sklearn", "flower.jpg"),
    ("matplotlib", "grace_hopper.jpg"),
    ("gradio", "media_assets/images/cheetah.jpg"),
    ("gradio", "media_assets/images/cheetah1.jpg"),
    ("gradio", "media_assets/images/groot.jpeg"),
    ("gradio", "media_assets/images/lion.jpg"),
    ("gradio", "media_assets/images/tower.jpg"),
    ("gradio", "test_data/cheetah2.jpg"),
)
# Held out from training for validation (every choice of the demo's recipe, options and checkpoint is made on them):
# two outdoor scenes, an indoor still life and a launch against the sky, chosen for variety before any result was
# seen.
SAMPLE_VAL_PHOTOS = ("sklearn/china.jpg", "sklearn/flower.jpg", "skimage/coffee.png", "skimage/rocket.jpg")
# Held out from training and from every choice, for the test numbers only: an animal close-up indoors, a tower against
# a clear sky, an animal on rock. None has a near-duplicate among the training photos (the cheetahs are other photos).
SAMPLE_TEST_PHOTOS = (
    "skimage/chelsea.png",
    "gradio/media_assets/images/tower.jpg",
    "gradio/media_assets/images/lion.jpg",
)


def _package_data_dir(package: str) -> Path | None:
    """Where ``package`` keeps its bundled photos, or None if it is not installed."""
    try:
        if package == "skimage":
            import skimage

            return Path(skimage.__file__).parent / "data"
        if package == "sklearn":
            import sklearn

            return Path(sklearn.__file__).parent / "datasets" / "images"
        if package == "matplotlib":
            import matplotlib

            return Path(matplotlib.get_data_path()) / "sample_data"
        if package == "gradio":  # located, not imported: importing gradio takes seconds
            spec = importlib.util.find_spec("gradio")
            return None if spec is None or spec.origin is None else Path(spec.origin).parent
    except ImportError:
        return None
    raise ValueError(f"unknown photo package {package!r}")


def bundled_photos() -> list[ImageRecord]:
    """The bundled photographs present in this installation, keyed ``<package>/<file>`` (e.g. ``sklearn/china.jpg``)."""
    records, missing = [], []
    for package, name in BUNDLED_PHOTOS:
        folder = _package_data_dir(package)
        if folder is not None and (folder / name).is_file():
            records.append(ImageRecord(f"{package}/{name}", str(folder / name)))
        else:
            missing.append(f"{package}/{name}")
    if missing:
        log.warning("bundled photos not found in this installation (skipped): %s", missing)
    return records


def _resolve_photo_keys(names: Sequence[str], known: Sequence[str], field: str) -> set[str]:
    """``names`` as full keys; a bare file name (``coffee.png``) is accepted when it names one photo."""
    out = set()
    for name in names:
        matches = [k for k in known if k == name or k.split("/", 1)[1] == name]
        if len(matches) != 1:
            raise ValueError(f"samples: {field} entry {name!r} is not among the bundled photos {list(known)}")
        out.add(matches[0])
    return out


def sample_records(
    split: str = "train",
    *,
    val_images: Sequence[str] = SAMPLE_VAL_PHOTOS,
    test_images: Sequence[str] = SAMPLE_TEST_PHOTOS,
) -> list[ImageRecord]:
    """The bundled photographs (:data:`BUNDLED_PHOTOS`): ``val_images`` for validation, ``test_images`` for test
    (the two must not overlap), the rest for training."""
    split = split_name(split)
    present = bundled_photos()
    known = [f"{p}/{n}" for p, n in BUNDLED_PHOTOS]
    held = {
        "val": _resolve_photo_keys(val_images, known, "val_images"),
        "test": _resolve_photo_keys(test_images, known, "test_images"),
    }
    if held["val"] & held["test"]:
        raise ValueError(f"samples: {sorted(held['val'] & held['test'])} in both val_images and test_images")
    keys = held[split] if split != "train" else set(known) - held["val"] - held["test"]
    chosen = [r for r in present if r.key in keys]
    if not chosen:
        raise DatasetLayoutError(
            f"samples: no bundled photos for split {split!r} (found {[r.key for r in present]}, "
            f"val_images {sorted(held['val'])}, test_images {sorted(held['test'])}); are scikit-image, scikit-learn "
            "and matplotlib installed?"
        )
    return chosen


@dataclass(frozen=True)
class Samples:
    """The samples source of a data config (``conf/data/samples.yaml``): :func:`sample_records` of a split."""

    root: str | None = None  # not used: the photos live inside the installed packages
    val_images: Sequence[str] = SAMPLE_VAL_PHOTOS
    test_images: Sequence[str] = SAMPLE_TEST_PHOTOS

    def records(self, split: str) -> list[ImageRecord]:
        return sample_records(split, val_images=tuple(self.val_images), test_images=tuple(self.test_images))
