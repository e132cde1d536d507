"""The seven FER2013 emotions, in the dataset's label order (label i is EMOTIONS[i])."""

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)
IMAGE_SIZE = 48
SPLITS: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
