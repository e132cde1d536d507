"""FER2013 and other face datasets -> uint8 arrays ``(N, 48, 48)`` with labels and splits.

Example:
    >>> from ganpso.data.config import DataConfig
    >>> dataset = load_dataset(DataConfig(source="../shared/data/fer2013.zip"))  # doctest: +SKIP
    >>> dataset["Training"].images.shape
    (28709, 48, 48)
"""

from ganpso.data.dataset import FerDataset, Split
from ganpso.data.images import decode_image
from ganpso.data.loading import load_dataset

__all__ = ["FerDataset", "Split", "decode_image", "load_dataset"]
