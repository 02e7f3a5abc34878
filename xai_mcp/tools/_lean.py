"""Lean results: fields that are unset (None) are left out of what the agent reads.

The output schema still lists them (as optional), so a field is documented once and appears
only when it has a value: a search result of ten chunks carries no column of nulls.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer


class Lean(BaseModel):
    """A result model whose None fields are dropped when it is serialized."""

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        return {key: value for key, value in data.items() if value is not None} if isinstance(data, dict) else data
