#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 2m each; first argument
# overrides, e.g. scripts/fuzz.sh 30s). Not part of the default `go test`:
# there, only the seed corpora run. A failing input is saved by go test under
# <package>/testdata/fuzz/<Target>/; fix the bug and commit the file, so the
# input stays in the seed corpus for good.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-2m}

targets=$(grep -rhoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' . | sort -u | sed 's/^func //')
status=0
for target in $targets; do
  pkg=$(grep -rlE --include='*_test.go' "^func ${target}\(" . | head -n 1 | xargs dirname)
  printf '\n== %s in %s for %s\n' "$target" "$pkg" "$fuzztime"
  if ! go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" -fuzzminimizetime=10s "$pkg"; then
    status=1
    echo "!! $target found a failing input: see $pkg/testdata/fuzz/$target/"
  fi
done
if [ -n "$(git status --porcelain -- '*/testdata/fuzz/*' 2>/dev/null)" ]; then
  echo; echo "New corpus files (fix, then commit them):"; git status --porcelain -- '*/testdata/fuzz/*'
fi
exit $status
