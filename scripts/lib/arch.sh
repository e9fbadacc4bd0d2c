# shellcheck shell=sh
# Sourced by scripts/static.sh, dist.sh, deb.sh, rpm.sh and the checks: the Linux
# architectures we build static (musl) binaries for, and each one's names.
# ARCH (make static ARCH=aarch64) picks one; empty or `all` means every one.
# armv7 is not here: its Rust standard library cannot be installed on the build
# machine (docs/artefacts.md says why).

arch_all="x86_64 i686 aarch64"

# arch_list: the architectures to build, from ARCH; exits 1 on an unknown one.
arch_list() {
    case ${ARCH:-all} in
        all) echo "$arch_all" ;;
        x86_64 | amd64) echo x86_64 ;;
        i686 | i386 | x86) echo i686 ;;
        aarch64 | arm64) echo aarch64 ;;
        *)
            echo "ARCH=$ARCH: unknown architecture (one of: $arch_all, or all)" >&2
            exit 1
            ;;
    esac
}

# arch_triple ARCH: the Rust target, e.g. aarch64-unknown-linux-musl.
arch_triple() {
    echo "$1-unknown-linux-musl"
}

# arch_dir ARCH: where `make static` puts the binaries: target/TRIPLE/release.
arch_dir() {
    echo "target/$(arch_triple "$1")/release"
}

# arch_deb ARCH: Debian's name for it (amd64, i386, arm64).
arch_deb() {
    case $1 in
        x86_64) echo amd64 ;;
        i686) echo i386 ;;
        aarch64) echo arm64 ;;
    esac
}

# arch_qemu ARCH: the qemu-user emulator that runs its binaries on this machine, or
# nothing when they run natively (x86_64 and i686 on an x86_64 host).
arch_qemu() {
    case $(uname -m):$1 in
        x86_64:x86_64 | x86_64:i686 | aarch64:aarch64) ;;
        *) echo "qemu-$1" ;;
    esac
}

# arch_machine ARCH: how file(1) names its machine (x86-64, Intel 80386, ARM aarch64).
arch_machine() {
    case $1 in
        x86_64) echo x86-64 ;;
        i686) echo "Intel 80386" ;;
        aarch64) echo "ARM aarch64" ;;
    esac
}
