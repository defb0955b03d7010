"""Errors that reach the user: each names where the problem is and what would be valid."""
from __future__ import annotations

import difflib
from typing import Any, Iterable


def did_you_mean(value: Any, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a choice is close to ``value``, else ''."""
    names = [str(c) for c in choices]
    close = difflib.get_close_matches(str(value), names, n=1, cutoff=0.6)
    if not close:  # 'unet' -> 'unet_generator': a unique choice that contains what was typed
        close = [n for n in names if len(str(value)) >= 3 and str(value).lower() in n.lower()][:2]
        close = close if len(close) == 1 else []
    return f" (did you mean '{close[0]}'?)" if close else ""


class I2IError(Exception):
    """Base of every error i2i reports to the user without a traceback."""


class RecipeError(I2IError):
    """A recipe problem: names the file, the key path, the bad value and the valid choices."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 value: Any = ..., choices: Iterable[Any] | None = None):
        self.file, self.key, self.value = file, key, value
        self.choices = sorted(str(c) for c in choices) if choices is not None else None
        where = ", ".join(p for p in (file and f"file {file}", key and f"key '{key}'") if p)
        text = f"{where}: {message}" if where else message
        if value is not ...:
            text += f" (got {value!r})"
        if self.choices is not None:
            text += did_you_mean(value, self.choices) if value is not ... else ""
            shown = ", ".join(self.choices[:40]) + (", ..." if len(self.choices) > 40 else "")
            text += f"; valid: {shown}" if shown else "; nothing valid is registered"
        self.message = text
        super().__init__(text)


class DataError(I2IError):
    """A data set or image problem: names the path and what was expected."""
