"""The containerd image store: Docker's namespace in a managed or a system containerd's root."""
