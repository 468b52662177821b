# The two commands of the README: `make run` and `make test`. Everything else is a step of them.
# Go >= 1.26: the one on PATH, else the machine's /usr/local/go.
GO            ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
STATICCHECK   ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN           := bin/wirefleet
DATA_DIR      ?= /var/lib/wirefleet
export CGO_ENABLED ?= 0
export PATH := $(PATH):/usr/local/go/bin

.PHONY: all build run test test-deps fmt-check third-party-check vet staticcheck unit privileged bench bench-smoke fmt clean

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/wirefleet

# The main job on embedded defaults.
run: build
	./$(BIN) server -data $(DATA_DIR) -listen 127.0.0.1:8080

test: test-deps fmt-check third-party-check vet staticcheck unit privileged bench-smoke

test-deps:
	./scripts/install-test-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed (run make fmt):"; echo "$$out"; exit 1; fi

# third_party/wireguard-go must be upstream + third_party/wireguard-go.patch, nothing more.
third-party-check:
	GO=$(GO) ./scripts/check-third-party.sh

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

# Unit tests with the race detector; -short skips the privileged tests (they run next).
# The patched wireguard-go (third_party/README.md) is a module of its own: its device tests
# run here too (-vet=off: upstream's tests trip vet's copylocks check).
unit:
	CGO_ENABLED=1 $(GO) test -race -short -count=1 ./...
	cd third_party/wireguard-go && CGO_ENABLED=1 $(GO) test -race -vet=off -count=1 ./device/

# Everything again without -short: privileged end-to-end tests in network namespaces.
privileged:
	$(GO) test -count=1 -p 2 -timeout 20m ./...

# Every benchmark once (-benchtime 1x), so none rots unnoticed and each still measures what
# docs/benchmarks.md says; the admin-traffic ones only measure a 30 s window per size and are
# left to `make bench`.
bench-smoke:
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -skip 'AdminTraffic' -timeout 20m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

fmt:
	gofmt -w .

clean:
	rm -rf bin
