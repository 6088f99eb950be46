# callctl: common tasks. `make run` starts callctl with its built-in defaults;
# `make test` installs the test peers when missing and runs the whole suite.

GO ?= go
BIN := bin/callctl

.PHONY: build run demo test bench lint clean

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

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
