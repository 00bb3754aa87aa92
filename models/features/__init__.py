"""Sparse features: a TopK sparse autoencoder (Gao et al. 2024) of one layer, learnt on a folder of photos,
encoded live on each frame and edited in the forward pass (a feature switched off or scaled, the SAE's error
kept).

`sae` holds the SAE, its safetensors file and its edit; `train` learns one on a folder's cells.

from livevis.models.features import Recipe, train_features, read_features, FeatureEdit
"""

from .sae import FeatureEdit, SparseAutoencoder, explained_variance, features_at, read_features
from .train import Figures, Recipe, folder_cells, parse_width, train_features

__all__ = [
    "FeatureEdit",
    "Figures",
    "Recipe",
    "SparseAutoencoder",
    "explained_variance",
    "features_at",
    "folder_cells",
    "parse_width",
    "read_features",
    "train_features",
]
