"""GAN-PSO: facial emotion recognition on FER2013 with GAN balancing and PSO tuning."""

from ganpso.emotions import EMOTIONS, IMAGE_SIZE, NUM_CLASSES, SPLITS

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "IMAGE_SIZE", "NUM_CLASSES", "SPLITS", "__version__"]
