"""The run-limit options (``--timeout``, ``--cpus``, ``--memory``, ...), declared once: one typer option per row
of core's ``LIMIT_OPTIONS``, added to each command that replays, which receives them parsed as ``limits``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from replay.core.limits import LIMIT_OPTIONS, parse_limits


def with_limits(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` takes ``limits: RunLimits``; typer sees one option per limit in its place."""
    sig = inspect.signature(command, eval_str=True)  # typer reads this signature as it is
    params = [p for p in sig.parameters.values() if p.name != "limits"]
    params += [inspect.Parameter(o.field, inspect.Parameter.KEYWORD_ONLY, default=None,
                                 annotation=Annotated[o.type | None, typer.Option(o.flag, help=o.help)])
               for o in LIMIT_OPTIONS]

    @functools.wraps(command)
    def parsed(**kwargs: Any) -> Any:
        given = {o.field: kwargs.pop(o.field) for o in LIMIT_OPTIONS}
        return command(**kwargs, limits=parse_limits(given))

    parsed.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    # typer resolves the annotations it reads; ``limits`` is not one of its parameters.
    parsed.__annotations__ = {k: v for k, v in command.__annotations__.items() if k != "limits"}
    return parsed
