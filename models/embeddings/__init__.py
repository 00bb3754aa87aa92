"""Layers as embeddings: a labelled dataset through a model, each layer reduced (PCA) and mapped to 2-D
(t-SNE), each map measured, and the live frame placed into a map.

from livevis.models.embeddings import embed_dataset, MapPlacer
"""

from .tsne import (
    EmbeddingRun,
    LayerMap,
    MapPlacer,
    Readout,
    activations,
    embed_dataset,
    embed_swiss_roll,
    readout,
    swiss_roll,
)

__all__ = [
    "EmbeddingRun",
    "LayerMap",
    "MapPlacer",
    "Readout",
    "activations",
    "embed_dataset",
    "embed_swiss_roll",
    "readout",
    "swiss_roll",
]
