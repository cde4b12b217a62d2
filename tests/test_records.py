"""`@record` behaves as `@dataclass(frozen=True)` for everything dockerdu does with its records."""

from __future__ import annotations

import dataclasses
import importlib
import pickle
import pkgutil
from typing import Any

import pytest

import dockerdu
from dockerdu.records import record


@record
class Point:
    """A record with every kind of field a record may have."""

    x: int
    y: str = "y"
    tags: tuple[str, ...] = ()
    extra: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Twin:
    """Point as a frozen dataclass."""

    x: int
    y: str = "y"
    tags: tuple[str, ...] = ()
    extra: dict[str, int] = dataclasses.field(default_factory=dict)


CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((1,), {}),
    ((1, "b"), {}),
    ((1, "b", ("t",), {"k": 1}), {}),
    ((), {"x": 2, "extra": {"a": 1}}),
    ((3,), {"tags": ("u", "v")}),
]


def _same(p: Any, t: Any) -> None:
    assert dataclasses.asdict(p) == dataclasses.asdict(t)
    assert dataclasses.astuple(p) == dataclasses.astuple(t)
    assert repr(p) == repr(t).replace("Twin(", "Point(")


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_constructed_as_a_frozen_dataclass(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    p, t = Point(*args, **kwargs), Twin(*args, **kwargs)
    _same(p, t)
    other: Any = t
    fields: Any = dataclasses.astuple(p)
    assert p == Point(*args, **kwargs) and p != other and p != fields
    for obj in (p, t):  # a dict field: unhashable, as a frozen dataclass's
        with pytest.raises(TypeError, match="unhashable"):
            hash(obj)
    _same(dataclasses.replace(p, y="r"), dataclasses.replace(t, y="r"))
    _same(pickle.loads(pickle.dumps(p)), t)
    assert pickle.loads(pickle.dumps(p)) == p
    assert Point.__match_args__ == Twin.__match_args__
    assert [f.name for f in dataclasses.fields(Point)] == [f.name for f in dataclasses.fields(Twin)]
    assert dataclasses.is_dataclass(p)


def test_a_fresh_default_each_time_and_no_field_changes() -> None:
    a, b = Point(1), Point(1)
    assert a.extra is not b.extra and a == b
    objs: list[Any] = [a, Twin(1)]
    for obj in objs:
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.x = 2
        with pytest.raises(dataclasses.FrozenInstanceError):
            del obj.y
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.other = 1


@pytest.mark.parametrize(
    ("args", "kwargs"), [((), {}), ((1, "b", (), {}, 5), {}), ((1,), {"x": 2}), ((1,), {"z": 2})]
)
def test_bad_arguments_are_refused_as_by_a_dataclass(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        Twin(*args, **kwargs)
    with pytest.raises(TypeError):
        Point(*args, **kwargs)


def test_what_a_record_cannot_hold_is_refused_when_defined() -> None:
    with pytest.raises(TypeError, match="plain fields"):

        @record
        class Hidden:
            """A field left out of repr."""

            x: int = dataclasses.field(default=0, repr=False)

    with pytest.raises(TypeError, match="__post_init__"):

        @record
        class Checked:
            """A record that checks itself."""

            x: int

            def __post_init__(self) -> None:
                pass


def test_every_record_of_dockerdu_is_equal_to_its_dataclass_twin() -> None:
    found: list[Any] = []
    for info in pkgutil.walk_packages(dockerdu.__path__, "dockerdu."):
        if info.name == "dockerdu.__main__":
            continue
        module = importlib.import_module(info.name)
        found.extend(
            obj
            for obj in vars(module).values()
            if isinstance(obj, type) and "__record_names__" in vars(obj) and obj.__module__ == info.name
        )
    assert len(found) >= 20
    for cls in found:
        fields = dataclasses.fields(cls)
        twin = dataclasses.make_dataclass(
            cls.__name__,
            [
                (f.name, Any, dataclasses.field(default=f.default, default_factory=f.default_factory))
                for f in fields
            ],
            frozen=True,
        )
        twin.__qualname__ = cls.__qualname__
        values = [f"v{i}" for i in range(len(fields))]
        mine, theirs = cls(*values), twin(*values)
        assert repr(mine) == repr(theirs) and hash(mine) == hash(theirs)
        assert dataclasses.asdict(mine) == dataclasses.asdict(theirs)
        assert cls.__doc__
