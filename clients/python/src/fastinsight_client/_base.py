"""The two kinds of model: answers (unknown fields ignored) and requests (refused)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """An answer of the API. Fields a newer server adds are ignored."""

    model_config = ConfigDict(protected_namespaces=())


class RequestModel(BaseModel):
    """A request body. An unknown field is a mistake, refused here as the server would."""

    model_config = ConfigDict(protected_namespaces=(), extra="forbid")
