#!/usr/bin/env bash
# Docker 26.1 + containerd 1.7 + buildx (Debian trixie) in /opt/dockerdu-docker26 (or $1),
# for the integration tests' second daemon; see install-debian-docker.sh.
set -euo pipefail
exec bash "$(dirname "$0")/install-debian-docker.sh" trixie "${1:-/opt/dockerdu-docker26}"
