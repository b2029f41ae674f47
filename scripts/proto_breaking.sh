#!/usr/bin/env bash
# Wire-compatibility check of proto/ against what main had before: against origin/main when this
# clone has it and HEAD differs from it, else against the previous commit; uncommitted changes
# are compared with HEAD as well. Offline: buf reads the git history of this clone.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=node_modules/.bin/buf
against() {
  local ref=$1
  if git cat-file -e "$ref:proto/buf.yaml" 2>/dev/null; then
    echo "buf breaking against $ref"
    "$BUF" breaking proto --against ".git#ref=$ref,subdir=proto"
  fi
}
if git rev-parse -q --verify origin/main >/dev/null && [ "$(git rev-parse HEAD)" != "$(git rev-parse origin/main)" ]; then
  against "$(git merge-base HEAD origin/main)"
elif git rev-parse -q --verify HEAD~1 >/dev/null; then
  against HEAD~1
fi
if ! git diff --quiet HEAD -- proto 2>/dev/null; then
  against HEAD
fi
echo "proto wire compatibility: ok"
