#!/usr/bin/env bash
# Validates the Kubernetes Indexed Jobs `mixbench plan --emit k8s` writes against the Kubernetes
# OpenAPI schema with a real validator (kubernetes-validate from PyPI, `--strict`: unknown
# fields are errors), for every suite's smoke profile and Table 1's paper profile with and
# without GPUs; then requires the validator to refuse a broken Job, or it checks nothing.
#
#   tools/cluster/k8s_validate.sh MIXBENCH_BINARY
set -euo pipefail
bin=$(realpath "${1:?usage: k8s_validate.sh MIXBENCH_BINARY}")
cd "$(dirname "$0")/../.."
venv="$HOME/.cache/mixbench-kubernetes-validate"
[ -x "$venv/bin/kubernetes-validate" ] || {
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q kubernetes-validate==1.37.0
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
for f in suites/*.yaml; do
  id=$(basename "$f" .yaml)
  "$bin" plan "$id" --profile smoke --shards 3 --emit k8s > "$tmp/$id-smoke.yaml"
  n=$((n + 1))
done
"$bin" plan table1 --profile paper --shards 8 --emit k8s > "$tmp/table1-paper-gpu.yaml"
"$bin" plan table1 --profile paper --shards 8 --emit k8s --gpus 0 --image registry.example/mixbench:cpu > "$tmp/table1-paper-cpu.yaml"
"$venv/bin/kubernetes-validate" --strict --quiet "$tmp"/*.yaml
echo "k8s: $((n + 2)) emitted Jobs valid against the Kubernetes OpenAPI schema (kubernetes-validate $("$venv/bin/kubernetes-validate" --version) --strict); a planted unknown field is refused"
sed 's/^\(  completionMode: Indexed\)$/\1\n  noSuchField: 1/' "$tmp/table1-paper-gpu.yaml" > "$tmp/broken.yaml.bad"
grep -q noSuchField "$tmp/broken.yaml.bad" || { echo "could not plant the broken field" >&2; exit 1; }
if "$venv/bin/kubernetes-validate" --strict --quiet "$tmp/broken.yaml.bad" > /dev/null 2>&1; then
  echo "kubernetes-validate passed a Job with an unknown field: it checks nothing" >&2
  exit 1
fi
