# Canopy's tasks. `make` lists them.
GO        ?= go
BIN       ?= bin
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
# Pinned tool versions: `make tools` installs exactly these.
BUF_VERSION                ?= v1.75.0
PROTOC_GEN_GO_VERSION      ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.2
GRPC_GATEWAY_VERSION       ?= v2.33.0
DATA      ?= data
BENCHTIME ?= 1s
# Fuzz budgets are execution counts, not durations: with Go 1.26 a duration
# can end a run with a spurious "context deadline exceeded" (golang/go#75804).
FUZZTIME  ?= 100000x

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

.PHONY: build
build: ## build canopyd, canopy and canopyload into bin/ (stamped with the commit)
	$(GO) build -buildvcs=auto -o $(BIN)/ ./cmd/...

.PHONY: run
run: ## run canopyd on 127.0.0.1:7070 (HTTP/JSON on 7080, the console on 7090) with its bbolt store in ./data (the ATLAS example loaded when empty)
	$(GO) run ./cmd/canopyd --data $(DATA) --example atlas --http-listen 127.0.0.1:7080 --console-listen 127.0.0.1:7090

.PHONY: cluster
cluster: build ## run a local cluster to try: etcd and three canopyd nodes sharing it, on 127.0.0.1 (data in ./data/cluster)
	$(BIN)/canopycluster --canopyd $(BIN)/canopyd --data $(DATA)/cluster

# The race detector makes the differential tests about eight times slower,
# so under it they build a fifth of their worlds; the second pass runs
# them in full without it (over 1,000,000 decisions against the reference).
.PHONY: test
test: ## run every test with the race detector, then the differential tests in full without it
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) test -count=1 -timeout 15m -run 'Differential' ./graph/

.PHONY: bench
bench: ## run the benchmarks (CANOPY_BENCH_FULL=1 for the full DESIGN.md organisation)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./graph/ ./store/

.PHONY: tools
tools: ## install the pinned buf and protoc plugins into GOBIN
	$(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	$(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
	$(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)

.PHONY: proto
proto: ## lint the protos and regenerate the Go beside them
	PATH="$(GOBIN):$$PATH" buf lint
	PATH="$(GOBIN):$$PATH" buf generate --template proto/buf.gen.yaml

.PHONY: proto-check
proto-check: proto ## fail when the committed generated code is stale
	@git diff --exit-code -- proto/ || { echo "generated code is stale: run make proto and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- proto/)" || { git status --porcelain -- proto/; echo "untracked generated files: run make proto and commit"; exit 1; }

# Every commit since BREAKING_SINCE that changed the protos is compared
# with its parent, so a break in any commit of a submission is caught, not
# only one in its last commit. buf clones the repository to read a ref, 50
# commits deep unless told: BREAKING_DEPTH reaches back past the oldest.
BREAKING_SINCE ?= d1143c3
BREAKING_DEPTH ?= 10000
.PHONY: proto-breaking
proto-breaking: ## fail when a commit breaks the API (buf breaking against its parent)
	@for c in $$( (git rev-parse HEAD; git rev-list $(BREAKING_SINCE)..HEAD -- proto/) | sort -u); do \
		git rev-parse -q --verify "$$c~1" >/dev/null || { echo "no parent of $$c to compare with"; continue; }; \
		echo "buf breaking: $$(git log -1 --format='%h %s' $$c)"; \
		PATH="$(GOBIN):$$PATH" buf breaking ".git#ref=$$c,depth=$(BREAKING_DEPTH)" --against ".git#ref=$$c~1,depth=$(BREAKING_DEPTH)" || exit 1; \
	done
	@git diff --quiet HEAD -- proto/ || { echo "buf breaking: the work tree"; PATH="$(GOBIN):$$PATH" buf breaking --against ".git#ref=HEAD"; }

.PHONY: lint
lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'))" || { gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'); exit 1; }
	$(GO) vet ./...

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME executions
	$(GO) test -run '^$$' -fuzz '^FuzzParseCheck$$' -fuzztime $(FUZZTIME) ./scenario/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./scenario/
	$(GO) test -run '^$$' -fuzz '^FuzzWrite$$' -fuzztime $(FUZZTIME) ./graph/
	$(GO) test -run '^$$' -fuzz '^FuzzRestore$$' -fuzztime $(FUZZTIME) ./graph/
	$(GO) test -run '^$$' -fuzz '^FuzzRecordDecode$$' -fuzztime $(FUZZTIME) ./graph/
	$(GO) test -run '^$$' -fuzz '^FuzzHistoryText$$' -fuzztime $(FUZZTIME) ./graph/
	$(GO) test -run '^$$' -fuzz '^FuzzKeys$$' -fuzztime $(FUZZTIME) ./store/
	$(GO) test -run '^$$' -fuzz '^FuzzParseTokens$$' -fuzztime $(FUZZTIME) ./server/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./orgfile/
