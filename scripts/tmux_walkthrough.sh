#!/usr/bin/env bash
# Drive the real app in tmux like a person would: home → new evaluation (tiny model) →
# live view → history → run detail → quit. Screens are saved as text captures, for a human
# look (and for the README). Needs tmux and the paper's data file.
#
#   scripts/tmux_walkthrough.sh [DATA_FILE] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
data="$(realpath "${1:-../shared/data/c2eval_test.jsonl}")"
out="${2:-$(mktemp -d /tmp/ccapp-walkthrough.XXXX)}"
mkdir -p "$out"
home="$(mktemp -d /tmp/ccapp-home.XXXX)"
socket="ccapp-walkthrough-$$"
ccapp="$(realpath .venv/bin/ccapp)"
command -v tmux >/dev/null || { echo "tmux is needed (apt install tmux)"; exit 2; }
[ -x "$ccapp" ] || { echo "run 'make run' or 'make test' once first (it builds .venv)"; exit 2; }

tm() { tmux -L "$socket" "$@"; }
capture() { tm capture-pane -p -t walk > "$out/$1.txt"; echo "captured $out/$1.txt"; }
keys() { tm send-keys -t walk "$@"; sleep 0.4; }
field() { keys C-a C-k; keys -l "$1"; }  # replace the focused input's text
wait_for() {  # wait until the screen shows $1
  for _ in $(seq 1 300); do
    tm capture-pane -p -t walk | grep -q -- "$1" && return 0
    sleep 0.5
  done
  echo "timed out waiting for: $1"; capture timeout; exit 1
}
trap 'tm kill-server 2>/dev/null || true' EXIT

# The tiny model is built into this CCAPP_HOME's cache first (a few seconds, offline).
CCAPP_HOME="$home" HF_HUB_OFFLINE=1 "$ccapp" model tiny "$home/tiny" >/dev/null
tm new-session -d -s walk -x 132 -y 46 "CCAPP_HOME=$home HF_HUB_OFFLINE=1 $ccapp"
wait_for "GiB"
sleep 2
capture 1-home

keys e
wait_for "presets:"
field "$home/tiny"          # model
keys Tab Tab Tab Tab        # device, dtype, 4-bit, judge: keep
keys Tab; field "$data"     # data
keys Tab; field "10,20,40"  # k
keys Tab; field "4"         # paths
keys Tab; field "24"        # max new tokens
keys Tab; field "120"       # limit
capture 2-form
keys C-s
wait_for "continuations · "
capture 3-live-running
wait_for "· done"
capture 4-live-done

keys Escape
keys F3                     # Runs, from anywhere (r works where no field has focus)
wait_for "Corr_mean"
capture 5-history
keys Enter
wait_for "continuation"
sleep 1
capture 6-run-detail
keys q
echo "all captures in $out"
