# SPDX-License-Identifier: MIT
# banner_port LOG: waits (at most ~10 s) for a server started with PORT=0 to print its
# banner into LOG ("... listening on HOST:PORT", the port the kernel picked) and prints
# that port; prints nothing if the banner never comes. For the suites that start the demo.
banner_port() {
  local port='' _
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\)$/\1/p' "$1")
    [ -n "$port" ] && break
    sleep 0.1
  done
  echo "$port"
}
