"""The image stores a Docker root may hold, each in its own package, behind `interface.Store`."""
