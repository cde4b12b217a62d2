"""dockerdu/_walkdir.c: one directory listed and stat'ed in C."""

Dirs = list[tuple[str, int]]
Multi = list[tuple[int, int, int]]
Errors = list[tuple[str, int]]

def scan(fd: int, dev: int, /) -> tuple[int, int, int, int, int, Dirs, Multi, Errors, int]: ...
