# noops: `make demo` to see it work, `make test` to check it.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/noops
PKGS  := ./...
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X noops/internal/cli.Version=$(VERSION)

.PHONY: all build setup test test-short lint fuzz bench demo demo-stop clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/noops

# Installs what the server and the tests need from the distribution's
# packages, only when missing. Needs root and the package archive only.
setup:
	@./scripts/setup.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# Every check CI runs: format, vet, the architecture rules, all test tiers
# (unit, integration on real runc, end-to-end with the built binary).
test: lint build
	$(GO) test -race -count=1 -timeout 30m $(PKGS)
	# The whole CRS regression suite (a race build runs one test in eight).
	$(GO) test -count=1 -run TestCRS ./internal/shield
	# The example apps are modules of their own.
	@for m in $$(dirname $$(git ls-files 'examples/*go.mod' 'examples/*/*/go.mod')); do \
	  (cd $$m && $(GO) vet ./... && $(GO) test -count=1 ./...) || exit 1; done

test-short:
	$(GO) test -short -count=1 $(PKGS)

# Each fuzzer for FUZZTIME; the seeds also run in `make test`.
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./internal/spec -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./internal/source -run '^$$' -fuzz FuzzUnpack -fuzztime $(FUZZTIME)
	$(GO) test ./internal/image -run '^$$' -fuzz FuzzExtract -fuzztime $(FUZZTIME)
	$(GO) test ./internal/api -run '^$$' -fuzz FuzzRequestBodies -fuzztime $(FUZZTIME)
	$(GO) test ./internal/gateway -run '^$$' -fuzz FuzzAppOf -fuzztime $(FUZZTIME)
	$(GO) test ./internal/observe/trace -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./internal/events -run '^$$' -fuzz FuzzEventHeaders -fuzztime $(FUZZTIME)
	$(GO) test ./internal/observe/logstore -run '^$$' -fuzz FuzzDecodeBlock -fuzztime $(FUZZTIME)
	$(GO) test ./internal/observe/otlp -run '^$$' -fuzz FuzzReceiveTraces -fuzztime $(FUZZTIME)
	$(GO) test ./internal/observe/tracestore -run '^$$' -fuzz FuzzDecodeBlock -fuzztime $(FUZZTIME)
	$(GO) test ./internal/observe/history -run '^$$' -fuzz FuzzAppendOTLP -fuzztime $(FUZZTIME)
	$(GO) test ./internal/observe/export -run '^$$' -fuzz FuzzReadRecord -fuzztime $(FUZZTIME)
	$(GO) test ./internal/observe/monitor -run '^$$' -fuzz FuzzParseStatus -fuzztime $(FUZZTIME)
	$(GO) test ./internal/observe/alert -run '^$$' -fuzz FuzzRule -fuzztime $(FUZZTIME)
	$(GO) test ./internal/observe/anomaly -run '^$$' -fuzz FuzzUnmarshal -fuzztime $(FUZZTIME) -fuzzminimizetime 200x
	$(GO) test ./internal/notify -run '^$$' -fuzz FuzzAlertBodies -fuzztime $(FUZZTIME)
	$(GO) test ./internal/forensics -run '^$$' -fuzz FuzzExtract -fuzztime $(FUZZTIME) -fuzzminimizetime 50x
	$(GO) test ./internal/forensics/pcap -run '^$$' -fuzz FuzzReader -fuzztime $(FUZZTIME)
	$(GO) test ./internal/forensics/pcap -run '^$$' -fuzz FuzzDecodeEthernet -fuzztime $(FUZZTIME)
	$(GO) test ./internal/forensics/stream -run '^$$' -fuzz FuzzAssembler -fuzztime $(FUZZTIME)
	$(GO) test ./internal/forensics/unpack -run '^$$' -fuzz FuzzWalk -fuzztime $(FUZZTIME)
	$(GO) test ./internal/forensics/proto/ftp -run '^$$' -fuzz FuzzFTPControl -fuzztime $(FUZZTIME)
	$(GO) test ./internal/forensics/proto/httpx -run '^$$' -fuzz FuzzHTTP -fuzztime $(FUZZTIME)
	$(GO) test ./internal/forensics/proto/smtp -run '^$$' -fuzz FuzzSMTP -fuzztime $(FUZZTIME)
	$(GO) test ./internal/forensics/proto/tftp -run '^$$' -fuzz FuzzTFTP -fuzztime $(FUZZTIME)

bench: build
	./bench/run.sh

# Starts a server with its data under ./noops-data (or reuses a running
# one), deploys examples/hello-go and prints a URL that works.
demo: setup build
	./$(BIN) demo

demo-stop:
	./$(BIN) demo --stop

clean:
	rm -rf bin
