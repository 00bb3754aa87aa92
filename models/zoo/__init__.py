"""The models livevis knows: one frozen spec per model (architecture, preprocessing, labels, layer names,
where trained weights come from), a user's own models and timm's, weights resolved and loaded, and the
bundled LeNet."""

from .registry import get_spec, model_names, register_model
from .spec import ModelSpec
from .weights import DEFAULT, RANDOM, WeightsInfo, availability, load_weights

__all__ = [
    "DEFAULT",
    "RANDOM",
    "ModelSpec",
    "WeightsInfo",
    "availability",
    "get_spec",
    "load_weights",
    "model_names",
    "register_model",
]
