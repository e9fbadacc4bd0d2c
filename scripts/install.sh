#!/bin/sh
# Installs flashpolicyd: the daemon in PREFIX/sbin, the checker in PREFIX/bin, the man
# pages, the docs, and the example files (a policy, systemd, xinetd, logrotate, SysV
# init, cron, Nagios) in PREFIX/share/doc/flashpolicyd/examples. Nothing is enabled or
# written to /etc: the examples say where they go.
#
# Usage: PREFIX=/usr/local DESTDIR= scripts/install.sh    (make install; the release
#        tarball's install.sh runs this same script on the files it holds)
#   PREFIX    where it is installed     (default /usr/local)
#   DESTDIR   staging root for packaging, prepended to every path (default empty)
#   BUILD_DIR where the built binaries are (default target/release; for the static
#             build: target/x86_64-unknown-linux-musl/release)
set -eu
cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
BUILD_DIR=${BUILD_DIR:-target/release}
case $PREFIX in
    /*) ;;
    *)
        echo "install.sh: PREFIX must be an absolute path, not \"$PREFIX\"" >&2
        exit 2
        ;;
esac

for bin in flashpolicyd flashpolicy-check; do
    if [ ! -x "$BUILD_DIR/$bin" ]; then
        echo "install.sh: $BUILD_DIR/$bin is missing: run \`make release\` (or \`make static\` with BUILD_DIR) first" >&2
        exit 1
    fi
done

root=$DESTDIR$PREFIX
doc=$root/share/doc/flashpolicyd
examples=$doc/examples

# The example files name /usr/local paths; make them name this PREFIX's.
fix_paths() {
    sed -e "s|/usr/local/sbin/|$PREFIX/sbin/|g" -e "s|/usr/local/bin/|$PREFIX/bin/|g" "$1"
}

# copy SRC DEST MODE: install one file, with its paths fixed.
copy() {
    tmp=$(mktemp)
    fix_paths "$1" >"$tmp"
    install -m "$3" "$tmp" "$2"
    rm -f "$tmp"
}

install -d "$root/sbin" "$root/bin" "$root/share/man/man8" "$root/share/man/man1" \
    "$examples/systemd" "$examples/xinetd" "$examples/logrotate" "$examples/init.d" \
    "$examples/nagios"

install -m 0755 "$BUILD_DIR/flashpolicyd" "$root/sbin/flashpolicyd"
install -m 0755 "$BUILD_DIR/flashpolicy-check" "$root/bin/flashpolicy-check"
copy scripts/flashpolicyd-cron "$root/sbin/flashpolicyd-cron" 0755

install -m 0644 docs/flashpolicyd.8 "$root/share/man/man8/flashpolicyd.8"
install -m 0644 docs/flashpolicy-check.1 "$root/share/man/man1/flashpolicy-check.1"

install -m 0644 README.md docs/deploying.md docs/artefacts.md docs/migrating.md docs/players.md "$doc/"
for f in scripts/systemd/*; do
    copy "$f" "$examples/systemd/$(basename "$f")" 0644
done
copy scripts/xinetd/flashpolicyd "$examples/xinetd/flashpolicyd" 0644
copy scripts/logrotate/flashpolicyd "$examples/logrotate/flashpolicyd" 0644
copy scripts/init.d/flashpolicyd "$examples/init.d/flashpolicyd" 0755
copy scripts/flashpolicyd-cron "$examples/flashpolicyd-cron" 0755
copy scripts/nagios/flashpolicy-check.cfg "$examples/nagios/flashpolicy-check.cfg" 0644
install -m 0644 scripts/flashpolicy.xml "$examples/flashpolicy.xml"

echo "installed flashpolicyd in $root:"
echo "  $PREFIX/sbin/flashpolicyd, $PREFIX/sbin/flashpolicyd-cron, $PREFIX/bin/flashpolicy-check"
echo "  man pages: flashpolicyd(8), flashpolicy-check(1); examples: $PREFIX/share/doc/flashpolicyd/examples"
