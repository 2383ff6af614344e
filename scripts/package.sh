#!/usr/bin/env bash
# Builds the Debian package (cargo deb, from [package.metadata.deb] in Cargo.toml) and
# checks it the way an operator would meet it: every file where docs/install.md says,
# /etc/lb/lb.toml a conffile, and, as root, installed with dpkg -i: lb runs, passes
# `lb check` on the installed config, and systemd accepts the installed unit. Then it
# purges the package, leaving the machine as it found it. Exits non-zero, saying why, at
# the first thing that is wrong.
#
#   scripts/package.sh                 # the .deb lands in target/debian/
#   PACKAGE_NO_INSTALL=1 scripts/package.sh   # build and inspect only (also when not root)
#
# Needs cargo-deb (cargo install cargo-deb --locked), dpkg-deb, and as root systemd-analyze
# (Debian: the systemd package; systemd need not be running).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "package.sh: $*" >&2
    exit 1
}

command -v cargo-deb >/dev/null || fail "cargo-deb is missing: cargo install cargo-deb --locked"
command -v dpkg-deb >/dev/null || fail "dpkg-deb is missing (this builds a Debian package)"

# The first version line of Cargo.toml is [package]'s.
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
commit=unknown
if [ -e .git ] && c=$(git rev-parse --short HEAD 2>/dev/null); then
    commit=$c
fi

echo "package.sh: building lb $version ($commit) and its .deb"
# cargo deb prints the path of each package it writes, the .deb last.
out=$(cargo deb --locked)
deb=$(printf '%s\n' "$out" | grep '\.deb$' | tail -n 1)
[ -f "$deb" ] || fail "cargo deb wrote no .deb (it said: $out)"
echo "package.sh: $deb, $(du -k "$deb" | cut -f1) KiB"

# --- The package's contents -------------------------------------------------------------
listing=$(dpkg-deb -c "$deb")
echo "$listing"
has() { # has MODE PATH: PATH is in the package, with MODE (ls -l style) if given
    local mode=$1 path=$2 line
    line=$(printf '%s\n' "$listing" | awk -v p="./$path" '$6 == p')
    [ -n "$line" ] || fail "$deb lacks /$path"
    case "$line" in
    "$mode"*) ;;
    *) fail "/$path in $deb is not $mode: $line" ;;
    esac
}
has -rwxr-xr-x usr/bin/lb
has -rwxr-xr-x usr/bin/lb-backend
has -rw-r--r-- usr/lib/systemd/system/lb.service
has -rw-r--r-- etc/lb/lb.toml
has -rw-r--r-- usr/share/doc/lb/README.md
has -rw-r--r-- usr/share/doc/lb/copyright
for doc in docs/*.md; do
    has -rw-r--r-- "usr/share/doc/lb/$doc"
done

# What is installed is what is in dist/, byte for byte.
for pair in dist/lb.service:usr/lib/systemd/system/lb.service dist/lb.toml:etc/lb/lb.toml; do
    dpkg-deb --fsys-tarfile "$deb" | tar -xO "./${pair#*:}" | cmp -s - "${pair%%:*}" \
        || fail "/${pair#*:} in $deb differs from ${pair%%:*}"
done

# dpkg keeps an operator's edits of a conffile across upgrades; lb.toml must be one, and
# the only one.
conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null || true)
[ "$conffiles" = /etc/lb/lb.toml ] \
    || fail "$deb's conffiles are '${conffiles:-none}', not /etc/lb/lb.toml"
dpkg-deb -I "$deb"

# --- Installed ---------------------------------------------------------------------------
if [ -n "${PACKAGE_NO_INSTALL:-}" ]; then
    echo "package.sh: PACKAGE_NO_INSTALL is set: not installing $deb"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "package.sh: not root: the .deb is built and inspected, not installed (dpkg -i needs root)"
    exit 0
fi
command -v systemd-analyze >/dev/null \
    || fail "systemd-analyze is missing: apt-get install systemd (it need not run)"
# This script purges what it installs: it must not take an operator's lb with it.
status=$(dpkg-query -W -f '${db:Status-Status}' lb 2>/dev/null || true)
case "$status" in
"" | not-installed) ;;
*) fail "a package lb is already here ($status): remove it first, or set PACKAGE_NO_INSTALL=1" ;;
esac
[ ! -e /etc/lb ] || fail "/etc/lb exists: purging the package would delete it; move it away first"

installed=""
purge() {
    if [ -n "$installed" ]; then
        echo "package.sh: purging lb"
        dpkg --purge lb >/dev/null || echo "package.sh: dpkg --purge lb failed" >&2
    fi
}
trap purge EXIT

dpkg -i "$deb" || fail "dpkg -i $deb failed"
installed=yes

got=$(/usr/bin/lb --version) || fail "/usr/bin/lb --version failed"
[ "$got" = "lb $version ($commit)" ] || fail "/usr/bin/lb --version says '$got', not 'lb $version ($commit)'"
echo "package.sh: $got"
/usr/bin/lb --help | grep -q '^Usage: lb' || fail "/usr/bin/lb --help prints no usage"
/usr/bin/lb-backend --help | grep -q '^Usage: backend' || fail "/usr/bin/lb-backend --help prints no usage"
/usr/bin/lb check -c /etc/lb/lb.toml || fail "the installed /etc/lb/lb.toml fails lb check"

unit=$(dpkg -L lb | grep '/lb\.service$') || fail "dpkg -L lb lists no lb.service"
# Installing enables and starts nothing: the operator edits the config first.
[ ! -e /etc/systemd/system/multi-user.target.wants/lb.service ] \
    || fail "installing the package enabled lb.service"
systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit failed"
# The score is 0 (locked down) to 10 (exposed); --threshold is ten times it. Above 1.6,
# the score docs/install.md gives, means some hardening in dist/lb.service was lost.
security=$(systemd-analyze security --offline=yes --threshold=16 "$unit") || {
    score=$(printf '%s\n' "$security" | sed -n 's/.*exposure level for lb.service: \([0-9.]*\).*/\1/p')
    fail "lb.service's exposure score is ${score:-unknown}, above 1.6: some of its hardening was lost"
}
printf '%s\n' "$security" | tail -n 1

purge
installed=""
for gone in /usr/bin/lb /usr/bin/lb-backend /etc/lb "$unit"; do
    [ ! -e "$gone" ] || fail "$gone is still here after dpkg --purge lb"
done
echo "package.sh: ok: $deb built, installed, checked and purged"
