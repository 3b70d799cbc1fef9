#!/usr/bin/env bash
# Compiles protos/copyloop/v1/*.proto (with google/protobuf imports) into one descriptor set,
# deploy/loadtest/copyloop.protoset, so ghz, grpcurl and bench/load.py need neither the .proto
# files nor server reflection. The output is generated (gitignored): re-run after proto changes.
#   deploy/loadtest/build_protoset.sh [OUTPUT]        # PYTHON=... to use another interpreter
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${1:-$ROOT/deploy/loadtest/copyloop.protoset}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
cd "$ROOT"
"$PYTHON" -m grpc_tools.protoc -Iprotos --include_imports --include_source_info \
  --descriptor_set_out="$OUT" protos/copyloop/v1/*.proto
echo "wrote $OUT"
