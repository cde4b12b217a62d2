#!/usr/bin/env bash
# Unpack Debian SUITE's docker.io, containerd and docker-buildx into PREFIX, for a test
# daemon of another Docker version (install-docker26.sh: trixie, install-docker28.sh:
# sid). Installs nothing system-wide: the packages are downloaded with a throwaway apt
# state, through the system's own sources with the suite renamed (sid has no security
# or updates suite: those entries are left out for it).
#
# runc is deliberately not taken from SUITE: its build needs a newer glibc than
# bookworm's and fails to start here ("GLIBC_2.38 not found"), which makes every RUN
# step and container fail. The bookworm runc that `apt-get install docker.io` brings in
# (/usr/sbin/runc, 1.1.x) works with these dockerd and containerd, so the prefix holds
# no runc and PATH finds it.
set -euo pipefail
suite=$1
prefix=$2

# Drop a runc in the prefix that cannot run here (left by an older version of these
# scripts), so that the system runc is found instead.
drop_broken_runc() {
  local r
  for r in "$prefix/usr/sbin/runc" "$prefix/usr/bin/runc"; do
    if [ -e "$r" ] || [ -L "$r" ]; then
      if ! "$r" --version >/dev/null 2>&1; then rm -f "$r"; fi
    fi
  done
}

if [ -x "$prefix/usr/sbin/dockerd" ] && [ -x "$prefix/usr/bin/containerd" ] \
   && [ -x "$prefix/usr/libexec/docker/cli-plugins/docker-buildx" ]; then
  drop_broken_runc
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "$suite" = sid ]; then
  # Paragraph by paragraph: no security entry, and no bookworm-updates in the suites.
  awk -v RS= -v ORS='\n\n' '!/security/ { gsub(/ bookworm-updates/, ""); print }' \
    /etc/apt/sources.list.d/debian.sources | sed "s/bookworm/$suite/g" > "$work/$suite.sources"
else
  sed "s/bookworm/$suite/g" /etc/apt/sources.list.d/debian.sources > "$work/$suite.sources"
fi
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
opts=(-o "Dir::Etc::SourceList=$work/$suite.sources" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
apt-get "${opts[@]}" update -qq
(cd "$work" && apt-get "${opts[@]}" download docker.io containerd docker-buildx)
mkdir -p "$prefix"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$prefix"; done
drop_broken_runc
mkdir -p "$prefix/cli-plugins"
ln -sf "$prefix/usr/libexec/docker/cli-plugins/docker-buildx" "$prefix/cli-plugins/docker-buildx"
if ! command -v runc >/dev/null 2>&1; then
  echo "install-debian-docker: no runc on PATH; install Debian's runc (apt-get install docker.io)" >&2
  exit 1
fi
"$prefix/usr/sbin/dockerd" --version
