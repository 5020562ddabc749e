"""The base of every component's state model.

A component's ``snapshot()`` returns a frozen pydantic model that derives from
:class:`ComponentState`; ``restore(state)`` takes one back. The model is the stored form: a host
persists ``state.model_dump(mode="json")`` and reads it back with
``component.State.model_validate(data)``. ``schema_version`` says which shape was written; a
component reads only its current version, and anything else fails with
:class:`StateVersionError` rather than being half-understood.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class StateVersionError(Exception):
    """Stored state was written in a schema version this code does not read."""


class ComponentState(BaseModel):
    """Frozen, JSON-able state of a component (or of a record a component keeps).

    Subclasses raise ``schema_version``'s default whenever they change shape.

    Attributes:
        schema_version: Version of the shape the state was written in.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = 1

    @classmethod
    def current_version(cls) -> int:
        """The version this code writes and reads."""
        default = cls.model_fields["schema_version"].default
        assert isinstance(default, int)
        return default

    @model_validator(mode="before")
    @classmethod
    def _check_version(cls, data: Any) -> Any:
        if isinstance(data, dict) and "schema_version" in data:
            stored, current = data["schema_version"], cls.current_version()
            if stored != current:
                raise StateVersionError(
                    f"{cls.__name__}: stored state has schema_version {stored!r}, "
                    f"this version of tradegraph reads {current}"
                )
        return data


class StateRecord(BaseModel):
    """Frozen, JSON-able state of one record inside a component's state (an open order, an
    account, an indicator). It carries no version: the enclosing :class:`ComponentState`'s
    ``schema_version`` covers it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
