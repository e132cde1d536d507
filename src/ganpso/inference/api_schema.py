"""The web API's answers and errors as pydantic models: what ``/openapi.json`` describes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Face(BaseModel):
    box: list[int] | None = Field(description="[x, y, width, height]; null without detection")
    emotion: str
    probabilities: dict[str, float]
    saliency: str | None = Field(
        None, description="with explain=1: a PNG data URL, the face beside its occlusion heat map"
    )


class Prediction(BaseModel):
    source: str = Field(description="the file name sent with the upload")
    size: list[int] | None = Field(description="[width, height] of the photo")
    faces: list[Face]
    error: str | None
    message: str = Field(description="'1 face(s)', 'no face found', ...")


class Info(BaseModel):
    model: str | None
    engine: str
    classes: list[str]
    max_upload_bytes: int
    body_timeout_s: float
    batch_faces: int
    model_calls: int = Field(description="model calls so far: fewer than requests when batched")


class ErrorMessage(BaseModel):
    error: str = Field(description="one line saying what was wrong")


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorMessage, "description": text}
    for code, text in {
        400: "not a readable image, or a malformed request or Content-Length",
        408: "the body did not arrive in time",
        413: "the upload is over the size limit",
    }.items()
}
BINARY = {"type": "string", "format": "binary"}
FLAG = {"type": "string", "default": "1"}
NO_DETECT = "0 treats the image as an already-cropped face"
UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": BINARY, "detect": {**FLAG, "description": NO_DETECT}},
                }
            },
            "application/octet-stream": {"schema": BINARY},
            "image/*": {"schema": BINARY},
        },
    },
    "parameters": [
        {"name": "X-Filename", "in": "header", "schema": {"type": "string"},
         "description": "raw uploads: the URL-encoded file name"},
        {"name": "X-Detect", "in": "header", "schema": FLAG,
         "description": f"raw uploads: {NO_DETECT}"},
    ],
}  # fmt: skip
