"""The one safe file-system layer: fd-anchored opens, mount rules, guarded removal and moves."""
