#!/usr/bin/env bash
# End-to-end checks of `vit` downloading models named by Hugging Face Hub id, against a fake Hub on this machine
# (tests/hub/fake_hub.py: a "hub" and a "cdn" on two local ports): the cache laid out as huggingface_hub lays it,
# the token sent to the Hub only, no download when the cache is current, offline and unreachable-Hub runs served
# from the cache, a cache written by Python, a transformers repo, cut and corrupted downloads leaving nothing
# behind, a corrupted blob on disk downloaded again, the Hub's errors as messages, and `vit train --init` by id.
# The model is a short training run on make_classify_fixtures.py's images, as timm and Hugging Face folders
# (vit_to_checkpoints.py).
# usage: test_hub.sh VIT_BINARY [PYTHON]   (PYTHON needs torch and PIL; default /usr/bin/python3)
set -uo pipefail
vit=$1
python=${2:-/usr/bin/python3}
here=$(dirname "$0")
source "$here/lib.sh"

# The fake Hub runs in the background; it is stopped on exit, before lib.sh's own clean-up (kept as lib.sh set it).
hub_pid=
stop_hub() {
  if [[ -n $hub_pid ]]; then
    kill "$hub_pid" 2>/dev/null
    wait "$hub_pid" 2>/dev/null
    hub_pid=
  fi
}
lib_exit_trap=$(trap -p EXIT)  # trap -- 'rm -rf "$work"' EXIT
lib_exit_trap=${lib_exit_trap#"trap -- '"}
lib_exit_trap=${lib_exit_trap%"' EXIT"}
trap 'stop_hub; '"${lib_exit_trap:-rm -rf \"\$work\"}" EXIT
trap 'exit 130' INT  # so that the EXIT trap runs when the test is interrupted or killed
trap 'exit 143' TERM

# --- The model and the repos ------------------------------------------------------------------------------------

"$python" "$here/make_classify_fixtures.py" "$work" >/dev/null || { echo "FAIL fixtures"; exit 1; }
data=$work/data
"$vit" train "$data" --out "$work/run" --epochs 1 --model vit_mini_patch7_28 --in-chans 3 --embed-dim 32 --depth 1 \
  --num-heads 2 -b 4 --threads 1 --workers 1 --quiet >/dev/null 2>&1 || { echo "FAIL a small model trains"; exit 1; }
"$python" "$here/vit_to_checkpoints.py" "$work/run/last.safetensors" "$work/ckpt" ||
  { echo "FAIL checkpoints written in Python"; exit 1; }
timm=("$work/ckpt/timm/config.json" "$work/ckpt/timm/model.safetensors")

repos=$work/repos
# add_repo ORG/NAME FILE...: a repo of the fake Hub holding copies of the files.
add_repo() {
  local repo=$repos/$1
  shift
  mkdir -p "$repo" && cp "$@" "$repo/"
}
add_repo someone/tiny "${timm[@]}"
add_repo someone/tiny-hf "$work/ckpt/hf"/*
add_repo gated/tiny "${timm[@]}"
add_repo error/tiny "${timm[@]}"
add_repo someone/pickle "$work/ckpt/timm/config.json"
printf 'pickle weights, not read by vit\n' >"$repos/someone/pickle/pytorch_model.bin"
# The cdn finds LFS files by their sha256 among all repos and cuts or corrupts them by the repo's name: these
# repos' model.safetensors must differ from someone/tiny's (and from each other's). The same tensors with another
# __metadata__ are still valid safetensors files.
for variant in cut corrupt; do
  add_repo "someone/tiny-$variant" "$work/ckpt/timm/config.json"
  "$python" - "$work/ckpt/timm/model.safetensors" "$repos/someone/tiny-$variant/model.safetensors" "$variant" <<'PY' ||
import json, struct, sys
source, target, tag = sys.argv[1:]
data = open(source, "rb").read()
length = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + length])
header["__metadata__"] = dict(header.get("__metadata__") or {}, copy=tag)
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(target, "wb").write(struct.pack("<Q", len(text)) + text + data[8 + length:])
PY
    { echo "FAIL repo someone/tiny-$variant"; exit 1; }
done

# commit_of ORG/NAME: the fake Hub's commit for a repo.
commit_of() { printf '%s' "$1" | sha1sum | cut -c1-40; }
# sha256_of FILE
sha256_of() { sha256sum "$1" | cut -c1-64; }

# --- The fake Hub --------------------------------------------------------------------------------------------------

log=$work/requests.log
: >"$log"
# start_hub: starts the fake Hub (new ports each time) and points HF_ENDPOINT at it.
start_hub() {
  local line= i
  : >"$work/hub.out"
  "$python" "$here/../hub/fake_hub.py" "$repos" "$log" --timeout 600 >"$work/hub.out" 2>"$work/hub.err" &
  hub_pid=$!
  for ((i = 0; i < 100; i++)); do
    if read -r line <"$work/hub.out" && [[ $line =~ ^HUB=(http://[^ ]+)\ CDN=(http://[^ ]+)$ ]]; then
      hub=${BASH_REMATCH[1]}
      cdn=${BASH_REMATCH[2]}
      export HF_ENDPOINT=$hub
      return 0
    fi
    kill -0 "$hub_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL the fake Hub did not start: $(cat "$work/hub.out" "$work/hub.err")"
  exit 1
}
start_hub

export HF_HUB_CACHE=$work/cache HF_HOME=$work/hf-home HF_TOKEN=hf_good_token
unset HF_HUB_OFFLINE HUGGINGFACE_HUB_CACHE HUGGING_FACE_HUB_TOKEN HF_TOKEN_PATH
# Straight to 127.0.0.1, whatever proxy the environment names.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
cache=$HF_HUB_CACHE
tiny_sha=$(sha256_of "$repos/someone/tiny/model.safetensors")

# --- Helpers -------------------------------------------------------------------------------------------------------

# classify NAME MODEL [ARGS...]: vit classify MODEL on the images, as JSON lines with logits, into $work/NAME.jsonl
# (stderr: $work/NAME.err); returns vit's exit status.
classify() {
  local name=$1 model=$2
  shift 2
  "$vit" classify "$model" "$data" "$@" --format json -k 3 --logits >"$work/$name.jsonl" 2>"$work/$name.err"
}

# same_answers NAME RUN [REFERENCE_RUN]: $work/RUN.jsonl gives the reference run's answers (default: the timm
# folder's): the same paths, labels and logits to 1e-5.
same_answers() {
  local name=$1 run=$2 reference=${3:-reference} output
  output=$("$python" - "$work/$run.jsonl" "$work/$reference.jsonl" 2>&1 <<'PY'
import json, sys
got = [json.loads(line) for line in open(sys.argv[1])]
want = [json.loads(line) for line in open(sys.argv[2])]
assert len(got) == len(want) == 10, (len(got), len(want))
for a, b in zip(got, want):
    assert a["path"] == b["path"] and a["error"] is None, (a, b)
    assert [p["label"] for p in a["predictions"]] == [p["label"] for p in b["predictions"]], (a, b)
    assert max(abs(x - y) for x, y in zip(a["logits"], b["logits"])) <= 1e-5, (a, b)
PY
)
  check "$name" $? "$output
stderr of the run: $(cat "$work/$run.err")"
}

# check_log NAME FROM_LINE PYTHON: PYTHON asserts about `requests`, the log's JSON lines from line FROM_LINE
# (0-based) on.
check_log() {
  local name=$1 from=$2 code=$3 output
  output=$("$python" - "$log" "$from" 2>&1 <<PY
import json, sys
requests = [json.loads(line) for line in open(sys.argv[1])][int(sys.argv[2]):]
$code
PY
)
  check "$name" $? "$output
requests:
$(tail -n +$((from + 1)) "$log")"
}
log_lines() { wc -l <"$log"; }

# check_cache NAME PYTHON: PYTHON asserts about the cache; it has `cache`, `repos`, `files(folder)` (every path
# under a folder, links included), `commit_of`, `sha256`, `git_sha1`.
check_cache() {
  local name=$1 code=$2 output
  output=$("$python" - "$cache" "$repos" 2>&1 <<PY
import hashlib, os, sys
cache, repos = sys.argv[1:]
def files(folder):
    return [os.path.join(root, f) for root, dirs, names in os.walk(folder) for f in names + dirs]
def commit_of(repo):
    return hashlib.sha1(repo.encode()).hexdigest()
def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()
def git_sha1(path):
    data = open(path, "rb").read()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
$code
PY
)
  check "$name" $? "$output
cache: $(cd "$cache" 2>/dev/null && find . -printf '%p %l\n' | sort)"
}

# --- a. Download on first use ------------------------------------------------------------------------------------

classify reference "$work/ckpt/timm"
check "the timm folder: exit 0" $? "$(cat "$work/reference.err")"
classify a someone/tiny
check "someone/tiny: downloaded, exit 0" $? "$(cat "$work/a.err")"
same_answers "someone/tiny: the timm folder's labels and logits" a

# --- b. The cache as huggingface_hub lays it out -------------------------------------------------------------------

check_cache "the cache: refs/main, relative snapshot links into blobs named by etag, no .incomplete" "
repo = os.path.join(cache, 'models--someone--tiny')
commit = commit_of('someone/tiny')
ref = open(os.path.join(repo, 'refs', 'main'), 'rb').read()
assert ref == commit.encode(), ('refs/main holds', ref, 'not', commit)
for file, etag in (('config.json', git_sha1), ('model.safetensors', sha256)):
    link = os.path.join(repo, 'snapshots', commit, file)
    assert os.path.islink(link), (link, 'is not a symlink')
    source = os.path.join(repos, 'someone', 'tiny', file)
    assert os.readlink(link) == '../../blobs/' + etag(source), (file, os.readlink(link), etag(source))
    assert open(link, 'rb').read() == open(source, 'rb').read(), (file, 'differs from the repo')
left = [f for f in files(cache) if f.endswith('.incomplete')]
assert not left, left
"

# --- c. The token goes to the Hub, never to the cdn ----------------------------------------------------------------

check_log "the token: sent to every Hub request, to no cdn request" 0 "
hub = [r for r in requests if r['server'] == 'hub']
cdn = [r for r in requests if r['server'] == 'cdn']
assert hub and all(r['authorization'] == 'Bearer hf_good_token' for r in hub), hub
assert any(r['method'] == 'GET' and r['path'] == '/lfs/$tiny_sha' for r in cdn), ('model.safetensors not from the cdn', cdn)
assert all(r['authorization'] is None for r in cdn), cdn
"

# --- d. A current cache: metadata only -----------------------------------------------------------------------------

from=$(log_lines)
classify d someone/tiny
check "second run: exit 0" $? "$(cat "$work/d.err")"
same_answers "second run: the same answers" d
check_log "second run: only HEAD requests to the Hub, nothing downloaded" "$from" "
assert requests, 'no request: the cache was not checked against the Hub'
assert all(r['server'] == 'hub' and r['method'] == 'HEAD' for r in requests), requests
"

# --- e. Offline: no request at all ---------------------------------------------------------------------------------

: >"$log"
HF_HUB_OFFLINE=1 classify e someone/tiny
check "HF_HUB_OFFLINE=1: exit 0" $? "$(cat "$work/e.err")"
same_answers "HF_HUB_OFFLINE=1: the same answers" e
[[ ! -s $log ]]
check "HF_HUB_OFFLINE=1: no request" $? "$(cat "$log")"

# --- f. The Hub unreachable: the cache, with a warning -------------------------------------------------------------

stop_hub
classify f someone/tiny
check "Hub unreachable: exit 0 from the cache" $? "$(cat "$work/f.err")"
grep -q "using the cached" "$work/f.err"
check "Hub unreachable: a warning says the cached copy is used" $? "$(cat "$work/f.err")"
same_answers "Hub unreachable: the same answers" f
start_hub

# --- g. A cache written by Python (huggingface_hub's layout, made by hand) ----------------------------------------

py_commit=$(commit_of someone/py)
py_repo=$work/pycache/models--someone--py
mkdir -p "$py_repo/blobs" "$py_repo/refs" "$py_repo/snapshots/$py_commit"
printf '%s' "$py_commit" >"$py_repo/refs/main"
for file in config.json model.safetensors; do
  if [[ $file == *.safetensors ]]; then
    etag=$(sha256_of "$work/ckpt/timm/$file")
  else
    etag=$(git hash-object "$work/ckpt/timm/$file" 2>/dev/null || echo "blob-$file")
  fi
  cp "$work/ckpt/timm/$file" "$py_repo/blobs/$etag"
  ln -s "../../blobs/$etag" "$py_repo/snapshots/$py_commit/$file"
done
from=$(log_lines)
HF_HUB_OFFLINE=1 HF_HUB_CACHE=$work/pycache classify g someone/py
check "a cache written by Python: exit 0" $? "$(cat "$work/g.err")"
same_answers "a cache written by Python: the same answers" g
check_log "a cache written by Python, offline: no request" "$from" "assert not requests, requests"

# --- h. A transformers repo ----------------------------------------------------------------------------------------

classify hf_reference "$work/ckpt/hf"
check "the Hugging Face folder: exit 0" $? "$(cat "$work/hf_reference.err")"
classify h hf-hub:someone/tiny-hf@main
check "hf-hub:someone/tiny-hf@main: exit 0" $? "$(cat "$work/h.err")"
same_answers "hf-hub:someone/tiny-hf@main: the Hugging Face folder's answers" h hf_reference
check_cache "hf-hub:someone/tiny-hf@main: preprocessor_config.json downloaded too" "
snapshot = os.path.join(cache, 'models--someone--tiny-hf', 'snapshots', commit_of('someone/tiny-hf'))
for file in ('config.json', 'model.safetensors', 'preprocessor_config.json'):
    assert open(os.path.join(snapshot, file), 'rb').read() == open(os.path.join(repos, 'someone', 'tiny-hf', file), 'rb').read(), file
"

# --- i. A download cut short leaves nothing behind -----------------------------------------------------------------

# nothing_left NAME REPO: a failed download of REPO's weights left no blob, no snapshot link, no .incomplete file.
nothing_left() {
  check_cache "$1: no blob, no snapshot link, no .incomplete" "
repo = os.path.join(cache, 'models--someone--$2')
sha = sha256(os.path.join(repos, 'someone', '$2', 'model.safetensors'))
assert not os.path.lexists(os.path.join(repo, 'blobs', sha)), 'the blob was kept'
assert not [f for f in files(repo) if os.path.basename(f) == 'model.safetensors'], 'a snapshot link was made'
assert not [f for f in files(cache) if f.endswith('.incomplete')], 'an .incomplete file was left'
"
}

expect "a download cut short: exit 2" 2 "incomplete" -- "$vit" classify someone/tiny-cut "$data"
nothing_left "a download cut short" tiny-cut
# The cdn cuts each file once: the rerun downloads it whole.
expect "a download cut short: a rerun succeeds" 0 "bright|dark|mid" -- "$vit" classify someone/tiny-cut "$data"

# --- j. Corrupted bytes: on disk, downloaded again; from the cdn, refused -----------------------------------------

blob=$cache/models--someone--tiny/blobs/$tiny_sha
chmod u+w "$blob" 2>/dev/null
"$python" -c "import os, sys; size = os.path.getsize(sys.argv[1]); open(sys.argv[1], 'r+b').write(bytes(size))" "$blob"
[[ $(sha256_of "$blob") != "$tiny_sha" ]]
check "a corrupted blob: overwritten with other bytes of the same length" $?
from=$(log_lines)
classify j someone/tiny
check "a corrupted blob: exit 0" $? "$(cat "$work/j.err")"
same_answers "a corrupted blob: the same answers" j
check_log "a corrupted blob: downloaded again from the cdn" "$from" "
assert any(r['server'] == 'cdn' and r['method'] == 'GET' and r['path'] == '/lfs/$tiny_sha' for r in requests), requests
"
[[ $(sha256_of "$blob") == "$tiny_sha" ]]
check "a corrupted blob: its sha256 is right again" $?

expect "wrong bytes from the cdn: exit 2" 2 "sha256" -- "$vit" classify someone/tiny-corrupt "$data"
nothing_left "wrong bytes from the cdn" tiny-corrupt

# --- k. The Hub's errors -------------------------------------------------------------------------------------------

expect "a repo that does not exist" 2 "not found" -- "$vit" classify x/missing "$data"
expect "a gated repo with a refused token" 2 "gated" -- env HF_TOKEN=wrong "$vit" classify gated/tiny "$data"
expect "a gated repo with a good token" 0 "bright|dark|mid" -- "$vit" classify gated/tiny "$data"
expect "a revision that does not exist" 2 "revision 'nope'" -- "$vit" classify someone/tiny@nope "$data"
expect "pickle weights only" 2 "pickle" -- "$vit" classify someone/pickle "$data"
expect "a Hub error with nothing cached" 2 "(^|[^0-9])500([^0-9]|$)" -- "$vit" classify error/tiny "$data"
expect "an invalid repo id" 2 "not a valid Hugging Face Hub repo id" -- "$vit" classify someone/bad..name "$data"

# --- l. Training from a Hub id -------------------------------------------------------------------------------------

"$vit" train "$data" --out "$work/run2" --init someone/tiny --epochs 1 -b 4 --threads 1 --workers 1 --quiet \
  >"$work/train2.out" 2>&1
check "train --init someone/tiny: exit 0" $? "$(cat "$work/train2.out")"
expect "train --init someone/tiny: the run's weights name the classes" 0 "classes +3: bright, dark, mid" \
  -- "$vit" info "$work/run2/best.safetensors"

finish
