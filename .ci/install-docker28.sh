#!/usr/bin/env bash
# Docker 28.5 + containerd 2.1 + buildx (Debian sid) in /opt/dockerdu-docker28 (or $1),
# for the integration tests' third daemon; see install-debian-docker.sh.
set -euo pipefail
exec bash "$(dirname "$0")/install-debian-docker.sh" sid "${1:-/opt/dockerdu-docker28}"
