#!/usr/bin/env bash
# Build data/debian-descriptions.jsonl.gz (or $1): Debian bookworm main's package descriptions as
# long-text -> synopsis summarization pairs, split train/validation/test by source package.
# Downloads the English Translation-en, Packages (amd64) and Sources indexes of bookworm main into
# a temporary lists directory with apt-get (Debian's registry, no other host); the system's own
# package lists and caches are left alone. Needs root (apt-get update) and python3.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-"$HERE/../data/debian-descriptions.jsonl.gz"}
SUITE=${SUITE:-bookworm}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/lists/partial" "$TMP/parts"
chmod 755 "$TMP" "$TMP/lists"
if id _apt >/dev/null 2>&1; then chown _apt "$TMP/lists/partial"; fi  # apt downloads as _apt
# The suite is pinned here, whatever the machine's own sources say.
cat > "$TMP/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $SUITE main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $SUITE main
EOF
apt-get update -qq \
  -o Dir::Etc::SourceList="$TMP/sources.list" -o Dir::Etc::SourceParts="$TMP/parts" \
  -o Dir::State::Lists="$TMP/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
  -o Acquire::Languages=en -o Acquire::GzipIndexes=false -o APT::Architectures::=amd64 \
  -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false \
  -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false \
  -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
python3 "$HERE/make_debian_descriptions.py" "$TMP/lists" "$OUT"
