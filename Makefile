# shoal: `make demo` shows it working, `make test` proves it.
GO        ?= go
# Pure-Go build: the torrent library's piece-completion store is then bbolt, not cgo SQLite.
export CGO_ENABLED ?= 0
BIN       := bin/shoal
TEST_FLAGS ?= -count=1 -timeout 15m
# The race detector needs cgo (gcc); the shoal binary itself stays pure Go.
RACE      ?= -race

.PHONY: build test soak demo bench fuzz lint clean

build:
	$(GO) build -o $(BIN) ./cmd/shoal

test: build
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) test $(RACE) $(TEST_FLAGS) ./...

# The long versions of the tests named *Soak*: SIGKILL/restart rounds, 1,000 concurrent tracker
# announces, overlay abuse. make test runs the same tests, smaller.
SOAK_TIMEOUT ?= 40m
soak: build
	SHOAL_SOAK=1 CGO_ENABLED=1 $(GO) test $(RACE) -count=1 -timeout $(SOAK_TIMEOUT) -run 'Soak' -v ./...

demo: build
	./scripts/demo.sh

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 3x ./peer
	$(GO) test -run '^$$' -bench . ./storage
	./bench/bench.sh

# Each fuzz target for FUZZTIME, one after another (go test -fuzz takes one target at a time).
# New crashers land in the package's testdata/fuzz/<Target>/ and are then replayed by make test.
FUZZTIME ?= 20s
fuzz:
	$(GO) test ./peer/meta -run '^$$' -fuzz '^FuzzParseTorrent$$' -fuzztime $(FUZZTIME)
	$(GO) test ./peer/meta -run '^$$' -fuzz '^FuzzParseMagnet$$' -fuzztime $(FUZZTIME)
	$(GO) test ./peer/meta -run '^$$' -fuzz '^FuzzParseInfoHash$$' -fuzztime $(FUZZTIME)
	$(GO) test ./peer/meta -run '^$$' -fuzz '^FuzzCountFiles$$' -fuzztime $(FUZZTIME)
	$(GO) test ./storage -run '^$$' -fuzz '^FuzzCheckInfo$$' -fuzztime $(FUZZTIME)
	$(GO) test ./cmd/shoal -run '^$$' -fuzz '^FuzzParseSize$$' -fuzztime $(FUZZTIME)
	$(GO) test ./tracker -run '^$$' -fuzz '^FuzzAnnounce$$' -fuzztime $(FUZZTIME)
	$(GO) test ./peer/flood/wire -run '^$$' -fuzz '^FuzzUnmarshal$$' -fuzztime $(FUZZTIME)
	$(GO) test ./peer/flood/wire -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime $(FUZZTIME)
	$(GO) test ./peer/dht -run '^$$' -fuzz '^FuzzPacket$$' -fuzztime $(FUZZTIME)

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest ./...

clean:
	rm -rf bin
