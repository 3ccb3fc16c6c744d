"""Strict request bodies: unknown fields named with the closest, no bools, ISO dates only.

A typo was answered as if the field had not been sent: ``"as_off"`` scored today and
``"overides"`` scored no what-if, both 200; ``true`` became 1.0 and ``as_of: "0"``
1970-01-01 (pydantic's lax conversions). Each of these is a 400 naming the field now.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from typing import Any

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Field names of the API's request bodies (top level and a snapshot's), for "did you mean".
REQUEST_FIELDS = (
    "account_ids",
    "overrides",
    "as_of",
    "include",
    "segment",
    "snapshots",
    "account_id",
    "features",
)


def iso_date(value: Any) -> Any:
    """A date only as ``YYYY-MM-DD`` text (or a date object); no numbers, no other formats."""
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, str) and ISO_DATE.fullmatch(value):
        return value  # pydantic then checks it is a real day
    raise ValueError(f"a date is written YYYY-MM-DD, got {value!r}")


def not_bool(value: Any) -> Any:
    """Refuse ``true``/``false`` where a number is expected (pydantic reads them as 1 and 0)."""
    if isinstance(value, bool):
        raise ValueError(f"a number is expected, got {str(value).lower()}")
    return value


def unknown_field(name: str) -> str:
    """``"as_off: unknown field; did you mean as_of?"``."""
    near = difflib.get_close_matches(name, REQUEST_FIELDS, n=1)
    hint = f"; did you mean {near[0]}?" if near else ""
    return f"{name}: unknown field{hint}"


def forbid_extra_inputs(service: Any) -> None:
    """Make every endpoint's input model of ``service`` refuse fields it does not have."""
    for api in service.apis.values():
        spec = api.input_spec
        if getattr(spec, "model_config", None) is not None and spec.model_fields:
            spec.model_config["extra"] = "forbid"
            spec.model_rebuild(force=True)
