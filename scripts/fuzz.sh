#!/usr/bin/env bash
# Runs every fuzz target (tests/fuzz) for SECONDS each, longer than CI's bounded run: two at a time, each from its
# seed corpus plus what earlier runs found (build-hardening/tests/fuzz/corpus). A finding is saved as
# build-hardening/fuzz-findings/<target>-crash-<hash>; replay it with build-hardening/tests/fuzz/fuzz_<target> FILE.
# usage: scripts/fuzz.sh SECONDS
set -euo pipefail
[[ ${1:-} =~ ^[0-9]+$ ]] || { echo "usage: $0 SECONDS" >&2; exit 2; }
exec bash "$(dirname "$0")/hardening.sh" --fuzz-only "$1"
