#!/usr/bin/env bash
# Runs rpibootd with virtual boards on the session bus and shows, with busctl,
# what anyone on the bus sees. Called by run.sh inside dbus-run-session.
set -euo pipefail
: "${daemon:?}" "${firmware:?}" "${boards:?}"

"$daemon" --bus session --no-udev --virtual "$boards" --firmware-dir "$firmware" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT

for _ in $(seq 100); do
  busctl --user status io.rpibootd1 >/dev/null 2>&1 && break
  sleep 0.1
done

deadline=$((SECONDS + 120))
while ((SECONDS < deadline)); do
  stages=$(busctl --user call io.rpibootd1 /io/rpibootd1 io.rpibootd1.Manager ListDevices)
  pending=$( (grep -oE '"(waiting|sending-bootcode|serving-files)"' <<<"$stages" || true) | wc -l)
  total=$( (grep -oE '"/io/rpibootd1/device/[^"]*"' <<<"$stages" || true) | wc -l)
  ((total > 0 && pending == 0)) && break
  sleep 0.2
done

echo
echo "== busctl --user tree io.rpibootd1"
busctl --user tree io.rpibootd1
echo "== busctl --user call io.rpibootd1 /io/rpibootd1 io.rpibootd1.Manager ListDevices"
busctl --user --json=pretty call io.rpibootd1 /io/rpibootd1 io.rpibootd1.Manager ListDevices
first=$( (busctl --user tree --list io.rpibootd1 | grep /device/ || true) | head -n 1)
if [[ -n $first ]]; then
  echo "== busctl --user introspect io.rpibootd1 $first io.rpibootd1.Device"
  busctl --user introspect io.rpibootd1 "$first" io.rpibootd1.Device
fi
failed=$( (busctl --user call io.rpibootd1 /io/rpibootd1 io.rpibootd1.Manager ListDevices |
  grep -oE '"failed"' || true) | wc -l)
kill $pid
wait $pid || true
trap - EXIT
if ((failed > 0)); then
  echo "some virtual boards failed" >&2
  exit 1
fi
echo "every virtual board booted"
