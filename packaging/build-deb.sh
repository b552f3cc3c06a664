#!/bin/bash
# Builds the Debian packages (rpibootd, rpibootd-cli) with dpkg-buildpackage from a copy of the
# source tree in which packaging/debian becomes debian/, then runs lintian on them.
#   packaging/build-deb.sh [OUTDIR]      (default build/deb; the .debs land in OUTDIR)
# Environment: DEB_BUILD_OPTIONS (default "nocheck parallel=2"), LINTIAN=0 to skip lintian,
# REUSE=1 to keep the previous build tree (dpkg-buildpackage -nc: only what changed is rebuilt).
# Needs: dpkg-dev debhelper lintian and the build dependencies in packaging/debian/control.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$src/build/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$out/src/rpibootd
export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-nocheck parallel=2}

# A clean copy of what a source package would hold: the tracked files (plus untracked,
# not ignored ones, so a work tree under development builds as it is), never build/.
nc=()
if [ "${REUSE:-0}" = 1 ] && [ -d "$work" ]; then
    nc=(-nc)
else
    rm -rf "$out/src"
fi
mkdir -p "$work"
# Timestamps are kept so that a REUSE build recompiles only what changed.
list_sources() {
    if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$src" ls-files -z --cached --others --exclude-standard
    else
        (cd "$src" && find . -path ./build -prune -o -path ./.git -prune -o -type f -print0)
    fi
}
# cp reports files deleted from the work tree but still in the index; they are skipped.
list_sources | grep -zv '^build/' |
    (cd "$src" && xargs -0 cp --parents -P --preserve=timestamps -t "$work" 2>/dev/null) || true
rm -rf "$work/debian"
cp -a "$src/packaging/debian" "$work/debian"

cd "$work"
dpkg-buildpackage -us -uc -b "${nc[@]}"
cd "$out/src"
mv -f ./*.deb ./*.changes ./*.buildinfo "$out/" 2>/dev/null || true
mv -f ./*.ddeb "$out/" 2>/dev/null || true
changes=$out/rpibootd_$(dpkg-parsechangelog -l "$src/packaging/debian/changelog" -S Version)_$(dpkg-architecture -qDEB_HOST_ARCH).changes
echo "build-deb: packages in $out:"
ls -1 "$out"/*.deb

if [ "${LINTIAN:-1}" != 0 ] && command -v lintian >/dev/null; then
    # Errors fail the build; warnings are listed (and explained in packaging/README.md).
    lintian --info --display-info --pedantic --fail-on error "$changes" | tee "$out/lintian.txt"
fi
