"""The unit atlas: every channel's strongest images from a folder (mining, on one process or many under
torchrun), the box of the image each unit sees (receptive fields), the store that caches and resumes it,
and its mosaics.

from livevis.models.atlas import mine, load_atlas
"""

from .mining import Atlas, AtlasEntry, MinedFolder, Processes, load_atlas, mine, mined_folders
from .receptive_field import box_in_image, receptive_fields

__all__ = [
    "Atlas",
    "AtlasEntry",
    "MinedFolder",
    "Processes",
    "box_in_image",
    "load_atlas",
    "mine",
    "mined_folders",
    "receptive_fields",
]
