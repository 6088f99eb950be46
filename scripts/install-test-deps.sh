#!/usr/bin/env bash
# Installs the real SIP peers and tools the test suite drives (see TESTING.md
# in the project's shared notes): SIPp, baresip, sox, tshark, Chromium (the
# SDK's browser test, test/browser), Kamailio (the record-routing proxy of
# test/pbx) and docker-compose (only `docker-compose config -q`, a syntax
# check of docker-compose.yml: no engine is needed), from Debian's packages,
# when any is missing. Idempotent and silent when all are present.
# Needs root to install (no sudo is assumed); as another user it only names
# what is missing and fails.
set -euo pipefail

# command -> Debian package that provides it
declare -A package=(
	[sipp]=sip-tester
	[baresip]=baresip-core
	[sox]=sox
	[tshark]=tshark
	[chromium]=chromium
	[dumpcap]=tshark
	[ip]=iproute2
	[unshare]=util-linux
	[systemd-analyze]=systemd
	[kamailio]=kamailio
	[docker-compose]=docker-compose
)

# have CMD: CMD is on PATH, or in an sbin directory a non-root PATH may lack
# (Debian installs kamailio in /usr/sbin).
have() {
	command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

missing=()
packages=()
for cmd in sipp baresip sox tshark chromium dumpcap ip unshare kamailio docker-compose systemd-analyze; do
	if ! have "$cmd"; then
		missing+=("$cmd")
		packages+=("${package[$cmd]}")
	fi
done
if [ "${#missing[@]}" -eq 0 ]; then
	exit 0
fi

if [ "$EUID" -ne 0 ]; then
	echo "install-test-deps: missing: ${missing[*]}" >&2
	echo "install-test-deps: as root, run: apt-get install -y --no-install-recommends ${packages[*]}" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-test-deps: missing: ${missing[*]}, and no apt-get to install Debian packages ${packages[*]}" >&2
	exit 1
fi

echo "install-test-deps: installing ${packages[*]} (for ${missing[*]})"
export DEBIAN_FRONTEND=noninteractive
# tshark's package asks whether non-root users may capture; answer no.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! apt-get update >"$log" 2>&1 ||
	! apt-get install -y --no-install-recommends "${packages[@]}" >>"$log" 2>&1; then
	cat "$log" >&2
	echo "install-test-deps: apt-get failed" >&2
	exit 1
fi

for cmd in "${missing[@]}"; do
	if ! have "$cmd"; then
		echo "install-test-deps: $cmd still missing after installing ${package[$cmd]}" >&2
		exit 1
	fi
done
