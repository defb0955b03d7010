"""Errors that reach the user: each names where the problem is and what would be valid."""
from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterable, Iterator
from typing import Any

MAX_SHOWN = 80  # characters of a bad value shown in a message: a 1 MB string stays one readable line


def short_repr(value: Any, limit: int = MAX_SHOWN) -> str:
    """repr(value), cut to ``limit`` characters with the full length noted."""
    try:
        text = repr(value)
    except Exception:  # a value whose repr fails is still reported  # noqa: BLE001
        text = f"<{type(value).__name__}>"
    if len(text) > limit:
        text = f"{text[: limit - 20]}... ({len(text)} characters)"
    return text


def did_you_mean(value: Any, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a choice is close to ``value``, else ''."""
    names = [str(c) for c in choices]
    text = str(value) if isinstance(value, (str, int, float)) else ""
    if not text or len(text) > 100:
        return ""
    close = difflib.get_close_matches(text, names, n=1, cutoff=0.6)
    if not close:  # 'unet' -> 'unet_generator' or 'unet_discriminator_sn': the choices that contain what was typed
        close = [n for n in names if len(text) >= 3 and text.lower() in n.lower()]
        close = close if len(close) <= 3 else []
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)" if close else ""


class I2IError(Exception):
    """Base of every error i2i reports to the user without a traceback."""


class RecipeError(I2IError):
    """A recipe problem: names the file, the key path, the bad value and the valid choices."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 value: Any = ..., choices: Iterable[Any] | None = None):
        self.file, self.key, self.value = file, key, value
        self.bare = message
        self.choices = sorted(str(c) for c in choices) if choices is not None else None
        shown_file = file if file is None or file.isprintable() else short_repr(file, 300)  # a NUL in a path
        where = ", ".join(p for p in (shown_file and f"file {shown_file}", key and f"key '{key}'") if p)
        text = f"{where}: {message}" if where else message
        if value is not ...:
            text += f" (got {short_repr(value)})"
        if self.choices is not None:
            text += did_you_mean(value, self.choices) if value is not ... else ""
            shown = ", ".join(self.choices[:40]) + (", ..." if len(self.choices) > 40 else "")
            text += f"; valid: {shown}" if shown else "; nothing valid is registered"
        self.message = " ".join(text.splitlines())  # one line, whatever a wrapped exception's text held
        super().__init__(self.message)

    def in_file(self, file: str) -> RecipeError:
        """The same error, naming ``file`` (for checks deep in a component that do not know the recipe)."""
        return RecipeError(self.bare, file=file, key=self.key, value=self.value, choices=self.choices)


@contextlib.contextmanager
def recipe_file(file: str | None) -> Iterator[None]:
    """Inside the block, a RecipeError that names no file is raised again naming ``file``."""
    try:
        yield
    except RecipeError as exc:
        if exc.file is not None or file is None:
            raise
        raise exc.in_file(file) from exc


class DataError(I2IError):
    """A data set or image problem: names the path and what was expected."""


def check_count(option: str, value: Any) -> None:
    """A command-line count (``--batch-size``, ``--samples`` ...) that must be a positive integer, or None."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise I2IError(f"{option} must be a positive integer, got {value!r}")
