#!/usr/bin/env bash
# Builds Prometheus' promtool (checks and unit-tests deploy/observability/alerts.yml) into a
# project-local folder, once, from the Go module proxy: the same source as the release of the
# Prometheus version that deploy/compose.yaml runs (module v0.X.Y = Prometheus v3.X.Y).
set -euo pipefail
module_version="v0.316.0"
dest="${1:?usage: install-promtool.sh DEST_BINARY}"
stamp="$dest.version"
if [[ -x "$dest" && -f "$stamp" && "$(cat "$stamp")" == "$module_version" ]]; then
  exit 0
fi
command -v go >/dev/null || { echo "install-promtool: Go is needed to build promtool (apt-get install golang, or https://go.dev/dl)" >&2; exit 1; }
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
mkdir -p "$(dirname "$dest")"
GOBIN="$work" CGO_ENABLED=0 go install -trimpath "github.com/prometheus/prometheus/cmd/promtool@${module_version}"
mv "$work/promtool" "$dest"
echo "$module_version" > "$stamp"
echo "install-promtool: built promtool ${module_version} into $dest"
