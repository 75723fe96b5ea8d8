# Starling. `make run` builds and runs one node on its embedded SQLite storage with etc/starling.tdsl;
# `make test` installs what the tests need (when run as root on Debian) and runs every test.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := bin/starling
CONFIG ?= etc/starling.tdsl
# Packages whose tests exercise concurrency run under the race detector too.
RACE_PKGS := ./node ./node/conn/... ./node/router/... ./node/c2s/... ./node/im/... ./loader/...

.PHONY: all build run test test-unit test-race deps generate bench bench-full lint fmt vet clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/starling

run: build
	./$(BIN) run --config $(CONFIG)

# deps installs the Debian packages the tests use (interop peers, PostgreSQL, the eBPF toolchain) when
# run as root; otherwise it says what is missing and the tests that need it skip, saying why.
deps:
	@bash .ci/deps.sh

test: deps vet
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -count=1 -timeout 20m -race $(RACE_PKGS)

test-unit:
	$(GO) test -count=1 -short ./...

generate:
	$(GO) generate ./bpf/...

# The comparison with ejabberd and Prosody (perf/README.md): needs root, installs them from Debian.
bench:
	$(GO) run ./cmd/starling-bench run -plan quick

bench-full:
	$(GO) run ./cmd/starling-bench run -plan full

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '_bpfe[bl].go$$')

lint: vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '_bpfe[bl].go$$'))" || { gofmt -l $$(git ls-files '*.go' | grep -v '_bpfe[bl].go$$'); echo 'gofmt: the files above are not formatted'; exit 1; }
	@if command -v staticcheck >/dev/null; then staticcheck ./...; else echo 'lint: staticcheck is not installed; ran gofmt and go vet only'; fi

clean:
	rm -rf bin
