#!/usr/bin/env bash
# Build the image from ./Containerfile with podman and prove it serves: /healthz answers, the process is
# uid 1001, /readyz tells Flight Control is unreachable, the MCP endpoint refuses a caller without a token
# (the image's pass-through default), the HEALTHCHECK command passes, logs reach stderr, SIGTERM stops it
# cleanly, it also runs with a read-only root file system under an arbitrary uid as deploy/ runs it, and
# the image's `demo` answers a real MCP tool call (when .venv exists, for the fastmcp client).
#
#   sudo scripts/container-smoke.sh [CONTEXT_DIR]      # CONTEXT_DIR defaults to the repository root
#
# For manual use (root, podman). It relies on a helper, CONTAINER_HELPER (default
# /work/shared/tools/container.sh), that makes a local stand-in for python:3.11-slim when no registry
# can be reached; where registries are reachable any podman works the same way. Prints the build time and
# the image size; exits non-zero on the first failed check.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
context=$(cd "${1:-$here}" && pwd)
helper=${CONTAINER_HELPER:-/work/shared/tools/container.sh}
[[ -r $helper ]] || { echo "container helper not found: $helper (set CONTAINER_HELPER)" >&2; exit 2; }
export CTR_IMAGE=${CTR_IMAGE:-localhost/flightctl-mcp:smoke}
# shellcheck source=/dev/null
source "$helper"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

started=()
cleanup() { ((${#started[@]} == 0)) || ctr_stop "${started[@]}" || true; }
trap cleanup EXIT

ctr_base_image

# Nothing answers at this address: /healthz must not depend on Flight Control, /readyz must say so.
api="-e API_BASE_URL=https://flightctl.invalid:3443"
port=$(free_port)
t0=$SECONDS
cid=$(CTR_RUN_OPTS="$api ${CTR_RUN_OPTS:-}" ctr_build_and_run "$context" "$port") || fail "build or start failed"
started+=("$cid")
build_s=$((SECONDS - t0))
ctr_wait_http "http://127.0.0.1:$port/healthz" 60 ||
  { podman logs "$cid" >&2 || true; fail "/healthz did not answer"; }
ok "/healthz answers on the default configuration"

body=$(curl -fsS -m 5 "http://127.0.0.1:$port/healthz")
[[ -n $body ]] || fail "/healthz answered with an empty body"

code=$(curl -sS -m 40 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")
[[ $code == 503 ]] || fail "/readyz answered $code while Flight Control is unreachable, expected 503"
ok "/readyz reports 503 while Flight Control is unreachable"

uid=$(podman exec "$cid" id -u)
[[ $uid == 1001 ]] || fail "the server runs as uid $uid, not 1001"
ok "runs as uid 1001"

# No token: the pass-through default must refuse before anything reaches Flight Control.
code=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/mcp" \
  -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}')
[[ $code == 401 ]] || fail "POST /mcp without a token answered $code, expected 401"
ok "POST /mcp without a token is refused with 401"

# The image's HEALTHCHECK command itself (podman cannot schedule it without systemd here).
podman healthcheck run "$cid" >/dev/null 2>&1 ||
  podman exec "$cid" sh -c "$(podman image inspect --format '{{join .Config.Healthcheck.Test " "}}' "$CTR_IMAGE" |
    sed 's/^CMD //')" >/dev/null || fail "the HEALTHCHECK command fails inside the container"
ok "HEALTHCHECK command passes"

# Logs are read whole first: `grep -q` stops reading early, and under pipefail podman's SIGPIPE would fail.
logs=$(podman logs "$cid" 2>&1)
grep -q "Serving streamable-http" <<<"$logs" || fail "no log lines on stderr"
ok "logs reach stderr (podman logs)"

podman stop -t 10 "$cid" >/dev/null 2>&1
logs=$(podman logs "$cid" 2>&1)
grep -qi "shut down cleanly" <<<"$logs" || fail "SIGTERM did not shut the server down cleanly"
ok "SIGTERM shuts the server down cleanly"
ctr_stop "$cid"
started=()

# As deploy/ runs it: read-only root, only the log directory and /tmp writable, arbitrary uid in group 0.
port2=$(free_port)
ro="--read-only --user 1000770000:0 --tmpfs /tmp --tmpfs /home/mcp/.local/share/flightctl-mcp:mode=0770"
cid2=$(CTR_BUILD_OPTS="" CTR_RUN_OPTS="$api $ro ${CTR_RUN_OPTS:-}" ctr_build_and_run "$context" "$port2") || fail "start with a read-only root file system failed"
started+=("$cid2")
ctr_wait_http "http://127.0.0.1:$port2/healthz" 60 ||
  { podman logs "$cid2" >&2 || true; fail "/healthz did not answer with a read-only root file system"; }
ok "serves with a read-only root file system and an arbitrary uid"

# A real tool call: the image's own demo (simulated fleet) behind a shared secret, asked by fastmcp.
venv_python=$here/.venv/bin/python
if [[ -x $venv_python ]]; then
  port3=$(free_port)
  # Off loopback the server refuses a shared secret shorter than 32 characters.
  secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  cid3=$(podman run -d --label ctrcheck.ctr=1 -p "127.0.0.1:$port3:8000" \
    -e MCP_AUTH_MODE=shared-secret -e MCP_SHARED_SECRET="$secret" "$CTR_IMAGE" demo \
    2> >(_ctr_no_systemd_noise >&2)) || fail "demo did not start"
  started+=("$cid3")
  ctr_wait_http "http://127.0.0.1:$port3/readyz" 60 || { podman logs "$cid3" >&2 || true; fail "demo not ready"; }
  "$venv_python" - "http://127.0.0.1:$port3/mcp" "$secret" <<'PY' || fail "count_devices through the image failed"
import asyncio, json, sys
from fastmcp import Client

async def main() -> None:
    async with Client(sys.argv[1], auth=sys.argv[2]) as client:
        result = await client.call_tool("count_devices", {})
        total = json.loads(result.content[0].text)["total"]
        assert total > 0, total

asyncio.run(main())
PY
  ok "the demo in the image answers count_devices over streamable-http"

  # The README's podman stdio configuration as a client starts it: the `flightctl login` client.yaml (mode
  # 0600) handed over as a podman secret, read by uid 1001 in the container, answering over stdin/stdout.
  # Only the secret's name, the image and --network=host (to reach a simulator on this host's loopback)
  # differ from the README's lines.
  work=$(mktemp -d)
  mkdir -p "$work/home/.config/flightctl"
  "$venv_python" -m simulator --devices 5 --write-client-config "$work/home/.config/flightctl/client.yaml" \
    >"$work/url" 2>"$work/simulator.log" &
  sim_pid=$!
  cleanup() {
    ((${#started[@]} == 0)) || ctr_stop "${started[@]}" || true
    kill "$sim_pid" 2>/dev/null || true
    podman secret rm flightctl-client-yaml-smoke >/dev/null 2>&1 || true
    rm -rf "$work"
  }
  for _ in $(seq 100); do [[ -s $work/url ]] && break; sleep 0.3; done
  [[ -s $work/url ]] || fail "the simulator did not start: $(cat "$work/simulator.log")"
  secret_lines=$(sed -n '/<!-- readme-config: podman-secret -->/,/^```$/p' "$here/README.md" | sed -n '/^podman /p')
  [[ -n $secret_lines ]] || fail "README.md has no podman-secret block"
  HOME=$work/home bash -c "${secret_lines//flightctl-client-yaml/flightctl-client-yaml-smoke}" ||
    fail "the README's podman secret lines failed"
  "$venv_python" - "$here/README.md" "$CTR_IMAGE" <<'PY' || fail "count_devices through podman over stdio failed"
import asyncio, json, re, sys
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

readme, image = sys.argv[1:]
block = re.search(r"<!-- readme-config: podman-mounted-config -->\s*```json\n(.*?)```", open(readme).read(), re.S)
server = json.loads(block.group(1))["mcpServers"]["flightctl"]
args = [a.replace("flightctl-client-yaml,", "flightctl-client-yaml-smoke,") for a in server["args"]]
args = [image if a == "quay.io/flightctl/flightctl-mcp:latest" else a for a in args]
args.insert(1, "--network=host")

async def main() -> None:
    transport = StdioTransport(server["command"], args, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    async with Client(transport, timeout=120) as client:
        result = await client.call_tool("count_devices", {})
    total = json.loads(result.content[0].text)["total"]
    assert total == 5, total

asyncio.run(main())
PY
  ok "the README's podman stdio configuration (client.yaml as a secret) answers count_devices"
else
  echo "skip: no $venv_python (run make test once) for the tool-call checks"
fi

size=$(podman image inspect --format '{{.Size}}' "$CTR_IMAGE")
echo "image $CTR_IMAGE: $((size / 1000000)) MB; first build and start took ${build_s}s"
echo "container smoke test passed"
