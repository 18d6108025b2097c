# chunked-uploader: build, run and test. `make help` lists the targets.
#
# Every Go module is a `use` entry of go.work (the repository root is not a module, so a root
# `go test ./...` does not work); targets that act per module loop over them. Binaries are built
# without cgo. `go test -race` needs cgo and a C compiler (gcc), so only the race-enabled test run
# turns cgo on.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
.DELETE_ON_ERROR:
# Targets run one after another, in the order their prerequisites are listed.
.NOTPARALLEL:
MAKEFLAGS += --no-builtin-rules --no-print-directory

export CGO_ENABLED := 0

GO        ?= go
GOFMT     ?= gofmt
TESTFLAGS ?=
BIN       := $(CURDIR)/bin
TOOLS     := $(CURDIR)/.tools
# Test services: Samba and an S3 server on loopback. `test-services.sh env` prints the TEST_SMB_* and
# TEST_S3_* variables the tests read (the lines `start` also writes to env.sh in its state directory).
SERVICES  := bash scripts/test-services.sh

PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2

# Module directories from go.work (evaluated only by the targets that use them; an error if go.work is broken).
MODULES = $(or $(patsubst $(CURDIR)/%,%,$(shell $(GO) list -m -f '{{.Dir}}')),$(error no Go modules found: check go.work))
# go build for the binaries: -buildvcs=auto stamps the commit where the go command can (a plain
# clone, even with GOFLAGS=-buildvcs=false), and the -X flags of scripts/buildinfo-ldflags.sh
# stamp it where it cannot (a linked git worktree); --version prints it (sdk/buildinfo).
GOBUILD = $(GO) build -trimpath -buildvcs=auto -ldflags "$(shell bash scripts/buildinfo-ldflags.sh)"
# Plugins: every plugins/<name>/ with a main.go becomes bin/chunked-uploader-plugin-<name>.
PLUGINS := $(patsubst plugins/%/main.go,%,$(wildcard plugins/*/main.go))
# Run as root (CI) or through sudo for apt-get.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# each-module CMD: run CMD in every module directory; all modules run, then fail if any failed.
define each-module
failed=(); \
for d in $(MODULES); do \
  echo "--> $$d: $(1)"; \
  (cd "$$d" && $(1)) || failed+=("$$d"); \
done; \
if (( $${#failed[@]} )); then echo "FAILED in: $${failed[*]}" >&2; exit 1; fi
endef

# go-tool NAME PACKAGE VERSION: install PACKAGE@VERSION into .tools/ unless that version is there.
define go-tool
if ! $(GO) version -m $(TOOLS)/$(1) 2>/dev/null | grep -q '[[:space:]]$(3)[[:space:]]'; then \
  echo "installing $(2)@$(3) into .tools/"; \
  GOBIN=$(TOOLS) $(GO) install $(2)@$(3); \
fi
endef

# Fuzz targets: package:FuzzName. `make fuzz` runs each for FUZZTIME (a duration, or a count
# such as 40000x).
FUZZ_TARGETS := ./upload:FuzzValidateFilename ./api:FuzzDecodeInit ./auth:FuzzVerify
FUZZTIME     ?= 60s

.PHONY: test-deps sdk-js-build test-js bench fuzz fuzz-brief build check-host-deps run test test-modules test-short test-gowork-off lint \
	proto proto-tools proto-check services-start services-stop clean help

build: ## Build bin/chunked-uploader, the CLI bin/chunked-upload and bin/chunked-uploader-plugin-<name> for every plugin, then check-host-deps
	$(GOBUILD) -o bin/chunked-uploader ./cmd/chunked-uploader
	$(GOBUILD) -o bin/chunked-upload ./cmd/chunked-upload
	for p in $(PLUGINS); do $(GOBUILD) -o bin/chunked-uploader-plugin-$$p ./plugins/$$p; done
	@$(MAKE) check-host-deps

check-host-deps: ## Fail if the host binary links aws-sdk-go or go-smb2 (they belong in the plugins)
	@deps=$$($(GO) version -m bin/chunked-uploader); \
	if grep -E 'aws-sdk-go|go-smb2' <<<"$$deps"; then \
	  echo "bin/chunked-uploader must not link aws-sdk-go or go-smb2" >&2; exit 1; \
	fi

run: .env build ## Start the server from the repository root (local backend, port 3000); runs ./init.sh first if .env is missing
	exec ./bin/chunked-uploader

# .env has no prerequisites: init.sh runs only when the file does not exist.
.env:
	./init.sh

# Debian packages the tests need: gcc and libc6-dev for -race, chromium for the browser test,
# shellcheck, systemd (systemd-analyze) and python3 for the deployment tests, haproxy and nginx
# for the cluster test (cmd/e2e/cluster). Samba and the S3 server are installed by
# scripts/test-services.sh.
TEST_PACKAGES := gcc libc6-dev chromium shellcheck systemd python3 haproxy nginx

test: test-deps build test-gowork-off services-start sdk-js-build test-modules test-js fuzz-brief lint ## test-deps, build, test-gowork-off, services-start, sdk-js-build, test-modules (go test -race against real Samba and S3), test-js, fuzz-brief, lint

test-deps: ## Install the Debian packages the tests need, if any is missing (apt-get; root or sudo)
	@missing=$$(for p in $(TEST_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing $$missing with apt-get"; \
	  $(SUDO) apt-get update -qq; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

sdk-js-build: ## Build the TypeScript SDK into sdk/js/dist (npm ci, npm run build): the cluster test runs it in Node
	cd sdk/js && npm ci --no-audit --no-fund && npm run build

test-js: build ## TypeScript SDK (sdk/js): npm ci, build, Node tests and the headless Chromium test against bin/; tus clients (test/tus) on local and S3
	cd sdk/js && npm ci --no-audit --no-fund && CHUNKED_UPLOADER_BIN_DIR=$(BIN) npm test
	@svc_env=$$($(SERVICES) env); eval "$$svc_env"; \
	cd test/tus && npm ci --no-audit --no-fund && CHUNKED_UPLOADER_BIN_DIR=$(BIN) npm test

# fuzz-brief counts executions rather than time: with a duration, Go 1.26's fuzz coordinator can
# fail a run at its deadline with a bare "context deadline exceeded" and no input (golang/go#75804,
# fixed in Go 1.27); a count has no deadline. 40,000 runs take 3 to 20 s per target here.
fuzz-brief: ## Every fuzz target for 40,000 runs
	@$(MAKE) fuzz FUZZTIME=40000x

test-modules: ## go test -race in every module against the running services (make services-start first)
	@$(SERVICES) status >/dev/null || { echo "test services are not running: run 'make services-start' first" >&2; exit 1; }
	@svc_env=$$($(SERVICES) env); eval "$$svc_env"; export CHUNKED_UPLOADER_BIN_DIR=$(BIN); \
	$(call each-module,CGO_ENABLED=1 $(GO) test -race -count=1 $(TESTFLAGS) ./...)

test-short: build ## Quick dev loop: go test -short in every module, no services, no race detector
	@export CHUNKED_UPLOADER_BIN_DIR=$(BIN); \
	$(call each-module,$(GO) test -short -count=1 $(TESTFLAGS) ./...)

test-gowork-off: ## Build and vet every module on its own (GOWORK=off), as a user of that module would
	@$(call each-module,GOWORK=off $(GO) build -o /dev/null ./... && GOWORK=off $(GO) vet ./...)

BENCH_OUT          ?= bench-results.json
BENCH_LB_OUT       ?= bench-results-lb.json
BENCH_DELIVERY_OUT ?= bench-results-delivery.json
# The file size of the part-wise delivery measurement (cmd/e2e/benchdelivery), MiB.
BENCH_BIG_MB       ?= 2048
BENCH_DELIVERY_MB ?= 2048
BENCH_ROUNDS      ?= 31
# Sections of the bench to run, comma-separated (empty: all): ingest, delivery, s3, status.
BENCH_ONLY        ?=

bench: build ## Measure ingest, delivery (local, S3), RSS and status latency against baselines of the same run; BENCH_ONLY=ingest,... runs some sections; writes $(BENCH_OUT)
	@if [ -z "$(strip $(BENCH_ONLY))" ] || [[ ",$(BENCH_ONLY)," == *,s3,* ]]; then $(MAKE) services-start; fi
	@svc_env=$$($(SERVICES) env); eval "$$svc_env"; \
	cd cmd/e2e && $(GO) run ./bench -bin $(BIN) -dir $(CURDIR)/bench-work -out $(abspath $(BENCH_OUT)) \
	  -delivery-mib $(BENCH_DELIVERY_MB) -rounds $(BENCH_ROUNDS) -only "$(BENCH_ONLY)"
	cd cmd/e2e && $(GO) run ./benchlb -bin $(BIN) -dir $(CURDIR)/bench-work -out $(abspath $(BENCH_LB_OUT))
	@svc_env=$$($(SERVICES) env); eval "$$svc_env"; cd cmd/e2e && $(GO) run ./benchdelivery -bin $(BIN) -dir $(CURDIR)/bench-work -out $(abspath $(BENCH_DELIVERY_OUT)) -mib $(BENCH_BIG_MB)

fuzz: ## Run every fuzz target for FUZZTIME (default 60s; CI runs them briefly through make test)
	@cd host && for t in $(FUZZ_TARGETS); do \
	  echo "--> fuzz $${t#*:} ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}" || exit 1; \
	done

lint: ## gofmt -l over all tracked .go files (except *.pb.go) must print nothing; go vet in every module
	@files=$$(git ls-files -- '*.go' ':!:*.pb.go'); \
	unformatted=$$(if [ -n "$$files" ]; then $(GOFMT) -l $$files; fi); \
	if [ -n "$$unformatted" ]; then echo "not gofmt-ed (run gofmt -w):" >&2; echo "$$unformatted" >&2; exit 1; fi
	@$(call each-module,$(GO) vet ./...)

proto: proto-tools ## Regenerate proto/storage/v1/*.pb.go with protoc and the pinned generators
	protoc --plugin=protoc-gen-go=$(TOOLS)/protoc-gen-go --plugin=protoc-gen-go-grpc=$(TOOLS)/protoc-gen-go-grpc \
	  --proto_path=proto \
	  --go_out=proto --go_opt=paths=source_relative \
	  --go-grpc_out=proto --go-grpc_opt=paths=source_relative \
	  storage/v1/storage.proto

proto-tools: ## Install protoc (apt) and protoc-gen-go / protoc-gen-go-grpc (pinned, into .tools/) if missing
	@if ! command -v protoc >/dev/null || [ ! -d /usr/include/google/protobuf ]; then \
	  echo "installing protobuf-compiler and libprotobuf-dev with apt-get"; \
	  $(SUDO) apt-get update -qq; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends protobuf-compiler libprotobuf-dev; \
	fi
	@$(call go-tool,protoc-gen-go,google.golang.org/protobuf/cmd/protoc-gen-go,$(PROTOC_GEN_GO_VERSION))
	@$(call go-tool,protoc-gen-go-grpc,google.golang.org/grpc/cmd/protoc-gen-go-grpc,$(PROTOC_GEN_GO_GRPC_VERSION))

proto-check: proto ## Regenerate and fail if proto/ differs from the committed code (committed with Debian 12's protoc 3.21.12)
	git diff --exit-code -- proto/
	@new=$$(git ls-files --others --exclude-standard -- proto/); \
	if [ -n "$$new" ]; then echo "generated files not committed: $$new" >&2; exit 1; fi

services-start: ## Start Samba and the S3 server on loopback for the tests (installs them if missing; needs root)
	$(SERVICES) start

services-stop: ## Stop the test services
	$(SERVICES) stop

clean: ## Remove bin/
	rm -rf bin/

help: ## List the targets
	@awk -F':.*## ' '/^[a-z][a-z-]*:.*## /{printf "  %-16s %s\n", $$1, $$2}' $(firstword $(MAKEFILE_LIST))
