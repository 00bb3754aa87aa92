"""Sparse features (a TopK SAE of a layer) on Google's trained EfficientNet-Lite0 and real photos: the codes, the
stored figures, the edit in the forward and the file, each checked against an independent computation."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import load_file

from livevis.models import ViewOptions, Visualizer
from livevis.models.errors import InputError
from livevis.models.features import FeatureEdit, Recipe, read_features, train_features
from livevis.models.features.train import checkpoint_of
from livevis.models.progress import Cancelled

LAYER = "blocks.5.0.bn1.act"
RECIPE = Recipe(width=1, k=16, epochs=4, batch_size=256)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, photos):
    """Eight real photos: four whole and four crops of them."""
    import cv2

    folder = tmp_path_factory.mktemp("photos")
    for name, image in photos.items():
        h, w = image.shape[:2]
        for suffix, picture in (("", image), ("-crop", image[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4])):
            cv2.imwrite(str(folder / f"{name}{suffix}.jpg"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache for the module: the photos' cells are read once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def trained(lite0, photo_folder, tmp_path_factory, cache):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIVEVIS_CACHE", str(cache))
        sae, file = train_features(
            lite0, photo_folder, LAYER, RECIPE, out=tmp_path_factory.mktemp("sae") / "lite0.safetensors"
        )
    return sae, file


def topk_encode(tensors: dict[str, np.ndarray], k: int, rows: np.ndarray) -> np.ndarray:
    """TopK_k(ReLU((x - b_dec) W_enc^T + b_enc)) in float64 numpy, straight from the file's tensors."""
    pre = (rows.astype(np.float64) - tensors["b_dec"]) @ tensors["W_enc"].T.astype(np.float64) + tensors["b_enc"]
    codes = np.zeros_like(pre)
    top = np.argpartition(-pre, k - 1, axis=1)[:, :k]
    np.put_along_axis(codes, top, np.maximum(np.take_along_axis(pre, top, 1), 0), 1)
    return codes


def test_the_file_holds_the_tensors_and_the_metadata(trained):
    sae, file = trained
    tensors = load_file(str(file))
    assert tensors["W_enc"].shape == tensors["W_dec"].shape == (672, 672)
    assert tensors["b_enc"].shape == (672,) and tensors["b_dec"].shape == (672,)
    assert np.allclose(np.linalg.norm(tensors["W_dec"], axis=1), 1.0, atol=1e-5)  # unit-norm decoder rows
    with safe_open(str(file), framework="np") as opened:
        meta = opened.metadata()
    assert meta["k"] == "16" and meta["layer"] == LAYER and meta["model"] == "efficientnet_lite0"
    figures = json.loads(meta["figures"])
    assert 0 < figures["explained_variance"] <= 1 and 0 < figures["l0"] <= 16 and 0 <= figures["dead"] < 1
    assert figures["held_out_images"] == 1 and figures["train_images"] == 7
    assert figures["train_cells"] == 4 * 7 * 196  # each training photo, mirrored, zoomed and both
    assert figures["held_out_cells"] == 196  # the held-out photo only as the live view sees it


def test_a_view_is_the_photo_mirrored_or_its_centre(photo_folder):
    from livevis.models.atlas.data import read_with_opencv
    from livevis.models.features.train import Viewed

    path = sorted(photo_folder.iterdir())[0]
    image = read_with_opencv(path)
    h, w = image.shape[:2]
    centre = image[int(h * 0.1) : h - int(h * 0.1), int(w * 0.1) : w - int(w * 0.1)]
    assert np.array_equal(Viewed(read_with_opencv, 1)(path), image[:, ::-1])
    assert np.array_equal(Viewed(read_with_opencv, 2)(path), centre)
    assert np.array_equal(Viewed(read_with_opencv, 3)(path), centre[:, ::-1])


def _dense_loss(params, x, k, k_aux, variance, dead):
    """The training loss written densely, as autograd sees it: codes scattered into N x F, AuxK over `dead`."""
    W_enc, b_enc, W_dec, b_dec = (params[n] for n in ("W_enc", "b_enc", "W_dec", "b_dec"))
    pre = (x - b_dec) @ W_enc.T + b_enc
    top = pre.topk(k, dim=1)
    codes = torch.zeros_like(pre).scatter(1, top.indices, top.values.clamp_min(0))
    error = x - (codes @ W_dec + b_dec)
    loss = error.square().sum(1).mean() / variance
    aux_top = pre[:, dead].topk(k_aux, dim=1)
    aux_codes = torch.zeros_like(pre).index_put(
        (torch.arange(len(x))[:, None], dead[aux_top.indices]), aux_top.values.clamp_min(0)
    )
    residual = error.detach()
    aux = (residual - aux_codes @ W_dec).square().sum(1).mean() / residual.square().sum(1).mean()
    return loss + aux / 32


def test_the_sparse_backward_equals_autograds_dense_one(lite0, photos):
    from livevis.models.features.train import _Trainer

    activation = lite0.run(photos["chelsea"], [LAYER]).activations[LAYER].float()
    x = activation.reshape(672, -1).T[::8].contiguous()  # 25 cells: most features fire on none of them
    recipe = Recipe(width=2, k=16, k_aux=24)
    trainer = _Trainer(x, 2 * 672, recipe)
    trainer.choose_in = torch.float32  # the same choice as the dense loss's
    dead = torch.arange(0, 2 * 672, 3)
    trainer.since_fired[dead] = 10**9  # a third of the features dead: AuxK's path too
    variance = float((x - x.mean(0)).square().sum(1).mean())
    trainer.loss(x, recipe, variance, dead_after=10**8).backward()
    dead = (trainer.since_fired > 10**8).nonzero().squeeze(1)  # those that fired on these rows came back
    assert 0 < len(dead) < 2 * 672 // 3
    reference = {n: p.detach().clone().requires_grad_(True) for n, p in trainer.params.items()}
    _dense_loss(reference, x, 16, 24, variance, dead).backward()
    for name, p in trainer.params.items():
        torch.testing.assert_close(p.grad, reference[name].grad, rtol=1e-4, atol=1e-5 * float(p.grad.abs().max()))


def test_dead_features_restart_at_badly_rebuilt_cells(lite0, photos):
    from livevis.models.features.train import _Trainer

    x = lite0.run(photos["coffee"], [LAYER]).activations[LAYER].float().reshape(672, -1).T.contiguous()
    trainer = _Trainer(x, 672, Recipe(width=1, k=8))
    trainer.since_fired[:5] = 10**9
    before = trainer.params["W_dec"].detach().clone()
    sae = trainer.sae(8)
    errors = x - sae.decode_sparse(*sae.encode_sparse(x))
    assert trainer.resample(x, 8, dead_after=10**8) == 5
    restarted = trainer.params["W_dec"].detach()
    assert torch.equal(restarted[5:], before[5:]) and not torch.equal(restarted[:5], before[:5])
    directions = errors / errors.norm(dim=1, keepdim=True)
    assert bool(((restarted[:5] @ directions.T) > 1 - 1e-5).any(1).all())  # each row is some cell's error
    restarted_encoder = torch.nn.functional.normalize(trainer.params["W_enc"].detach()[:5], dim=1)
    torch.testing.assert_close(restarted_encoder, restarted[:5])  # tied to its decoder row
    assert int(trainer.since_fired[:5].max()) == 0


def test_features_equal_an_independent_topk_encode(trained, lite0, photos):
    sae, file = trained
    visualizer = Visualizer(lite0)
    options = ViewOptions(layer=LAYER, views=("features",), features=str(file))
    views = visualizer.process(photos["coffee"], options, with_activations=True)
    codes = views.values["feature_codes"]
    activation = views.activation
    assert codes.shape == (672, 14, 14) and activation.shape == (672, 14, 14)
    rows = activation.reshape(672, -1).T
    expected = topk_encode(load_file(str(file)), 16, rows)
    got = codes.reshape(672, -1).T
    assert np.array_equal(got > 0, expected > 0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    tensors = load_file(str(file))
    rebuilt = expected @ tensors["W_dec"] + tensors["b_dec"]
    np.testing.assert_allclose(views.values["feature_reconstruction"].reshape(672, -1).T, rebuilt, atol=1e-3)
    ev = 1 - ((rows - rebuilt) ** 2).sum() / ((rows - rows.mean(0)) ** 2).sum()
    assert float(views.values["feature_explained_variance"]) == pytest.approx(ev, abs=1e-4)
    assert views.images["features"].shape[2] == 3


def test_mostly_zero_cells_take_the_sparse_product_and_get_the_same_pre_activations(trained, lite0, photos):
    from livevis.models.features.sae import SPARSE_ROWS

    sae = read_features(trained[1])
    rows = lite0.run(photos["chelsea"], [LAYER]).activations[LAYER].float().reshape(672, -1).T.contiguous()
    assert float((rows == 0).float().mean()) > SPARSE_ROWS  # ReLU6's output: the sparse product's case
    tensors = load_file(str(trained[1]))
    expected = (rows.double().numpy() - tensors["b_dec"]) @ tensors["W_enc"].T.astype(np.float64) + tensors["b_enc"]
    assert sae._encoder_blocks is None
    got = sae.pre_activations(rows)
    assert sae._encoder_blocks is not None  # it took the sparse product
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-4)
    dense = rows + 1.0  # no zeros: the dense product
    np.testing.assert_allclose(
        sae.pre_activations(dense).numpy(), (expected + tensors["W_enc"].sum(1)), rtol=1e-5, atol=1e-4
    )
    codes = sae.encode(rows).numpy()
    assert np.array_equal(codes > 0, topk_encode(tensors, 16, rows.numpy()) > 0)
    fresh = read_features(trained[1])
    graded = rows.clone().requires_grad_(True)  # an edit inside a backward pass (Grad-CAM): the dense product
    fresh.pre_activations(graded).sum().backward()
    assert fresh._encoder_blocks is None
    torch.testing.assert_close(graded.grad, fresh.W_enc.sum(0).expand_as(rows))  # zeros' gradients too


def test_the_stored_explained_variance_is_what_the_tensors_give_on_the_held_out_photos(trained, lite0, photo_folder):
    import cv2

    sae, file = trained
    meta = sae.meta
    held_out = json.loads(meta["held_out"])
    assert len(held_out) == 1
    tensors = load_file(str(file))
    rows = []
    for name in held_out:  # through the live view's own preprocessing, not the training's reader
        image = cv2.cvtColor(cv2.imread(str(photo_folder / name)), cv2.COLOR_BGR2RGB)
        rows.append(lite0.run(image, [LAYER]).activations[LAYER].reshape(672, -1).T.numpy())
    rows = np.concatenate(rows).astype(np.float64)
    rebuilt = topk_encode(tensors, 16, rows) @ tensors["W_dec"] + tensors["b_dec"]
    ev = 1 - ((rows - rebuilt) ** 2).sum() / ((rows - rows.mean(0)) ** 2).sum()
    assert json.loads(meta["figures"])["explained_variance"] == pytest.approx(ev, abs=2e-4)


def _edited_and_measured(engine, image, edits):
    """The layer's output as measured, and as the next module receives it with the edits."""
    seen = {}
    conv = engine.model.get_submodule("blocks.5.0.conv_dw")
    handle = conv.register_forward_pre_hook(lambda _m, inputs: seen.__setitem__("x", inputs[0].clone()))
    try:
        with engine.edited(edits):
            result = engine.run(image, [LAYER])
    finally:
        handle.remove()
    return result, seen["x"][0]


def test_a_feature_switched_off_changes_the_layer_by_its_decoder_contribution(trained, lite0, photos):
    sae, file = trained
    tensors = load_file(str(file))
    bare = lite0.run(photos["chelsea"], [LAYER])
    rows = bare.activations[LAYER].reshape(672, -1).T.numpy()
    codes = topk_encode(tensors, 16, rows)
    off = [int(j) for j in np.argsort(-codes.sum(0))[:2]]  # the two strongest features on this photo
    result, edited = _edited_and_measured(lite0, photos["chelsea"], [FeatureEdit(LAYER, str(file), tuple(off))])
    assert torch.equal(result.activations[LAYER], bare.activations[LAYER])  # the layer's own capture: as measured
    change = edited.reshape(672, -1).T.numpy() - rows
    expected = -(codes[:, off] @ tensors["W_dec"][off])
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(change, expected, atol=2e-4)
    untouched = codes[:, off].sum(1) == 0
    assert untouched.any() and np.array_equal(change[untouched], np.zeros_like(change[untouched]))
    assert not torch.equal(result.logits, bare.logits)


def test_with_no_edit_the_probabilities_are_the_bare_models(trained, lite0, photos):
    sae, file = trained
    image = photos["astronaut"]
    x, _ = lite0.preprocess(torch.from_numpy(image)[None])
    with torch.no_grad():
        bare = lite0.model(x).softmax(1)[0].numpy()
    kept = FeatureEdit(LAYER, str(file), (0, 1, 2), scale=1.0)  # every s_j = 1: no edit
    result, edited = _edited_and_measured(lite0, image, [kept])
    assert torch.equal(edited, result.activations[LAYER])
    assert np.array_equal(result.logits[0].softmax(0).numpy(), bare)
    visualizer = Visualizer(lite0)
    views = visualizer.process(image, ViewOptions(layer=LAYER, views=("predictions", "features"), features=str(file)))
    assert [p.index for p in views.values["top5"]] == list(np.argsort(-bare)[:5])
    assert [p.probability for p in views.values["top5"]] == pytest.approx(np.sort(bare)[::-1][:5], abs=1e-6)


def test_a_cancelled_run_resumes_from_its_checkpoint(lite0, photo_folder, tmp_path, monkeypatch, cache):
    monkeypatch.setenv("LIVEVIS_CACHE", str(cache))
    recipe = Recipe(width=1, k=8, epochs=3, batch_size=512)

    def stop_after_one(what, done, total):
        return not ("epoch" in what and done == 1)

    with pytest.raises(Cancelled):
        train_features(lite0, photo_folder, LAYER, recipe, out=tmp_path / "a.safetensors", progress=stop_after_one)
    assert checkpoint_of(tmp_path / "a.safetensors").is_file()
    epochs = []
    resumed, _ = train_features(
        lite0,
        photo_folder,
        LAYER,
        recipe,
        out=tmp_path / "a.safetensors",
        progress=lambda what, done, total: epochs.append(done) if "epoch" in what else None,
    )
    assert epochs == [2, 3] and not checkpoint_of(tmp_path / "a.safetensors").exists()
    whole, _ = train_features(lite0, photo_folder, LAYER, recipe, out=tmp_path / "b.safetensors")
    torch.testing.assert_close(resumed.W_dec, whole.W_dec, atol=1e-5, rtol=1e-4)


def test_damaged_or_hostile_files_are_one_clear_error(trained, tmp_path):
    _, file = trained
    cases = {
        "garbage": b"not a safetensors file at all",
        "huge header": struct.pack("<Q", 1 << 40) + b"{}",
        "cut short": file.read_bytes()[:5000],
        "pickle": b"\x80\x04\x95" + b"cos\nsystem\n" * 4,
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(content)
        with pytest.raises(InputError, match="features file"):
            read_features(path)
    from safetensors.numpy import save_file

    good = load_file(str(file))
    wrong = {
        "missing": ({k: v for k, v in good.items() if k != "b_dec"}, {"k": "16"}),
        "shapes": ({**good, "b_dec": good["b_dec"][:5]}, {"k": "16"}),
        "no k": (good, {}),
        "k too large": (good, {"k": "100000"}),
        "nan": ({**good, "W_enc": np.full_like(good["W_enc"], np.nan)}, {"k": "16"}),
    }
    for name, (tensors, meta) in wrong.items():
        path = tmp_path / f"{name}.safetensors"
        save_file(tensors, str(path), metadata=meta)
        with pytest.raises(InputError):
            read_features(path)
