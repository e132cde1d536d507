import io
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from factories import class_images, write_kaggle_zip
from ganpso.config import build_config
from ganpso.data import cache as cache_module
from ganpso.data import decode_image, load_dataset
from ganpso.data.config import DataConfig
from ganpso.emotions import EMOTIONS, SPLITS
from ganpso.errors import ConfigError, DataError


def load(source: Path, **options) -> object:
    return load_dataset(DataConfig(source=str(source), cache_dir=None, **options))


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG" if mode == "CMYK" else "PNG")
    return buffer.getvalue()


def write_csv(
    path: Path, rows: list[tuple[int, np.ndarray, str]], header: str = "emotion,pixels,Usage"
):
    lines = [header] + [
        f'{label},"{" ".join(map(str, face.ravel()))}",{usage}' for label, face, usage in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def extract(zip_path: Path, folder: Path) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
    return folder


def test_kaggle_zip_gives_official_splits_and_labels(tmp_path) -> None:
    dataset = load(write_kaggle_zip(tmp_path / "fer.zip", per_class=3))
    for split in SPLITS:
        assert (
            dataset[split].images.shape == (21, 48, 48) and dataset[split].images.dtype == np.uint8
        )
        assert dataset[split].class_counts().tolist() == [3] * 7
    # the factory brightens rows 6k..6k+5 for class k: labels must follow the folder names
    training = dataset["Training"]
    for image, label in zip(training.images, training.labels, strict=True):
        assert image[6 * label : 6 * label + 6].mean() == 230


def test_kaggle_folder_equals_zip(tmp_path) -> None:
    archive = write_kaggle_zip(tmp_path / "fer.zip", per_class=2)
    from_zip, from_folder = load(archive), load(extract(archive, tmp_path / "fer"))
    for split in SPLITS:
        assert np.array_equal(from_zip[split].images, from_folder[split].images)
        assert np.array_equal(from_zip[split].labels, from_folder[split].labels)


def test_csv_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    rows = [(k, class_images(k, 1, rng)[0], split) for split in SPLITS for k in range(7)]
    dataset = load(write_csv(tmp_path / "fer2013.csv", rows))
    for split in SPLITS:
        expected = [face for _, face, usage in rows if usage == split]
        assert np.array_equal(dataset[split].images, np.stack(expected))
        assert dataset[split].labels.tolist() == list(range(7))


def test_csv_without_usage_gets_a_seeded_split(tmp_path) -> None:
    rng = np.random.default_rng(0)
    rows = [(k, face, "") for k in range(7) for face in class_images(k, 10, rng)]
    lines = ["emotion,pixels"] + [f'{k},"{" ".join(map(str, f.ravel()))}"' for k, f, _ in rows]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    first, second = load(tmp_path / "train.csv"), load(tmp_path / "train.csv")
    assert all(len(first[s]) > 0 for s in SPLITS) and sum(len(first[s]) for s in SPLITS) == 70
    assert np.array_equal(first["PublicTest"].images, second["PublicTest"].images)


def make_class_folders(root: Path) -> Path:
    rng = np.random.default_rng(1)
    for folder in ("Anger", "happiness", "sadness", "surprise", "contempt"):
        (root / folder).mkdir(parents=True)
        for i in range(5):
            face = rng.integers(0, 255, (100, 80), dtype=np.uint8)
            (root / folder / f"{i}.png").write_bytes(png_bytes(face, ["RGB", "RGBA", "L"][i % 3]))
    return root


def test_class_folders_map_names_convert_images_and_split(tmp_path) -> None:
    root = make_class_folders(tmp_path / "ck")
    with pytest.warns(UserWarning, match="contempt"):
        dataset = load(root, split_seed=3)
    total = sum(len(dataset[s]) for s in SPLITS)
    assert total == 20  # contempt dropped
    assert dataset["Training"].images.shape[1:] == (48, 48)
    present = {EMOTIONS[k] for s in SPLITS for k in dataset[s].labels}
    assert present == {"angry", "happy", "sad", "surprise"}
    for split in SPLITS:  # every class of >= 3 images reaches every split
        assert set(dataset[split].labels.tolist()) == {0, 3, 4, 5}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = load(root, split_seed=3)
    assert np.array_equal(again["PrivateTest"].images, dataset["PrivateTest"].images)


def test_unknown_class_folder_can_be_refused(tmp_path) -> None:
    root = make_class_folders(tmp_path / "ck")
    with pytest.raises(DataError, match=r"\['contempt'\] are not among the model's classes"):
        load(root, unknown_classes="error")


def test_class_map_and_ignore_name_foreign_folders(tmp_path) -> None:
    root = make_class_folders(tmp_path / "ck")
    mapped = load(root, unknown_classes="error", class_map={"Contempt": "disgust"})
    with pytest.warns(UserWarning, match="contempt"):
        plain = load(root)
    assert mapped.whole().class_counts()[1] > plain.whole().class_counts()[1]  # contempt added
    ignored = load(root, unknown_classes="error", ignore_classes=["contempt"])
    assert (ignored.whole().class_counts() == plain.whole().class_counts()).all()
    assert not plain.official_split and len(plain.whole()) == sum(map(len, plain.splits.values()))
    with pytest.raises(ConfigError, match=r"class_map: \['scorn'\] are not emotions"):
        build_config(DataConfig, {"class_map": {"contempt": "scorn"}}, "data")


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "CMYK", "I;16"])
def test_decode_image_any_mode_and_size(mode) -> None:
    array = np.random.default_rng(0).integers(0, 255, (120, 90), dtype=np.uint8)
    image = (
        Image.fromarray(array).convert(mode)
        if mode != "I;16"
        else Image.fromarray(array.astype(np.uint16) * 200)
    )
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG" if mode == "CMYK" else "PNG" if mode != "I;16" else "TIFF")
    face = decode_image(buffer.getvalue(), "x")
    assert face.shape == (48, 48) and face.dtype == np.uint8


def test_decode_keeps_48x48_grayscale_untouched() -> None:
    array = np.random.default_rng(0).integers(0, 255, (48, 48), dtype=np.uint8)
    assert np.array_equal(decode_image(png_bytes(array), "x.png"), array)


def zip_with(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


GOOD = png_bytes(np.zeros((48, 48), np.uint8))


@pytest.mark.parametrize(
    ("member", "data", "message"),
    [
        ("train/angry/Training_1.jpg", b"", "empty file (0 bytes)"),
        ("train/angry/Training_1.jpg", b"\xff\xd8\xff\xe0 garbage", "not a readable image"),
        ("train/angry/Training_1.jpg", GOOD[: len(GOOD) // 2], "not a readable image"),
        ("train/angry/Training_1.jpg", b"just some text", "not a readable image"),
    ],
)
def test_bad_images_name_the_member(tmp_path, member, data, message) -> None:
    archive = zip_with(tmp_path / "fer.zip", {"train/happy/Training_0.jpg": GOOD, member: data})
    with pytest.raises(DataError, match=re.escape(message)) as info:
        load(archive)
    assert f"fer.zip!{member}" in str(info.value) and "\n" not in str(info.value)


def test_skip_bad_images_counts_them(tmp_path) -> None:
    archive = zip_with(
        tmp_path / "fer.zip",
        {
            "train/happy/Training_0.jpg": GOOD,
            "train/angry/Training_1.jpg": b"",
            "test/sad/PublicTest_2.jpg": b"x",
        },
    )
    with pytest.warns(UserWarning, match="skipped 2 bad image"):
        dataset = load(archive, skip_bad_images=True)
    assert len(dataset.skipped) == 2 and len(dataset["Training"]) == 1


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        (
            "emotion,image,Usage",
            None,
            "expected columns emotion,pixels,Usage, found emotion,image,Usage",
        ),
        (
            None,
            '0,"' + " ".join(["1"] * 2303) + '",Training',
            "line 2: expected 2304 pixel values, got 2303",
        ),
        (None, '9,"' + " ".join(["1"] * 2304) + '",Training', "line 2: unknown emotion label 9"),
        (
            None,
            '0,"' + " ".join(["1"] * 2304) + '",Validation',
            "line 2: unknown Usage 'Validation'",
        ),
        (
            None,
            '0,"' + " ".join(["300"] * 2304) + '",Training',
            "line 2: pixel values must lie in 0..255",
        ),
        (
            None,
            '0,"' + " ".join(["1"] * 2303 + ["x7"]) + '",Training',
            "line 2: pixel value 'x7' is not an integer",
        ),
    ],
)
def test_bad_csv_names_file_and_line(tmp_path, header, row, message) -> None:
    path = tmp_path / "fer2013.csv"
    path.write_text((header or "emotion,pixels,Usage") + "\n" + (row or "") + "\n")
    with pytest.raises(DataError, match=message) as info:
        load(path)
    assert str(path) in str(info.value)


def test_empty_class_folder_is_refused(tmp_path) -> None:
    root = make_class_folders(tmp_path / "ck")
    (root / "fear").mkdir()
    with pytest.raises(DataError, match=r"ck/fear: empty class folder"):
        load(root)
    kaggle = extract(write_kaggle_zip(tmp_path / "fer.zip", per_class=1), tmp_path / "fer")
    for image in (kaggle / "train" / "disgust").iterdir():
        image.unlink()
    with pytest.raises(DataError, match=r"train/disgust: empty class folder"):
        load(kaggle)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.zip", "no such file or directory"),
        (lambda p: zip_with(p / "notes.zip", {"readme.txt": b"hello"}), "no class sub-folders"),
        (
            lambda p: (p / "fake.zip").write_bytes(b"not a zip") and p / "fake.zip",
            "not a readable zip",
        ),
        (
            lambda p: (p / "photo.txt").write_text("x") and p / "photo.txt",
            "not a FER2013 zip/folder/CSV",
        ),
    ],
)
def test_sources_that_are_not_datasets(tmp_path, make, message) -> None:
    source = make(tmp_path)
    with pytest.raises(DataError, match=message) as info:
        load(source)
    assert str(source) in str(info.value)


def test_cache_serves_second_load_and_notices_changes(tmp_path, monkeypatch) -> None:
    archive = write_kaggle_zip(tmp_path / "fer.zip", per_class=2)
    config = DataConfig(source=str(archive), cache_dir=str(tmp_path / "cache"))
    first = load_dataset(config)
    assert len(list((tmp_path / "cache").glob("dataset-*.npz"))) == 1

    import ganpso.data.loading as loading

    def no_decoding(*_args, **_kwargs):
        raise AssertionError("decoded again although cached")

    monkeypatch.setattr(loading, "read_source", no_decoding)
    second = load_dataset(config)
    assert np.array_equal(first["Training"].images, second["Training"].images)

    monkeypatch.undo()
    write_kaggle_zip(archive, per_class=3, seed=5)  # the source changes: key changes
    assert len(load_dataset(config)["Training"]) == 21


def test_corrupt_cache_is_rebuilt(tmp_path) -> None:
    archive = write_kaggle_zip(tmp_path / "fer.zip", per_class=1)
    config = DataConfig(source=str(archive), cache_dir=str(tmp_path / "cache"))
    load_dataset(config)
    cached = cache_module.cache_path(config.cache_dir, cache_module.cache_key(archive, config))
    cached.write_bytes(b"broken")
    assert len(load_dataset(config)["Training"]) == 7
    assert cache_module.read_cache(cached) is not None


def test_limit_per_class(tmp_path) -> None:
    dataset = load(write_kaggle_zip(tmp_path / "fer.zip", per_class=4), limit_per_class=2)
    assert dataset["PublicTest"].class_counts().tolist() == [2] * 7
    assert "disgust" in dataset.summary()
