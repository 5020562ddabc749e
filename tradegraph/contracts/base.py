"""Base classes for every message that travels through the graph.

Messages are immutable pydantic models with integer-nanosecond timestamps. They are validated
where they enter the system (files, exchanges, user input). Inside the graph a producer that has
already validated its input in bulk may build a message with :meth:`Message.trusted`, which skips
per-field validation; that is what keeps the replay hot path fast.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

_new = object.__new__
# Pydantic keeps instance state in slots of BaseModel; setting them through their descriptors is
# the cheapest way to build an instance whose values are already known to be valid.
set_instance_dict = BaseModel.__dict__["__dict__"].__set__
set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
set_private = BaseModel.__dict__["__pydantic_private__"].__set__


class Message(BaseModel):
    """An immutable message: a command (verb), an event (past tense) or market data.

    Attributes:
        ts_event_ns: When the thing happened, nanoseconds since the Unix epoch (UTC).
        ts_init_ns: When the graph created or first received the message.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    ts_event_ns: int
    ts_init_ns: int

    _field_set: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def trusted(cls, **fields: Any) -> Self:
        """Build an instance from values that were already validated, without re-validating.

        Every field must be given, with the right type. Used on the hot path by producers that
        validated their whole input at the boundary.
        """
        obj = _new(cls)
        set_instance_dict(obj, fields)
        set_fields_set(obj, cls._field_set)
        set_extra(obj, None)
        set_private(obj, None)
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        # Messages cross process boundaries by the million in the actor graph; pickling the
        # field dict alone costs about half of pydantic's full model state, and the values
        # were validated when the message was built.
        return (_rebuild, (type(self), self.__dict__))

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._field_set = frozenset(cls.model_fields)


def _rebuild(cls: type[Message], fields: dict[str, Any]) -> Message:
    obj = _new(cls)
    set_instance_dict(obj, fields)
    set_fields_set(obj, cls._field_set)
    set_extra(obj, None)
    set_private(obj, None)
    return obj


def require_finite_positive(name: str, value: float) -> float:
    """Return ``value`` if it is a finite number above zero, else raise ``ValueError``."""
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0, was {value!r}")
    return value


def require_finite_non_negative(name: str, value: float) -> float:
    """Return ``value`` if it is a finite number at or above zero, else raise ``ValueError``."""
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"{name} must be a finite number >= 0, was {value!r}")
    return value
