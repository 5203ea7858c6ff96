# shoal: `make demo` shows it working, `make test` proves it.
GO        ?= go
# Pure-Go build: the torrent library's piece-completion store is then bbolt, not cgo SQLite.
export CGO_ENABLED ?= 0
BIN       := bin/shoal
TEST_FLAGS ?= -count=1 -timeout 15m

.PHONY: build test demo bench fuzz lint clean

build:
	$(GO) build -o $(BIN) ./cmd/shoal

test: build
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) ./...

demo: build
	./scripts/demo.sh

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 3x ./peer
	./bench/bench.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest ./...

clean:
	rm -rf bin
