#!/usr/bin/env bash
# Runs every go-test fuzz target of the module, one at a time (-fuzz takes
# one target per package invocation), each for a bounded budget.
#
#   FUZZTIME          budget per target (default 20000x; go's -fuzztime syntax,
#                     so "500x" means 500 executions)
#   FUZZMINIMIZETIME  bound on minimising a failing input (default 10s)
#   FUZZPARALLEL      fuzzing workers per target (default: GOMAXPROCS)
#
# Targets are found in the source (func FuzzXxx(f *testing.F) in a
# *_test.go file), so a new target runs without editing this script. Every
# target runs even after a failure; the script exits non-zero if any failed.
# A failing input is written to <pkg>/testdata/fuzz/<Target>/: fix the bug
# and commit that file, so plain `go test` replays it from then on.
# Run from anywhere: bash .ci/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob

# A count, not a duration: with a duration Go 1.26's fuzz coordinator can
# report a spurious "context deadline exceeded" failure, with no crashing
# input, when the time runs out on a loaded machine (golang/go#75804, fixed
# in Go 1.27). A count has no deadline to race.
FUZZTIME=${FUZZTIME:-20000x}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-10s}
parallel=()
if [ -n "${FUZZPARALLEL:-}" ]; then
  parallel=(-parallel "$FUZZPARALLEL")
fi

root=$PWD
targets=()
while IFS= read -r dir; do
  files=("$dir"/*_test.go)
  [ ${#files[@]} -gt 0 ] || continue
  pkg=.${dir#"$root"}
  while IFS= read -r name; do
    targets+=("$pkg $name")
  done < <(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\).*/\1/p' "${files[@]}" | sort -u)
done < <(go list -f '{{.Dir}}' ./...)

if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi

failed=()
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  echo "== fuzz $pkg $name for $FUZZTIME"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" \
      -fuzzminimizetime "$FUZZMINIMIZETIME" "${parallel[@]}" "$pkg"; then
    failed+=("$pkg $name")
  fi
done

echo "== fuzz: ${#targets[@]} targets, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  printf '   FAILED %s\n' "${failed[@]}"
  echo "   failing inputs are in <pkg>/testdata/fuzz/<Target>/ (see git status)"
  exit 1
fi
