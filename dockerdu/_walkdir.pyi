"""dockerdu/_walkdir.c: a directory's subtree listed and stat'ed in C."""

Dirs = list[tuple[str, int]]
Multi = list[tuple[int, int, int]]
Errors = list[tuple[str, int]]
ScanResult = tuple[int, int, int, int, int, Dirs, Multi, Errors, int]

def scan(fd: int, dev: int, depth: int = 0, /) -> ScanResult: ...
