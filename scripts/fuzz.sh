#!/usr/bin/env bash
# Runs every Go fuzz target of the module, one after the other, for FUZZTIME
# each (default 10s): `make test` runs them for a few seconds, `make fuzz` for
# a minute. Targets are found, not listed: every `func FuzzXxx(f *testing.F)`
# in a _test.go file, so a target someone adds is run without editing this
# script. Each run is
#   go test -run '^$' -fuzz '^FuzzXxx$' -fuzztime $FUZZTIME ./pkg
# (`go test -fuzz` takes one package and one target at a time).
#
# A bare "context deadline exceeded" with nothing written is Go 1.26's fuzz
# coordinator racing its own -fuzztime deadline (golang/go#75804): such a
# target is run again, and not counted as broken.
#
# A target that fails has written the input that broke it to
# pkg/testdata/fuzz/FuzzXxx/<hash>: the script goes on with the other targets,
# then names every such file and the command that replays it, and exits 1.
# Commit the file with the fix: it stays in the seed corpus, so plain
# `go test` replays it for ever.
#
# Environment: FUZZTIME (a go test -fuzztime value: 10s, 1m, 5000x),
# FUZZPARALLEL (go test -parallel for the fuzzing workers; default: Go's,
# one per CPU), FUZZ (a regular expression: run only matching targets),
# GO (the go command).
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
FUZZ=${FUZZ:-.}
parallel=()
if [[ -n "${FUZZPARALLEL:-}" ]]; then
	parallel=(-parallel "$FUZZPARALLEL")
fi

# "dir name" pairs, from the test files themselves (grep needs no build, and
# vendored or testdata trees are skipped).
mapfile -t targets < <(
	grep -rEo --include='*_test.go' --exclude-dir=testdata --exclude-dir=vendor --exclude-dir=node_modules \
		'^func Fuzz[A-Za-z0-9_]*\(' . |
		sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#\1 \2#' |
		sort -u
)
if [[ ${#targets[@]} -eq 0 ]]; then
	echo "fuzz.sh: no Fuzz functions found under $(pwd)" >&2
	exit 1
fi

failed=()
ran=0
for t in "${targets[@]}"; do
	dir=${t% *}
	name=${t#* }
	[[ $name =~ $FUZZ ]] || continue
	corpus="$dir/testdata/fuzz/$name"
	before=$(ls "$corpus" 2>/dev/null | sort || true)
	echo "== $name ($dir, $FUZZTIME)"
	ran=$((ran + 1))
	fuzzed=0
	for attempt in 1 2; do
		if out=$("$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "${parallel[@]}" "$dir" 2>&1); then
			fuzzed=1
			break
		fi
		after=$(ls "$corpus" 2>/dev/null | sort || true)
		new=$(comm -13 <(echo "$before") <(echo "$after") | sed '/^$/d')
		# Go 1.26's fuzz coordinator can report its own -fuzztime deadline
		# as a failure (golang/go#75804, fixed in Go 1.27): a bare "context
		# deadline exceeded" with no input written is that, not a finding.
		# It is run once more; a second bare deadline is reported and let
		# pass. Anything else (an input written, a panic, a failed seed)
		# fails as before.
		if [[ -z $new && $out == *"context deadline exceeded"* && $out != *"Failing input written"* && $out != *"panic:"* ]]; then
			if [[ $attempt -eq 1 ]]; then
				echo "   (the Go fuzz coordinator's deadline race, golang/go#75804: running $name again)"
				continue
			fi
			echo "   (the deadline race again, no input written: not a finding)"
			fuzzed=2
		fi
		break
	done
	if [[ $fuzzed -eq 1 ]]; then
		echo "$out" | tail -n 1
		continue
	elif [[ $fuzzed -eq 2 ]]; then
		continue
	fi
	echo "$out" | tail -n 40
	# The inputs the failing run added to the corpus.
	after=$(ls "$corpus" 2>/dev/null | sort || true)
	new=$(comm -13 <(echo "$before") <(echo "$after") | sed '/^$/d')
	if [[ -z $new ]]; then
		failed+=("$name ($dir): failed without writing an input (a seed of its corpus, or the build; see above)")
	fi
	for f in $new; do
		failed+=("$name ($dir): $corpus/$f   replay: $GO test -run '^${name}/${f}\$' $dir")
	done
done

if [[ $ran -eq 0 ]]; then
	echo "fuzz.sh: no Fuzz function matches FUZZ=$FUZZ" >&2
	exit 1
fi
if [[ ${#failed[@]} -gt 0 ]]; then
	echo >&2
	echo "fuzz.sh: FAILED, ${#failed[@]} of $ran targets broke; the inputs that broke them:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz.sh: all $ran fuzz targets passed ($FUZZTIME each)"
