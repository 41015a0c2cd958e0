"""Image sources in their real layouts (file lists included), and clear errors for wrong roots or layouts."""

from __future__ import annotations

import pytest

from inpaint.data.sources import (
    DatasetLayoutError,
    build_records,
    celeba_hq_records,
    celeba_records,
    folder_records,
    holdout_split,
    places2_records,
    sample_records,
)


def test_places2_standard_layout(tmp_path, fake_data):
    fake_data.places2(tmp_path, n_train=4, n_val=3)
    train = places2_records(tmp_path, "train")
    assert [r.key for r in train][:2] == ["a/airfield/00000001.jpg", "b/bakery/shop/00000002.jpg"]
    assert all(r.path.startswith(str(tmp_path / "data_256")) for r in train)
    assert len(places2_records(tmp_path, "val")) == 3 and len(places2_records(tmp_path, "test")) == 3


def test_places2_challenge_large_and_torchvision_names(tmp_path, fake_data):
    fake_data.places2(tmp_path, n_train=2, n_val=1, large=True)
    (tmp_path / "data_large").rename(tmp_path / "data_large_challenge")
    (tmp_path / "places365_train_standard.txt").rename(tmp_path / "places365_train_challenge.txt")
    recs = places2_records(tmp_path, "train", variant="challenge", resolution="large")
    assert len(recs) == 2 and "data_large_challenge" in recs[0].path
    assert len(places2_records(tmp_path, "val", resolution="large")) == 1
    with pytest.raises(DatasetLayoutError, match="places365_train_standard.txt"):
        places2_records(tmp_path, "train")  # standard list absent


def test_places2_lists_in_devkit_folder(tmp_path, fake_data):
    fake_data.places2(tmp_path, n_train=2, n_val=1)
    (tmp_path / "filelist_places365-standard").mkdir()
    (tmp_path / "places365_val.txt").rename(tmp_path / "filelist_places365-standard" / "places365_val.txt")
    assert len(places2_records(tmp_path, "val")) == 1


def test_places2_errors_name_the_expected_files(tmp_path, fake_data):
    with pytest.raises(DatasetLayoutError, match=r"does not exist.*places365_train_standard\.txt"):
        places2_records(tmp_path / "missing", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"places365_val\.txt.*val_256"):
        places2_records(tmp_path / "empty", "val")
    fake_data.places2(tmp_path / "p", n_train=2, n_val=1)
    for f in (tmp_path / "p" / "val_256").iterdir():
        f.unlink()
    with pytest.raises(DatasetLayoutError, match="listed images are missing"):
        places2_records(tmp_path / "p", "val")
    with pytest.raises(DatasetLayoutError, match="no root given"):
        places2_records("???", "train")


def test_celeba_partitions_txt_and_csv(tmp_path, fake_data):
    fake_data.celeba(tmp_path, partitions=(0, 0, 0, 1, 1, 2))
    assert [len(celeba_records(tmp_path, s)) for s in ("train", "val", "test")] == [3, 2, 1]
    assert celeba_records(tmp_path, "val")[0].key == "000004.jpg"
    lines = (tmp_path / "list_eval_partition.txt").read_text().split()
    (tmp_path / "list_eval_partition.txt").unlink()
    rows = ["image_id,partition"] + [f"{lines[i]},{lines[i + 1]}" for i in range(0, len(lines), 2)]
    (tmp_path / "list_eval_partition.csv").write_text("\n".join(rows) + "\n")
    assert len(celeba_records(tmp_path, "train")) == 3
    (tmp_path / "list_eval_partition.csv").unlink()
    with pytest.raises(DatasetLayoutError, match="list_eval_partition.txt"):
        celeba_records(tmp_path, "train")


def test_celeba_hq_lists_with_names_and_bare_stems(tmp_path, fake_data):
    fake_data.celeba_hq(tmp_path / "a", n=6, n_val=2)
    assert len(celeba_hq_records(tmp_path / "a", "train")) == 4
    fake_data.celeba_hq(tmp_path / "b", n=5, n_val=1, bare_names=True)
    val = celeba_hq_records(tmp_path / "b", "val")
    assert len(val) == 1 and val[0].path.endswith("data256x256/4.jpg")
    with pytest.raises(DatasetLayoutError, match="test.txt"):
        celeba_hq_records(tmp_path / "a", "test")


def test_folder_recursive_sorted_and_file_list(tmp_path, fake_data):
    for name in ("b/2.png", "a/1.jpg", "c.JPEG", "a/deeper/3.webp"):
        fake_data.jpeg(tmp_path / name, 8, 8) if not name.endswith((".png", ".webp")) else _write_png(
            tmp_path / name
        )
    (tmp_path / "readme.txt").write_text("x")
    keys = [r.key for r in folder_records(tmp_path)]
    assert keys == ["a/1.jpg", "a/deeper/3.webp", "b/2.png", "c.JPEG"]
    (tmp_path / "list.txt").write_text("b/2.png\nc.JPEG\n")
    assert [r.key for r in folder_records(tmp_path, file_list="list.txt")] == ["b/2.png", "c.JPEG"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="no images found"):
        folder_records(tmp_path / "empty")


def _write_png(path):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)


def test_holdout_split_is_disjoint_and_stable(tmp_path):
    for i in range(60):
        _write_png(tmp_path / f"{i:03d}.png")
    recs = folder_records(tmp_path)
    train, val = holdout_split(recs, "train", 0.2), holdout_split(recs, "val", 0.2)
    assert {r.key for r in train}.isdisjoint({r.key for r in val}) and len(train) + len(val) == 60
    assert 3 <= len(val) <= 25
    fewer = holdout_split(recs[:-10], "val", 0.2)  # removing files does not move the others between splits
    assert {r.key for r in fewer} <= {r.key for r in val}


def test_samples_are_the_bundled_photos_with_held_out_val_and_test_sets():
    from inpaint.data.sources import BUNDLED_PHOTOS

    train, val, test = sample_records("train"), sample_records("val"), sample_records("test")
    # scikit-image, scikit-learn, matplotlib and gradio (the app extra, which `make install` installs) photos
    assert len(train) + len(val) + len(test) == len(BUNDLED_PHOTOS) == 28
    assert {r.key for r in test} == {
        "skimage/chelsea.png",
        "gradio/media_assets/images/tower.jpg",
        "gradio/media_assets/images/lion.jpg",
    }
    assert {r.key for r in test}.isdisjoint({r.key for r in train} | {r.key for r in val})
    assert {r.key for r in val} == {
        "sklearn/china.jpg",
        "sklearn/flower.jpg",
        "skimage/coffee.png",
        "skimage/rocket.jpg",
    }
    assert {r.key for r in train}.isdisjoint({r.key for r in val})
    assert {k.split("/")[0] for k in (r.key for r in train)} == {"skimage", "matplotlib", "gradio"}
    assert [r.key for r in sample_records("val", val_images=["coffee.png"])] == ["skimage/coffee.png"]
    with pytest.raises(ValueError, match="not among the bundled photos"):
        sample_records("val", val_images=["lena.png"])
    with pytest.raises(ValueError, match="in both val_images and test_images"):
        sample_records("test", val_images=["coffee.png"], test_images=["coffee.png"])


def test_photos_of_a_package_that_is_not_installed_are_skipped_loudly(monkeypatch, caplog):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a)
    )
    with caplog.at_level("WARNING", logger="inpaint.data.sources.samples"):
        train = sample_records("train")
    assert len(train) == 17 and not any(r.key.startswith("gradio/") for r in train)
    assert "gradio/media_assets/images/tower.jpg" in caplog.text and "skipped" in caplog.text


def test_holdout_slice_of_train_is_disjoint_and_excluded_from_train(tmp_path, fake_data):
    """Places2 / CelebA-HQ select checkpoints on a slice of train, so their official val set stays a clean test."""
    root = fake_data.places2(tmp_path, n_train=40, n_val=3)
    cfg = {"source": "places2", "root": str(root), "holdout_fraction": 0.25}
    train, holdout, test = (build_records(cfg, s) for s in ("train", "holdout", "val"))
    assert holdout and {r.key for r in train}.isdisjoint({r.key for r in holdout})
    assert len(train) + len(holdout) == 40 and len(test) == 3
    assert build_records(cfg, "holdout") == holdout  # fixed
    with pytest.raises(ValueError, match="holdout_fraction"):
        build_records({"source": "places2", "root": str(root)}, "holdout")


def test_folder_val_and_test_slices_are_disjoint(tmp_path):
    for i in range(60):
        (tmp_path / f"{i:03d}.png").write_bytes(b"x")
    cfg = {"source": "folder", "root": str(tmp_path), "val_fraction": 0.2, "test_fraction": 0.2}
    train, val, test = (build_records(cfg, s) for s in ("train", "val", "test"))
    keys = [{r.key for r in x} for x in (train, val, test)]
    assert keys[0].isdisjoint(keys[1]) and keys[0].isdisjoint(keys[2]) and keys[1].isdisjoint(keys[2])
    assert sum(map(len, keys)) == 60 and val and test


def test_build_records_dispatch(tmp_path, fake_data):
    fake_data.celeba(tmp_path)
    assert len(build_records({"source": "celeba", "root": str(tmp_path)}, "test")) == 1
    with pytest.raises(ValueError, match="unknown data source"):
        build_records({"source": "imagenet"}, "train")
