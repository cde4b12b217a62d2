"""`@record`: a frozen dataclass whose methods are shared, not generated at import.

`@dataclass(frozen=True)` compiles six methods from source for every class it makes
(__init__, __repr__, __eq__, __hash__, __setattr__, __delattr__): for the few dozen
record types a report uses, that was a sixth of a cached report's time. A `record` is
a dataclass to everything that asks (`dataclasses.fields`, `asdict`, `replace`,
`is_dataclass`; type checkers see a frozen dataclass) and behaves as a frozen one: the
same constructor, equality, hash and repr, and no field can be assigned or deleted.
Plain fields only: defaults and default factories, no InitVar, kw_only or
__post_init__, every field in init, repr, eq and hash.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: Any) -> Any:
        return lambda f: f


_T = TypeVar("_T")
_MISSING: Any = dataclasses.MISSING


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    spec = self.__record_init__
    if len(args) > len(spec):
        raise TypeError(f"{type(self).__qualname__}() takes {len(spec)} arguments, {len(args)} given")
    put = object.__setattr__
    for (name, _, _), value in zip(spec, args, strict=False):
        put(self, name, value)
    for name, default, factory in spec[len(args) :]:
        if name in kwargs:
            value = kwargs.pop(name)
        elif default is not _MISSING:
            value = default
        elif factory is not _MISSING:
            value = factory()
        else:
            raise TypeError(f"{type(self).__qualname__}() missing argument {name!r}")
        put(self, name, value)
    if kwargs:
        raise TypeError(f"{type(self).__qualname__}() got unexpected or repeated arguments {sorted(kwargs)}")


def _key(self: Any) -> tuple[Any, ...]:
    return tuple([getattr(self, name) for name in self.__record_names__])


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        return _key(self) == _key(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(_key(self))


def _repr(self: Any) -> str:
    fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_names__)
    return f"{self.__class__.__qualname__}({fields})"


def _setattr(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(cls: type[_T]) -> type[_T]:
    """`cls` as a frozen dataclass (see the module's docstring)."""
    documented = bool(cls.__doc__)
    # Fields, __match_args__ and the class attributes of defaults, without generated methods.
    made: Any = dataclasses.dataclass(init=False, repr=False, eq=False)(cls)
    fields = dataclasses.fields(made)
    if len(fields) != len(made.__dataclass_fields__):
        raise TypeError(f"{cls.__qualname__}: a record has no ClassVar or InitVar fields")
    for f in fields:
        if not (f.init and f.repr and f.compare and f.hash is None and not f.kw_only):
            raise TypeError(f"{cls.__qualname__}.{f.name}: a record has plain fields only")
    if hasattr(made, "__post_init__"):
        raise TypeError(f"{cls.__qualname__}: a record has no __post_init__")
    names = tuple(f.name for f in fields)
    if not documented:  # as a dataclass's: its signature
        made.__doc__ = f"{cls.__name__}({', '.join(f'{f.name}: {f.type}' for f in fields)})"
    made.__record_names__ = names
    made.__record_init__ = tuple((f.name, f.default, f.default_factory) for f in fields)
    made.__init__ = _init
    made.__repr__ = _repr
    made.__eq__ = _eq
    made.__hash__ = _hash
    made.__setattr__ = _setattr
    made.__delattr__ = _delattr
    return cls
