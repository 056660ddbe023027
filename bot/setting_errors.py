"""A bad setting in one line a person can act on: the environment variable's name and the form it expects
("TELEGRAM_ALLOWED_IDS must be a JSON list of ids, e.g. [123, -100456]"), never pydantic's field path."""

from __future__ import annotations

import re
import typing

from annotated_types import Ge, Le
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError

from core import config


def setting_problem(error: ValidationError, *, name_only: bool = False) -> str:
    """The first problem of a settings group's ValidationError. name_only: leave out the variable's name (when a
    command-line flag set the value, the caller names the flag)."""
    problem = error.errors()[0]
    field = str(problem["loc"][0]) if problem["loc"] else ""
    group = getattr(config, error.title, None)
    info = group.model_fields.get(field) if group is not None else None
    if info is None:
        return f"bad setting {field}: {problem['msg']}"
    variable = (group.model_config.get("env_prefix", "") + field).upper()
    expected = _expected(info.annotation, info.metadata, info.default)
    line = f"must be {expected}" if expected else f"is not accepted: {problem['msg']}"
    return line if name_only else f"{variable} {line}"


def unreadable_setting(error: SettingsError) -> str:
    """A value the settings could not even parse (not JSON where a list is expected), named the same way."""
    named = re.search(r'field "([^"]+)"', str(error))
    for group in vars(config).values():
        if not (isinstance(group, type) and issubclass(group, BaseSettings) and named
                and named.group(1) in group.model_fields):
            continue
        try:
            group()
        except SettingsError:
            info = group.model_fields[named.group(1)]
            variable = (group.model_config.get("env_prefix", "") + named.group(1)).upper()
            expected = _expected(info.annotation, info.metadata, info.default)
            return f"{variable} must be {expected}" if expected else f"{variable} could not be read"
    return f"a setting could not be read: {error}"


def _expected(annotation, metadata, default) -> str:
    """The accepted form of a field, in words, with its range and default where it has them."""
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is typing.Union and len(args) == 1:
        annotation, origin, args = args[0], typing.get_origin(args[0]), list(typing.get_args(args[0]))
    low = next((item.ge for item in metadata if isinstance(item, Ge)), None)
    high = next((item.le for item in metadata if isinstance(item, Le)), None)
    bounds = (f" from {low} to {high}" if low is not None and high is not None
              else f" of at least {low}" if low is not None else f" of at most {high}" if high is not None else "")
    default_note = f" (default {default})" if default not in (None, set()) else ""
    if origin is set and args == [int]:
        return "a JSON list of ids, e.g. [123, -100456]"
    if origin is set and args == [str]:
        return 'a JSON list of names, e.g. ["telegram:12345", "discord:67890"]'
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, args)) + default_note
    if annotation is bool:
        return "true or false" + default_note
    if annotation is int:
        return "a whole number" + bounds + default_note
    if annotation is float:
        return "a number" + bounds + default_note
    return ""
