"""`parameterized.expand`, the only part of the `parameterized` package the common tests use.

Each parameter (a tuple of arguments, or one argument) becomes a method of the class being
defined, named `<test>_<index>_<first argument>` as the package names them; the undecorated
function is hidden from test runners."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from typing import Any


def _case(func: Callable, args: tuple, name: str) -> Callable:
    def case(self: Any) -> Any:
        return func(self, *args)

    case.__name__ = case.__qualname__ = name
    case.__doc__ = func.__doc__
    case.__dict__.update(func.__dict__)  # skip marks and the like of the lower decorators
    return case


class parameterized:  # noqa: N801 - the package's own spelling
    @staticmethod
    def expand(params: Iterable[Any], **_: Any) -> Callable:
        def decorator(func: Callable) -> Callable:
            namespace = inspect.currentframe().f_back.f_locals
            for index, param in enumerate(params):
                args = param if isinstance(param, tuple) else (param,)
                suffix = re.sub(r"\W+", "_", str(args[0])).strip("_") if args else ""
                name = f"{func.__name__}_{index}" + (f"_{suffix}" if suffix else "")
                namespace[name] = _case(func, args, name)
            func.__test__ = False
            return func

        return decorator
