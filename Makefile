# flashpolicyd — short targets; anything longer lives in scripts/.
CARGO ?= cargo
PORT ?= 8843

.PHONY: build run test lint release clean

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

clean:
	$(CARGO) clean
