"""Concepts: a layer's maps factorised into a few non-negative parts (Deep Feature Factorization, Collins et
al. 2018; the neuron groups of Olah et al. 2018), live on each frame or fitted once on a folder.

`nmf` holds the NMF (multiplicative updates on numpy or torch arrays), `live` the frame-to-frame
tracker (warm starts, colours kept by the Hungarian assignment), `dataset` the concepts fitted on a folder
and their store, `head` the classes of a concept where the layer feeds the classifier, `summary` the
legend's plain values, `images` their pictures (crops, optimised images, the command line's figure).

from livevis.models.concepts import factorise, min_shifted, fit_concepts
"""

from .dataset import ConceptSet, check_layer, concept_set_at, fit_concepts, load_concepts, read_concept_set
from .live import ConceptTracker, FrameConcepts
from .nmf import Factors, factorise, min_shifted, project, relative_error
from .summary import Concept, ConceptsSummary

__all__ = [
    "Concept",
    "ConceptSet",
    "ConceptTracker",
    "ConceptsSummary",
    "Factors",
    "FrameConcepts",
    "check_layer",
    "concept_set_at",
    "factorise",
    "fit_concepts",
    "load_concepts",
    "min_shifted",
    "project",
    "read_concept_set",
    "relative_error",
]
