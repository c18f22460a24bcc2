#!/usr/bin/env bash
# Installs the PostgreSQL server from Debian's packages, once: FerretDB's default backend for
# tests and `make run` (tools/localstack/servers.py starts it as a process on loopback).
# Idempotent: does nothing when `initdb` and `postgres` are found (PATH or Debian's folder).
set -euo pipefail
for dir in "" /usr/lib/postgresql/*/bin/; do
  if [[ -x "${dir}initdb" && -x "${dir}postgres" ]] || { [[ -z "$dir" ]] && command -v initdb >/dev/null && command -v postgres >/dev/null; }; then
    exit 0
  fi
done
if [[ "$(id -u)" != "0" ]]; then
  echo "install-postgresql: run as root, or: sudo apt-get install -y postgresql" >&2
  echo "  (or FERRETDB_BACKEND=sqlite for FerretDB's SQLite backend)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
echo "install-postgresql: $(ls -d /usr/lib/postgresql/*/bin | tail -1)"
