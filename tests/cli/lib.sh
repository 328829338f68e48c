# Shared by the end-to-end CLI tests: source it, call `check` / `expect`, end with `finish`. It also makes
# $work, a scratch folder removed when the script exits.
failures=0
checks=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# check NAME STATUS [DETAIL]: passes when STATUS is 0; DETAIL is printed on failure.
check() {
  checks=$((checks + 1))
  if [[ $2 == 0 ]]; then
    printf 'ok   %s\n' "$1"
  else
    failures=$((failures + 1))
    printf 'FAIL %s\n%s\n' "$1" "${3:-}"
  fi
}

# expect NAME EXPECTED_EXIT PATTERN -- COMMAND...: runs COMMAND, checks its exit code and that its combined
# output matches the extended regular expression PATTERN.
expect() {
  local name=$1 want=$2 pattern=$3 output code
  shift 4
  output=$("$@" 2>&1)
  code=$?
  [[ $code == "$want" ]] && grep -Eq -- "$pattern" <<<"$output"
  check "$name" $? "exit $code (want $want), output:
$output
(wanted a match for: $pattern)"
}

# interrupt_after_epoch LOG COMMAND...: runs COMMAND (a `vit train`) in the background with its output in LOG,
# sends it SIGINT (Ctrl-C) once it has finished an epoch, and sets `code` to its exit code.
interrupt_after_epoch() {
  local log=$1 pid
  shift
  "$@" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q "epoch [0-9]*:" "$log" && break
    sleep 0.1
  done
  kill -INT "$pid"
  wait "$pid"
  code=$?
}

# finish: prints the tally; the script's exit status says whether all passed.
finish() {
  printf '%d passed, %d failed\n' $((checks - failures)) "$failures"
  [[ $failures == 0 ]]
}
