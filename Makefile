# Baton: the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all deps build demo test fuzz bench bench-handoff clean

all: build

# Installs what a fresh Debian 12 machine lacks. Idempotent; quick when all is present.
deps:
	@scripts/deps.sh

build: deps
	$(CARGO) build --release --locked

demo: build
	@tests/testbed/demo.sh

test: deps
	@scripts/test.sh

# Bounded fuzzing of every parser and the handoff engine (FUZZ_SECONDS per target, default 30).
fuzz: deps
	@scripts/fuzz.sh

# Criterion micro-benchmarks of the packet library (prints ns per packet).
bench: deps
	$(CARGO) bench -p baton-fastpath

# Handoff latency, handoffs per second, and Baton against an L7 proxy, on
# the netns testbed (prints figures; needs root).
bench-handoff: build
	@tests/bench/handoff.sh

clean:
	$(CARGO) clean
