#!/usr/bin/env bash
# Builds FerretDB v1 (SQLite backend) into a project-local folder, once.
# `go install .../cmd/ferretdb@v1.24.2` alone yields a binary that panics at start-up:
# the module zip lacks build/version/version.txt, which FerretDB's release tooling
# generates. So we fetch the same module with the Go toolchain, add that one file
# with the release's tag, and build the same main package.
set -euo pipefail
version="v1.24.2"
dest="${1:?usage: install-ferretdb.sh DEST_BINARY}"
if [[ -x "$dest" ]] && "$dest" --version 2>/dev/null | grep -q "version: ${version}"; then
  exit 0
fi
command -v go >/dev/null || { echo "install-ferretdb: Go is needed to build FerretDB (apt-get install golang, or https://go.dev/dl)" >&2; exit 1; }
src_dir=$(go mod download -json "github.com/FerretDB/FerretDB@${version}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -r "$src_dir" "$work/ferretdb"
chmod -R u+w "$work/ferretdb"
echo "$version" > "$work/ferretdb/build/version/version.txt"
mkdir -p "$(dirname "$dest")"
(cd "$work/ferretdb" && CGO_ENABLED=0 go build -trimpath -o "$dest.tmp" ./cmd/ferretdb)
mv "$dest.tmp" "$dest"
echo "install-ferretdb: built $("$dest" --version | head -1) into $dest"
