"""Readers: one per kind of file under a Docker root; bytes in, frozen records out."""
