"""How a setting is declared: a dataclass field that carries its default, its doc and its kind.

The settings of apiguard are declared once, as the fields of :class:`~apiguard.IssuerPolicy`
(what is trusted about one issuer) and :class:`~apiguard._core.Config` (what holds for the
whole validator). Everything else is derived from those fields: the keyword arguments of the
validators and framework layers, the ``APIGUARD_*`` settings of :mod:`apiguard.flask` (their
names, how a string is read for each), the generated lists in the docstrings, and the name
every :class:`~apiguard.ConfigurationError` starts with.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field
from typing import Any, Final, Literal

from .errors import ConfigurationError

#: How a setting is written as text (an environment variable, a Flask config string):
#: ``string`` as it is, ``strings`` split on whitespace, ``number`` and ``integer`` parsed,
#: ``boolean`` from 1/0, true/false, yes/no, on/off; ``object`` cannot be written as text.
Kind = Literal["string", "strings", "number", "integer", "boolean", "object"]

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def setting(default: Any = MISSING, *, doc: str, kind: Kind) -> Any:
    """Declare a setting: a dataclass field with its default, a one-line doc and its kind."""
    return field(default=default, metadata={"doc": doc, "kind": kind})


@dataclass(frozen=True, slots=True)
class SettingInfo:
    """One declared setting, as read back from its dataclass field."""

    name: str
    kind: Kind
    doc: str
    default: Any
    #: The annotation as written (a string: the modules use postponed annotations).
    annotation: str

    @property
    def required(self) -> bool:
        """Whether the setting has no default."""
        return self.default is MISSING


def settings_of(cls: type) -> dict[str, SettingInfo]:
    """The declared settings of a settings dataclass, in declaration order."""
    found: dict[str, SettingInfo] = {}
    for item in dataclasses.fields(cls):
        if "kind" not in item.metadata:
            continue  # a derived, private field
        found[item.name] = SettingInfo(
            item.name,
            item.metadata["kind"],
            item.metadata["doc"],
            item.default,
            str(item.type),
        )
    return found


def fail(name: str, why: str) -> ConfigurationError:
    """The error for a bad setting: its message starts with the setting's name."""
    return ConfigurationError(f"{name}: {why}", setting=name)


def from_text(info: SettingInfo, value: str, *, name: str | None = None) -> Any:
    """Read a setting written as text, as its kind says; ``name`` is how errors call it.

    Raises:
        ConfigurationError: the text is not a value of the setting's kind.
    """
    label = name or info.name
    text = value.strip()
    if info.kind == "strings":
        return text.split()
    if info.kind in ("number", "integer"):
        try:
            number = int(text) if info.kind == "integer" or text.isdigit() else float(text)
        except ValueError:
            kind = "an integer" if info.kind == "integer" else "a number"
            raise fail(label, f"must be {kind}, not {value!r}") from None
        if not math.isfinite(number):
            raise fail(label, f"must be a finite number, not {value!r}")
        return number
    if info.kind == "boolean":
        lowered = text.lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise fail(label, f"must be a boolean (true/false, 1/0, yes/no, on/off), not {value!r}")
    if info.kind == "object":
        raise fail(label, "cannot be given as text; set it from Python code")
    return value


def boolean(name: str, value: Any) -> bool:
    """A boolean setting: True/False, or one of the texts :func:`from_text` reads."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        result: bool = from_text(SettingInfo(name, "boolean", "", False, "bool"), value)
        return result
    raise fail(name, f"must be a boolean, not {value!r}")


def number(name: str, value: Any, *, low: float, high: float = math.inf) -> float:
    """A finite number within ``[low, high]``; bool is no number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise fail(name, f"must be a number, not {value!r}")
    if not low <= value <= high:
        raise fail(name, f"must be between {low:g} and {high:g}, not {value!r}")
    return float(value)


def strings(name: str, value: Any, *, allow_empty: bool = False) -> tuple[str, ...]:
    """A string or an iterable of non-empty strings, as a tuple."""
    items = (value,) if isinstance(value, str) else value
    if isinstance(items, Mapping | bytes):
        raise fail(name, "must be a string or an iterable of strings")
    try:
        result = tuple(items)
    except TypeError:
        raise fail(name, "must be a string or an iterable of strings") from None
    if any(not isinstance(item, str) or not item for item in result):
        raise fail(name, "must contain only non-empty strings")
    if not result and not allow_empty:
        raise fail(name, "must not be empty")
    return result


def describe(infos: Mapping[str, SettingInfo], *, prefix: str = "", indent: int = 4) -> str:
    """A docstring list of settings, one per line with its doc and default.

    The first line is not indented: it replaces a placeholder that already is.
    """
    lines = []
    for info in infos.values():
        label = prefix + info.name.upper() if prefix else info.name
        default = "required" if info.required else f"default ``{info.default!r}``"
        lines.append(f"{label}: {info.doc} ({default})")
    return ("\n" + " " * indent).join(lines)
