# callctl: common tasks. `make run` starts callctl with its built-in defaults;
# `make test` installs the test peers when missing and runs the whole suite.

GO ?= go
BIN := bin/callctl

.PHONY: build run demo test fuzz bench bench-smoke lint clean

build:
	$(GO) build -o $(BIN) ./cmd/callctl

# Embedded defaults: SIP on 127.0.0.1:5070 (UDP+TCP), trunk 127.0.0.1:5060.
# Extra flags: make run ARGS="--log-level debug".
run: build
	$(BIN) serve $(ARGS)

# callctl with a simulated PBX and phones: live calls to watch in the console.
demo: build
	$(BIN) demo $(ARGS)

test:
	bash scripts/install-test-deps.sh
	$(GO) test -race -count=1 -timeout 25m ./...
	# Allocation counts are measured without -race (files tagged !race).
	$(GO) test -count=1 -run 'Alloc' ./internal/media/ ./internal/dtmf/ ./internal/listen/
	# Every fuzz target a few seconds (its seeds already ran above).
	FUZZTIME=$(TEST_FUZZTIME) GO=$(GO) bash scripts/fuzz.sh
	$(MAKE) bench-smoke

# Every Go fuzz target of the module for FUZZTIME each (scripts/fuzz.sh finds
# them); an input that breaks one is written to its testdata/fuzz/ and named.
FUZZTIME ?= 60s
TEST_FUZZTIME ?= 3s
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) bash scripts/fuzz.sh

# The benchmark suite (bench/README.md): builds callctl and the load
# generator, writes bench/results/latest.{json,md,svg}; under 15 minutes.
bench: build
	$(GO) build -o bin/callctl-load ./cmd/callctl-load
	$(GO) run ./bench/suite -callctl $(BIN) -load bin/callctl-load -go $(GO)

# A few seconds of the load generator (through callctl and through SIPp);
# part of `make test`, no timing assertions.
bench-smoke:
	$(GO) build -o bin/callctl-load ./cmd/callctl-load
	$(GO) run ./bench/smoke -load bin/callctl-load

lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
