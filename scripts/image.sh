#!/bin/sh
# Builds the container images (make image): FROM scratch, only the static daemon, the
# checker, the licences and an example policy (scripts/image/Dockerfile says what the
# image does). One image per architecture, each tagged and with its architecture in
# its configuration:
#   flashpolicyd:VERSION-amd64, flashpolicyd:VERSION-arm64
# plus flashpolicyd:VERSION and flashpolicyd:latest for this machine's own
# architecture, and a `docker save` archive of each in target/image/ (for `docker load`
# on a host that cannot build, e.g. a Raspberry Pi).
# Usage: scripts/image.sh                  (make image: amd64 and arm64)
#        IMAGE_ARCH=arm64 scripts/image.sh (make image IMAGE_ARCH=arm64: one of them)
# Needs a Docker engine (scripts/lib/docker.sh installs and starts one as root). No
# base image is pulled, so it builds offline; the classic builder's --platform is
# enough (no buildx needed).
set -eu
cd "$(dirname "$0")/.."
. scripts/lib/docker.sh

cargo=${CARGO:-cargo}
arches=${IMAGE_ARCH:-amd64 arm64}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
# The limit the issue set; a bigger image means something unexpected got in.
max_bytes=2000000

# static_bin RUST_ARCH: builds the fully static binaries for RUST_ARCH (x86_64,
# aarch64) with `make static`'s script and prints the directory holding them.
static_bin() {
    CARGO="$cargo" ARCH="$1" sh scripts/static.sh >&2
    echo "target/$1-unknown-linux-musl/release"
}

# Docker's name for an architecture, and Rust's.
rust_arch() {
    case $1 in
        amd64) echo x86_64 ;;
        arm64) echo aarch64 ;;
        *)
            echo "image.sh: unknown IMAGE_ARCH \"$1\": amd64 or arm64" >&2
            exit 2
            ;;
    esac
}

native=$(uname -m)
for arch in $arches; do
    rust_arch "$arch" >/dev/null # validate every name before building anything
done
if ! docker_ready; then
    echo "image.sh: $docker_why" >&2
    exit 1
fi

mkdir -p target/image
for arch in $arches; do
    rarch=$(rust_arch "$arch")
    bin=$(static_bin "$rarch")
    ctx=target/image/$arch
    rm -rf "$ctx"
    root=$ctx/rootfs
    install -d "$root/usr/sbin" "$root/usr/bin" "$root/usr/share/doc/flashpolicyd/examples" \
        "$root/etc/flashpolicyd"
    install -m 0755 "$bin/flashpolicyd" "$root/usr/sbin/flashpolicyd"
    install -m 0755 "$bin/flashpolicy-check" "$root/usr/bin/flashpolicy-check"
    install -m 0644 LICENSE LICENSE-MIT LICENSE-APACHE "$root/usr/share/doc/flashpolicyd/"
    install -m 0644 scripts/flashpolicy.xml "$root/usr/share/doc/flashpolicyd/examples/"
    tag=flashpolicyd:$version-$arch
    # --no-cache: the classic builder would reuse the other architecture's cached
    # metadata steps and then refuse the platform mismatch (and there is nothing to
    # save: the build is three file copies).
    if ! docker build --no-cache --platform "linux/$arch" --build-arg "VERSION=$version" \
        -f scripts/image/Dockerfile -t "$tag" "$ctx" >"$ctx.log" 2>&1; then
        cat "$ctx.log" >&2
        echo "image.sh: docker build failed for $tag (log above: $ctx.log)" >&2
        exit 1
    fi
    got=$(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$tag")
    if [ "$got" != "linux/$arch" ]; then
        echo "image.sh: $tag says it is for $got, not linux/$arch" >&2
        exit 1
    fi
    size=$(docker image inspect -f '{{.Size}}' "$tag")
    if [ "$size" -gt "$max_bytes" ]; then
        echo "image.sh: $tag is $size bytes, more than $max_bytes" >&2
        exit 1
    fi
    if [ "$rarch" = "$native" ]; then
        docker tag "$tag" "flashpolicyd:$version"
        docker tag "$tag" flashpolicyd:latest
    fi
    docker save "$tag" | gzip -9n >"target/image/flashpolicyd-$version-$arch.tar.gz"
    echo "$tag: linux/$arch, $size bytes; target/image/flashpolicyd-$version-$arch.tar.gz"
done
