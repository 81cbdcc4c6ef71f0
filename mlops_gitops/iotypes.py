"""Input and output types of jobs and components (Azure ML's names), literals checked against them."""

from __future__ import annotations

from typing import Any

DATA_TYPES = frozenset({"uri_file", "uri_folder", "mltable", "mlflow_model", "custom_model", "triton_model"})
SCALAR_TYPES = frozenset({"string", "number", "integer", "boolean"})


class LiteralTypeError(ValueError):
    """A literal that does not fit its input's type (the message says which)."""


def check_literal(step: str, port: str, type_: str, value: Any) -> Any:
    """The literal converted to its input's type, or LiteralTypeError saying why it does not fit."""
    def bad() -> LiteralTypeError:
        return LiteralTypeError(f"step '{step}': input '{port}' is {type_} but got {value!r}")

    if type_ == "integer":
        if isinstance(value, bool):
            raise bad()
        try:
            if isinstance(value, float) and not value.is_integer():
                raise bad()
            return int(value)
        except (TypeError, ValueError):
            raise bad() from None
    if type_ == "number":
        if isinstance(value, bool):
            raise bad()
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad() from None
    if type_ == "boolean":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise bad()
    if type_ in DATA_TYPES:
        raise LiteralTypeError(f"step '{step}': input '{port}' is {type_} (data) but got the literal {value!r}")
    return str(value)


def compatible(output_type: str, input_type: str) -> bool:
    """Whether a step output of one type can feed an input of the other."""
    if output_type in SCALAR_TYPES or input_type in SCALAR_TYPES:
        return False  # outputs are data; a scalar input cannot take one
    return {output_type, input_type} != {"uri_file", "uri_folder"}
