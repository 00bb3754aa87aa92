"""Concepts against independent references: scikit-learn's NMF, scipy's exact NNLS, the classifier's own
head, a real video of a moving object, and renderers side by side; fixed concepts fitted on a folder."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy.optimize import nnls
from sklearn.decomposition import NMF

from livevis.models import ViewOptions, Visualizer
from livevis.models.concepts import check_layer, factorise, fit_concepts, load_concepts, min_shifted, project
from livevis.models.concepts.dataset import concepts_dir
from livevis.models.concepts.head import classifier_head, concept_classes, feeds_head
from livevis.models.concepts.live import ConceptTracker, colour_order
from livevis.models.concepts.nmf import relative_error
from livevis.models.dream.objectives import channel, direction
from livevis.models.errors import OptionError
from livevis.models.render.base import CONCEPT_PALETTE
from livevis.models.render.opencv_renderer import OpenCVRenderer
from livevis.models.render.torch_renderer import TorchRenderer
from tests.conftest import write_video


def sklearn_error(V: np.ndarray, k: int) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its own convergence warning at max_iter
        model = NMF(k, max_iter=1000, tol=1e-6)
        U = model.fit_transform(V)
    return relative_error(V, U, model.components_)


@pytest.fixture(scope="module")
def lite0_maps(lite0, photos) -> dict[str, np.ndarray]:
    """Trained EfficientNet-Lite0's maps of real photos at three depths (signed and rectified layers)."""
    out = {}
    for name in ("chelsea", "coffee"):
        activations = lite0.run(photos[name], ["blocks.2", "blocks.4", "bn2"]).activations
        out.update({f"{name}:{path}": a.numpy() for path, a in activations.items()})
    return out


@pytest.mark.parametrize("key", ["chelsea:blocks.2", "chelsea:blocks.4", "coffee:blocks.4", "coffee:bn2"])
@pytest.mark.parametrize("k", [2, 5, 8])
def test_factorisation_rebuilds_the_map_as_well_as_scikit_learns_nmf(lite0_maps, key, k):
    activation = lite0_maps[key]
    V, offset = min_shifted(activation)
    np.testing.assert_allclose(V.min(1), 0.0, atol=1e-6)
    np.testing.assert_allclose(offset, activation.reshape(activation.shape[0], -1).min(1))
    found = factorise(V, k)
    assert found.channels.shape == (k, V.shape[0]) and found.maps.shape == (k, V.shape[1])
    assert found.channels.min() >= 0 and found.maps.min() >= 0
    np.testing.assert_allclose(found.maps.max(1), 1.0, rtol=1e-5)  # each concept's map peaks at 1
    ours, reference = relative_error(V, found.channels.T, found.maps), sklearn_error(V, k)
    assert ours <= reference * 1.04, (ours, reference)


def test_torch_and_numpy_factorise_alike(lite0_maps):
    V, _ = min_shifted(lite0_maps["chelsea:blocks.4"])
    on_host = factorise(V, 5)
    on_torch = factorise(torch.from_numpy(V), 5)
    assert isinstance(on_torch.maps, torch.Tensor)
    np.testing.assert_allclose(on_torch.maps.numpy(), on_host.maps, atol=2e-3)
    scale = on_host.channels.max()
    np.testing.assert_allclose(on_torch.channels.numpy(), on_host.channels, rtol=2e-3, atol=2e-3 * scale)


def test_projection_on_fixed_concepts_is_the_exact_non_negative_least_squares(lite0_maps):
    V, _ = min_shifted(lite0_maps["chelsea:blocks.4"])
    W = factorise(V, 5).channels.T
    other, _ = min_shifted(lite0_maps["coffee:blocks.4"])  # concepts of one photo placed on another
    H = project(other, W)
    exact = np.stack([nnls(W.astype(np.float64), column.astype(np.float64))[0] for column in other.T], axis=1)
    assert H.min() >= 0
    assert relative_error(other, W, H) <= relative_error(other, W, exact) * 1.001
    assert np.abs(H - exact).max() <= 0.02 * exact.max()


@pytest.mark.parametrize("layer", ["blocks.4", "bn2"])
def test_warm_starts_follow_a_long_pan_as_well_as_a_fresh_factorisation_of_each_frame(lite0, pan_video, layer):
    """Frame after frame, the scene changing entirely: each warm-started factorisation (a few updates) rebuilds
    its frame about as well as scikit-learn's NMF run to convergence on that frame alone."""
    capture = cv2.VideoCapture(str(pan_video))
    tracker, ratios = ConceptTracker(), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        V, _ = min_shifted(lite0.run(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), [layer]).activations[layer].numpy())
        found = tracker.update(V, 5, layer)
        ratios.append(relative_error(V, found.factors.channels.T, found.factors.maps) / sklearn_error(V, 5))
    capture.release()
    assert len(ratios) == 24 and not tracker.update(V, 5, layer).cold
    assert np.median(ratios) <= 1.03 and max(ratios) <= 1.10, np.round(ratios, 3)


def test_colour_order_recovers_a_permutation_of_the_concepts():
    rng = np.random.default_rng(0)
    before = rng.random((6, 40)) ** 4  # distinct sparse-ish channel vectors
    permutation = np.array([3, 0, 5, 1, 4, 2])
    after = before[permutation] * rng.uniform(0.5, 2.0, (6, 1)) + 0.01 * rng.random((6, 40))
    assert colour_order(before, after).tolist() == permutation.tolist()
    assert colour_order(before[:4], after[:6]).tolist().count(-1) == 2, "two new concepts continue none"
    assert colour_order(None, after).tolist() == [-1] * 6


def test_a_lost_or_new_concept_takes_a_colour_nobody_has():
    tracker = ConceptTracker()
    colours = tracker._colours(np.array([2, -1, 0]), np.array([7, 3, 9]), 3)
    assert colours.tolist()[0] == 9 and colours.tolist()[2] == 7
    assert colours[1] not in (7, 9) and 0 <= colours[1] < len(CONCEPT_PALETTE)


def moving_cat_frames(photos, count: int = 12) -> tuple[list[np.ndarray], list[tuple[int, int, int, int]]]:
    """A real photo's cat head moving across another real photo (down and to the right), 640 x 480."""
    background = cv2.resize(photos["china"], (640, 480))
    cat = photos["chelsea"][30:250, 100:320]
    frames, boxes = [], []
    for i in range(count):
        x, y = 100 + 20 * i, 60 + 10 * i
        frame = background.copy()
        frame[y : y + 220, x : x + 220] = cat
        frames.append(frame)
        boxes.append((x, y, 220, 220))
    return frames, boxes


def read_video(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def cells_inside(box, crop, shape) -> np.ndarray:
    x, y, w, h = box
    inside = np.zeros(shape, bool)
    c0, c1 = round((x - crop.x) / crop.w * shape[1]), round((x + w - crop.x) / crop.w * shape[1])
    r0, r1 = round((y - crop.y) / crop.h * shape[0]), round((y + h - crop.y) / crop.h * shape[0])
    inside[r0:r1, c0:c1] = True
    return inside


@pytest.mark.parametrize("k", [4, 5])
def test_a_moving_object_keeps_its_concept_and_its_colour_through_a_real_video(lite0, photos, tmp_path, k):
    frames, boxes = moving_cat_frames(photos)
    decoded = read_video(write_video(tmp_path / "cat.mp4", frames))
    assert len(decoded) == len(frames)
    visualizer = Visualizer(lite0, ViewOptions(layer="blocks.4", views=("concepts",), concept_count=k))
    colours, places = [], []
    for frame, box in zip(decoded, boxes, strict=True):
        views = visualizer.process(frame)
        maps, palette = views.values["concept_maps"], views.values["concept_colours"]
        inside = cells_inside(box, views.crop, maps.shape[1:])
        covered = np.bincount(maps[:, inside].argmax(0), minlength=k) / inside.sum()  # the cat's cells, by concept
        main = int(covered.argmax())
        assert covered[main] >= 0.5, "one concept covers most of the cat"
        outside = (maps[:, ~inside].argmax(0) == main).mean()
        assert covered[main] - outside >= 0.15, "and it is the cat's more than the rest's"
        colours.append(int(palette[main]))
        places.append(np.argwhere(inside).mean(0))
    assert len(set(colours)) == 1, colours
    assert np.linalg.norm(places[-1] - places[0]) >= 4, "the cat crossed several map cells"


def test_each_concept_keeps_its_colour_when_a_factorisation_lists_them_in_another_order(lite0_maps, monkeypatch):
    from livevis.models.concepts import live

    V, _ = min_shifted(lite0_maps["chelsea:blocks.4"])
    tracker = ConceptTracker()
    first = tracker.update(V, 4, "blocks.4", warm=False)
    order = np.array([2, 0, 3, 1])
    shuffled = live.Factors(first.factors.channels[order], first.factors.maps[order])
    monkeypatch.setattr(live, "factorise", lambda *_args, **_kw: shuffled)
    second = tracker.update(V, 4, "blocks.4", warm=False)
    assert second.cold and second.colours.tolist() == first.colours[order].tolist()


def test_a_frame_drawn_again_is_factorised_once(lite0, photos):
    visualizer = Visualizer(lite0, ViewOptions(layer="blocks.4", views=("concepts", "grid"), concept_count=4))
    first = visualizer.process(photos["coffee"], frame_key=1)
    again = visualizer.process(photos["coffee"], visualizer.options.with_(channel=7), frame_key=1)
    assert again.reused_forward
    assert np.shares_memory(again.values["concept_maps"], first.values["concept_maps"]), "the same factors"
    assert again.values["concepts_summary"].milliseconds == first.values["concepts_summary"].milliseconds
    other = visualizer.process(photos["coffee"], visualizer.options.with_(concept_count=3), frame_key=1)
    assert other.values["concept_maps"].shape[0] == 3, "another number of concepts is factorised anew"


def test_the_head_names_a_concept_only_where_the_layer_feeds_it(lite0, resnet18_engine, alexnet_engine, photos):
    frame = photos["chelsea"]
    for engine, path, fed in (
        (lite0, "bn2", True),
        (lite0, "blocks.4", False),
        (resnet18_engine, "layer4", True),
        (resnet18_engine, "layer3", False),
        (alexnet_engine, "features.12", False),
    ):
        result = engine.run(frame, [path])
        assert feeds_head(result.activations[path], result.logits[0], classifier_head(engine)) == fed, path
    result = lite0.run(frame, ["bn2"])
    V, offset = min_shifted(result.activations["bn2"])
    found = factorise(V, 5)
    indices, probabilities = concept_classes(classifier_head(lite0), found.channels, offset)
    # independently: each concept's vector spread over a whole map, through timm's own pooling and classifier
    maps = (found.channels + offset[None]).reshape(5, -1, 1, 1).expand(-1, -1, 7, 7)
    with torch.no_grad():
        reference = lite0.model.forward_head(maps).softmax(1).topk(3)
    np.testing.assert_array_equal(indices, reference.indices.numpy())
    np.testing.assert_allclose(probabilities, reference.values.numpy(), rtol=1e-4)
    cats = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}
    named = [lite0.categories[i] for i in indices[:, 0]]
    assert sum(label in cats for label in named) >= 3, named


def test_the_concepts_view_labels_concepts_as_the_layer_allows(lite0, photos):
    for layer, classes in (("bn2", True), ("blocks.4", False)):
        views = Visualizer(lite0, ViewOptions(layer=layer, views=("concepts",))).process(photos["chelsea"])
        summary = views.values["concepts_summary"]
        assert len(summary.concepts) == 5 and not summary.error
        assert all(bool(c.classes) == classes for c in summary.concepts)
        assert abs(sum(c.share for c in summary.concepts) - 1.0) < 1e-6
        if not classes:
            assert "only bn2 feeds the classifier directly" in summary.note
        concept = summary.concepts[0]
        assert concept.tiles.shape == (4, *views.layer.shape[1:], 3)
        vector = views.values["concept_channels"][concept.index]
        assert [c for c, _ in concept.channels] == np.argsort(-vector)[:4].tolist()


def test_bad_concept_requests_say_what_to_do(alexnet_engine, lite0):
    for k in (1, 13, 2.5, True):
        with pytest.raises(OptionError, match="2 to 12"):
            ViewOptions(views=("concepts",), concept_count=k)
    with pytest.raises(OptionError, match="spatial maps; fc8 outputs 1000 values"):
        check_layer(alexnet_engine.layer("fc8"), 5)
    with pytest.raises(OptionError, match="1 x 1 map"):
        check_layer(lite0.layer("global_pool.pool"), 5)
    views = Visualizer(alexnet_engine, ViewOptions(layer="fc7", views=("grid", "concepts"))).process(
        np.zeros((240, 320, 3), np.uint8)
    )
    assert "spatial maps" in views.values["concepts_summary"].error
    assert "concepts" not in views.images and views.images["grid"].size, "the other views go on"


@pytest.mark.parametrize("renderer", [TorchRenderer(), OpenCVRenderer()], ids=["torch", "opencv"])
def test_segmentation_colours_each_cell_by_its_strongest_concept(renderer):
    frame = np.full((100, 140, 3), 100, np.uint8)
    maps = np.zeros((3, 10, 10), np.float32)
    maps[0, :, :5] = 1.0  # left half: concept 0 fully on
    maps[1, :, 5:] = 0.5  # right half: concept 1 at half strength
    colours = CONCEPT_PALETTE[[4, 2, 7]].astype(np.float32)
    as_kind = (lambda a: torch.from_numpy(a)) if isinstance(renderer, TorchRenderer) else (lambda a: a)
    out = renderer.render_concepts(as_kind(frame), as_kind(maps), as_kind(colours), (20, 0, 100, 100), opacity=1.0)
    out = np.asarray(out)
    assert out[:, :20].tolist() == frame[:, :20].tolist(), "outside the crop the frame is untouched"
    assert np.abs(out[50, 30].astype(int) - CONCEPT_PALETTE[4]).max() <= 1, "full strength: the concept's colour"
    half = 0.5 * CONCEPT_PALETTE[2] + 0.5 * 100
    assert np.abs(out[50, 100].astype(int) - half).max() <= 1, "half strength: half the colour over the frame"


def test_both_renderers_draw_the_same_segmentation(lite0_maps):
    V, _ = min_shifted(lite0_maps["coffee:blocks.4"])
    maps = factorise(V, 5).maps.reshape(5, 14, 14)
    frame = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    colours = CONCEPT_PALETTE[:5].astype(np.float32)
    on_cpu = OpenCVRenderer().render_concepts(frame, maps, colours, (50, 0, 300, 300))
    on_torch = (
        TorchRenderer()
        .render_concepts(torch.from_numpy(frame), torch.from_numpy(maps), torch.from_numpy(colours), (50, 0, 300, 300))
        .numpy()
    )
    assert np.abs(on_cpu.astype(int) - on_torch).max() <= 2


def test_a_direction_is_the_weighted_sum_of_its_channels():
    rng = torch.Generator().manual_seed(0)
    acts = {"layer": torch.randn(2, 4, 5, 5, generator=rng)}
    weights = [0.5, 0.0, 2.0, 1.25]
    composed = sum(w * channel("layer", c) for c, w in enumerate(weights))
    torch.testing.assert_close(direction("layer", weights)(acts), composed(acts))


# ---------------------------------------------------------------------------------------------
# Concepts fitted on a folder


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, photos) -> Path:
    """Real photos and crops of them."""
    folder = tmp_path_factory.mktemp("photos")
    for name, image in photos.items():
        cv2.imwrite(str(folder / f"{name}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        h, w = image.shape[:2]
        cv2.imwrite(str(folder / f"{name}_crop.png"), cv2.cvtColor(image[: h // 2 + 60, w // 3 :], cv2.COLOR_RGB2BGR))
    return folder


def test_folder_concepts_are_fitted_once_ranked_as_a_brute_force_does_and_reused(lite0, photo_folder, cache):
    found = fit_concepts(lite0, photo_folder, "blocks.4", 4)
    assert found.channels.shape == (4, 112) and found.channels.min() >= 0 and found.images == 8
    assert found.file.parent == concepts_dir() and concepts_dir().parent.name == "atlas", "beside the atlas"
    assert found.file.is_file() and not found.cached
    # every image placed on the fitted concepts by scipy's exact NNLS: each concept's strongest image first
    W = found.channels.T.astype(np.float64)
    peaks = {}
    for path in sorted(photo_folder.iterdir()):
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        V, _ = min_shifted(lite0.run(image, ["blocks.4"]).activations["blocks.4"].numpy())
        H = np.stack([nnls(W, column.astype(np.float64))[0] for column in V.T], axis=1)
        peaks[path.name] = H.max(1)
    for k in range(4):
        ranked = sorted(peaks, key=lambda name: -peaks[name][k])
        entries = found.atlas.entries(k)
        assert [e.image for e in entries[:3]] == ranked[:3], (k, [e.image for e in entries], ranked)
        np.testing.assert_allclose(entries[0].value, peaks[ranked[0]][k], rtol=0.02)
        x, y, w, h = entries[0].box
        assert w > 0 and h > 0
    again = fit_concepts(lite0, photo_folder, "blocks.4", 4)
    assert again.cached and np.array_equal(again.channels, found.channels)
    assert load_concepts(lite0, photo_folder, "blocks.4", 4).cached
    assert load_concepts(lite0, photo_folder, "blocks.4", 3) is None, "another K is another fit"


def test_folder_concepts_keep_their_identity_on_every_frame(lite0, photo_folder, photos, cache, tmp_path):
    found = fit_concepts(lite0, photo_folder, "blocks.4", 4)
    options = ViewOptions(layer="blocks.4", views=("concepts",), concept_set=str(found.file))
    visualizer = Visualizer(lite0, options)
    frames, _ = moving_cat_frames(photos, 4)
    for frame in [*frames, photos["coffee"]]:
        views = visualizer.process(frame)
        assert views.values["concept_colours"].tolist() == [0, 1, 2, 3], "each concept's colour for good"
        channels = views.values["concept_channels"]  # the fixed vectors, on each concept's full scale
        for k in range(4):
            np.testing.assert_allclose(channels[k], found.channels[k] * found.scales[k], rtol=1e-5)
        summary = views.values["concepts_summary"]
        assert summary.source == f"fitted on {photo_folder}"
    other = Visualizer(lite0, options.with_(layer="blocks.5")).process(photos["coffee"])
    assert "fitted at blocks.4" in other.values["concepts_summary"].error
    changed = photo_folder / "chelsea.jpg"
    before = changed.stat()
    os.utime(changed, ns=(1, 1))  # a changed folder is fitted again
    try:
        assert load_concepts(lite0, photo_folder, "blocks.4", 4) is None
    finally:
        os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert load_concepts(lite0, photo_folder, "blocks.4", 4) is not None


def test_the_torch_path_finds_the_concepts_the_numpy_path_finds(lite0, photos, monkeypatch):
    """On CUDA where there is a GPU (the factorisation on the model's device); elsewhere the same torch path on
    the CPU: frame after frame (warm starts), the same concepts, colours, pictures and classes as numpy's."""
    import copy

    from livevis.models import Engine

    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # compare the factorisation, not TF32 rounding
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    accelerator = Visualizer(Engine(lite0.spec, copy.deepcopy(lite0.model), lite0.weights, device))
    accelerator.renderer = TorchRenderer()
    host = Visualizer(lite0)
    options = ViewOptions(layer="bn2", views=("concepts",), concept_count=4)
    frames, _ = moving_cat_frames(photos, 3)
    for frame in frames:
        ours, theirs = host.process(frame, options), accelerator.process(frame, options)
        assert theirs.values["concepts_summary"].milliseconds > 0
        np.testing.assert_allclose(theirs.values["concept_maps"], ours.values["concept_maps"], atol=0.02)
        assert theirs.values["concept_colours"].tolist() == ours.values["concept_colours"].tolist()
        assert theirs.values["concept_class_index"][:, 0].tolist() == ours.values["concept_class_index"][:, 0].tolist()
        difference = np.abs(theirs.images["concepts"].astype(int) - ours.images["concepts"])
        assert difference.mean() < 1.0 and np.percentile(difference, 99) <= 8


def test_a_cancelled_fit_stops_and_stores_nothing(lite0, photo_folder, cache):
    from livevis.models.progress import Cancelled

    heard = []

    def progress(what, done, total):
        heard.append(what)
        return not what.startswith("factorising")  # cancel once the folder is sampled

    with pytest.raises(Cancelled):
        fit_concepts(lite0, photo_folder, "blocks.4", 4, progress=progress)
    assert heard[0].startswith("sampling") and heard[-1].startswith("factorising")
    assert not list(concepts_dir().glob("*.npz")), "nothing half-fitted is kept"
