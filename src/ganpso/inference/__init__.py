"""Using a trained classifier on real photos: face detection, prediction, ONNX export, web demo."""

from ganpso.inference.faces import Box, crop_face, detect_faces, read_photo
from ganpso.inference.predictor import (
    EmotionPredictor,
    FacePrediction,
    ImagePrediction,
    default_model_path,
    face_views,
)

__all__ = [
    "Box",
    "EmotionPredictor",
    "FacePrediction",
    "ImagePrediction",
    "crop_face",
    "default_model_path",
    "detect_faces",
    "face_views",
    "read_photo",
]
