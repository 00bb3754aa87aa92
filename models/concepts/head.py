"""Which classes a concept stands for, where the layer feeds the classifier directly.

At the last spatial layer of most classifiers (ResNet's layer4, EfficientNet's bn2) the class scores are a
linear head applied to the map averaged over space. There a concept's channel vector (what the layer holds at
a cell where that concept alone is on, the subtracted minima added back) can go through the head as if it
were a whole image's, and its top classes name it, as Deep Feature Factorization labels its concepts. Whether
a layer is such a layer is checked on a real forward, not guessed from names: the head applied to the layer's
spatial mean must give the model's own scores. Earlier layers reach the classes through nonlinear stages, so
there a concept is told by its top channels (and, fitted on a folder, by its top crops) instead.
"""

from __future__ import annotations

import numpy as np
import torch

from ..layers import LayerInfo

TOP_CLASSES = 3


def classifier_head(engine) -> torch.nn.Linear | None:
    """The last fully connected layer of a classifier whose outputs are its class scores, if there is one."""
    if not engine.is_classifier:
        return None
    classes = engine.layers[-1].channels
    for layer in reversed(engine.layers):
        if layer.module_type == "Linear" and layer.shape == (classes,):
            module = engine.model.get_submodule(layer.path)
            return module if isinstance(module, torch.nn.Linear) else None
    return None


def feeds_head(activation: torch.Tensor, logits: torch.Tensor, head: torch.nn.Linear | None) -> bool:
    """Whether the class scores of this forward are the head applied to the layer's (C, h, w) spatial mean."""
    if head is None or activation.dim() != 3 or activation.shape[0] != head.in_features:
        return False
    with torch.no_grad():
        pooled = activation.float().mean((1, 2)).to(head.weight.dtype)
        scores = head(pooled[None])[0].float()
    reference = logits.reshape(-1).float()
    return bool(torch.allclose(scores, reference, rtol=1e-3, atol=1e-3 * float(reference.abs().max()) + 1e-6))


def concept_classes(head: torch.nn.Linear, channels, offset, k: int = TOP_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Each concept's (K x C) channel vector, the subtracted minima (C,) added back, through the head:
    the top-k classes (K x k indices) and their softmax probabilities (K x k)."""
    device, dtype = head.weight.device, head.weight.dtype
    vectors = torch.as_tensor(channels).to(device, dtype) + torch.as_tensor(offset).to(device, dtype).reshape(1, -1)
    with torch.no_grad():
        probabilities = head(vectors).float().softmax(1)
    best = probabilities.topk(min(k, probabilities.shape[1]), dim=1)
    return best.indices.cpu().numpy(), best.values.cpu().numpy()


def head_layer(engine, head: torch.nn.Linear | None) -> LayerInfo | None:
    """The layer that feeds `head` directly, for saying where classes can be read: the last one with maps
    (more than one cell) and as many channels as the head takes."""
    if head is None:
        return None
    spatial = [layer for layer in engine.layers if layer.is_spatial and layer.shape[1] * layer.shape[2] > 1]
    return next((layer for layer in reversed(spatial) if layer.channels == head.in_features), None)
