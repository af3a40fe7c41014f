#!/bin/bash
# Install the Debian packages pytest-vmsnap needs (run as root on Debian 12).
# Idempotent and quick when everything is present: apt is only touched for what is missing.
# Services the packages would start on install are held back: the harness starts its own
# servers inside stand-in VMs and never uses the host's.
set -euo pipefail

# The one list of packages, shipped in the package (`vmsnap setup` reads the same file); awk,
# not Python: this runs before the virtual environment exists. Every group: `make` needs them.
LIST="$(dirname "$0")/../pytest_vmsnap/setup/debian-packages.txt"
mapfile -t PACKAGES < <(awk '{ sub(/#.*/, "") } NF { print $1 }' "$LIST")
if [[ ${#PACKAGES[@]} -eq 0 ]]; then
  echo "install-deps: no packages found in $LIST" >&2
  exit 1
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: not root; skipping Debian packages (lint and unit tests still work)" >&2
  exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"

# Keep postinst scripts from starting PostgreSQL/MariaDB/Redis on the host.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; made_policy=1
fi
trap '[[ $made_policy == 1 ]] && rm -f "$policy"' EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
