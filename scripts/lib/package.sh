# shellcheck shell=sh
# Sourced by scripts/deb.sh and scripts/rpm.sh: the system files of a package, made
# from the ones in scripts/ with the package's paths (/usr/sbin, /etc/flashpolicyd) and
# its system user flashpolicyd in place of nobody or a systemd dynamic user.

# package_paths FILE...: the files with /usr/local paths and /etc/flashpolicy.xml
# replaced by the package's.
package_paths() {
    sed -e 's|/usr/local/sbin/|/usr/sbin/|g' -e 's|/usr/local/bin/|/usr/bin/|g' \
        -e 's|/etc/flashpolicy\.xml|/etc/flashpolicyd/policy.xml|g' "$@"
}

# package_unit_body FILE: the unit without its leading comment (which tells how to
# install it by hand).
package_unit_body() {
    package_paths "$1" | sed -n '/^\[Unit\]/,$p'
}

# package_install_tree ROOT DIR: the static binaries in DIR (target/TRIPLE/release),
# man pages (compressed), docs and examples under ROOT/usr, laid out as `make install` does.
package_install_tree() {
    PREFIX=/usr DESTDIR=$1 BUILD_DIR=$2 sh scripts/install.sh >/dev/null
    gzip -9n "$1/usr/share/man/man8/flashpolicyd.8" "$1/usr/share/man/man1/flashpolicy-check.1"
}

# package_system_files ROOT UNIT_DIR INIT_DIR ENV_FILE: writes, under ROOT, the systemd
# socket and service in UNIT_DIR (the service reads FLASHPOLICYD_ARGS from ENV_FILE),
# the SysV init script in INIT_DIR, ENV_FILE itself, /etc/flashpolicyd/policy.xml (the
# example policy) and /etc/logrotate.d/flashpolicyd.
package_system_files() {
    r=$1
    units=$2
    init=$3
    envfile=$4
    install -d "$r$units" "$r$init" "$r$(dirname "$envfile")" "$r/etc/flashpolicyd" \
        "$r/etc/logrotate.d"
    {
        echo "# flashpolicyd with socket activation: flashpolicyd.socket binds port 843 and the"
        echo "# daemon runs as the system user flashpolicyd, without any capability. Its options"
        echo "# are FLASHPOLICYD_ARGS in $envfile; logs: journalctl -u flashpolicyd."
        # shellcheck disable=SC2016 # $FLASHPOLICYD_ARGS is for systemd to expand
        package_unit_body scripts/systemd/flashpolicyd.service |
            sed -e "s|^ExecStart=/usr/sbin/flashpolicyd .*|EnvironmentFile=-$envfile\\nExecStart=/usr/sbin/flashpolicyd \$FLASHPOLICYD_ARGS|" \
                -e "s|^ExecReload=/usr/sbin/flashpolicyd --check-config .*|ExecReload=/usr/sbin/flashpolicyd --check-config \$FLASHPOLICYD_ARGS|" \
                -e 's|^DynamicUser=yes|User=flashpolicyd\nGroup=flashpolicyd|' \
                -e '/^# systemd older than 232/,/^# nobody) instead\./d'
    } >"$r$units/flashpolicyd.service"
    {
        echo "# Socket activation for flashpolicyd: systemd listens on port 843 and hands the"
        echo "# socket to flashpolicyd.service, which needs no privilege."
        package_unit_body scripts/systemd/flashpolicyd.socket
    } >"$r$units/flashpolicyd.socket"
    package_paths scripts/init.d/flashpolicyd |
        sed -e 's|--user nobody|--user flashpolicyd|g' >"$r$init/flashpolicyd"
    package_paths scripts/logrotate/flashpolicyd |
        sed -e 's|create 0640 nobody adm|create 0640 flashpolicyd adm|' >"$r/etc/logrotate.d/flashpolicyd"
    sed -e "s|/etc/default/flashpolicyd|$envfile|g" scripts/deb/default >"$r$envfile"
    install -m 0644 scripts/flashpolicy.xml "$r/etc/flashpolicyd/policy.xml"
    chmod 0644 "$r$units"/flashpolicyd.* "$r/etc/logrotate.d/flashpolicyd" "$r$envfile"
    chmod 0755 "$r$init/flashpolicyd"
}
