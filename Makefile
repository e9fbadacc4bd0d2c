# flashpolicyd — short targets; anything longer lives in scripts/.
CARGO ?= cargo
PORT ?= 8843
PREFIX ?= /usr/local
DESTDIR ?=
FUZZ_SECS ?= 60
# make static/dist/deb/rpm ARCH=aarch64: one architecture (x86_64, i686, aarch64); all by default.
ARCH ?= all

.PHONY: build run test lint release clean static install dist deb rpm image image-check fuzz bench soak windows test-windows test-systemd check-unixes

build:
	$(CARGO) build

# Serve the embedded allow-all policy on an unprivileged port (Ctrl-C stops it).
run:
	$(CARGO) run --release --bin flashpolicyd -- --port $(PORT) -v

test:
	$(CARGO) test --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

release:
	$(CARGO) build --release

# Fully static binaries (musl) for x86_64, i686 and aarch64 (ARCH=one of them): target/<arch>-unknown-linux-musl/release/.
static:
	CARGO="$(CARGO)" ARCH="$(ARCH)" sh scripts/static.sh

# target/dist/flashpolicyd-VERSION-<arch>-linux-musl.tar.gz per ARCH (static binaries, docs, examples, install.sh, SHA256SUMS), and a Windows zip when that target builds.
dist:
	CARGO="$(CARGO)" ARCH="$(ARCH)" sh scripts/dist.sh

# target/dist/flashpolicyd_VERSION_{amd64,i386,arm64}.deb from the static binaries (dpkg-deb).
deb:
	CARGO="$(CARGO)" ARCH="$(ARCH)" sh scripts/deb.sh

# The deb under Debian 12's systemd booted as PID 1 in a container (root, Docker; builds the image once, about a minute).
test-systemd: deb
	sh scripts/systemd-check.sh

# target/dist/flashpolicyd-VERSION-1.{x86_64,i686,aarch64}.rpm from the static binaries (rpmbuild; installs Debian's rpm if missing).
rpm:
	CARGO="$(CARGO)" ARCH="$(ARCH)" sh scripts/rpm.sh

# Container images FROM scratch (static daemon, checker, licences, example policy), amd64
# and arm64: flashpolicyd:VERSION-ARCH and :latest; IMAGE_ARCH=arm64 builds one (Docker).
image:
	CARGO="$(CARGO)" IMAGE_ARCH="$(IMAGE_ARCH)" sh scripts/image.sh

# Runs the image read-only without capabilities: serves, turns healthy, exits 2 on a bad policy, stops on docker stop.
image-check:
	CARGO="$(CARGO)" sh scripts/image-check.sh

# The release binaries, man pages and examples into $(DESTDIR)$(PREFIX) (sbin, bin, share/).
install: release
	PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" sh scripts/install.sh

# Fuzz each parser for FUZZ_SECS seconds in turn (nightly + cargo-fuzz; tests/fuzz/).
fuzz:
	FUZZ_SECS="$(FUZZ_SECS)" sh scripts/fuzz.sh

# Start a release flashpolicyd on 127.0.0.1 and load it: c=1..256, idle and trickle floods (BENCH_SECS=5).
bench:
	CARGO="$(CARGO)" bash scripts/bench.sh

# One million mixed connections; threads, descriptors and RSS must match before/after (SOAK_CONNS=1000000).
soak:
	CARGO="$(CARGO)" bash scripts/soak.sh

# cargo check + clippy -D warnings of every target for FreeBSD, NetBSD and macOS (x86_64, aarch64); installs clang for macOS if missing.
check-unixes:
	CARGO="$(CARGO)" sh scripts/check-unixes.sh

# Cross-build the .exe files for x86_64-pc-windows-gnu (installs mingw-w64 and the target if missing).
windows:
	CARGO="$(CARGO)" sh scripts/windows/build.sh

# Smoke-test the .exe files under wine in a throw-away prefix (installs wine64 if missing; not in `make test`).
test-windows: windows
	WINDOWS_SKIP_BUILD=1 CARGO="$(CARGO)" bash scripts/windows/smoke.sh

clean:
	$(CARGO) clean
