# Canopy's tasks. `make` lists them.
GO        ?= go
BIN       ?= bin
DATA      ?= data
BENCHTIME ?= 1s
FUZZTIME  ?= 20s

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

.PHONY: build
build: ## build canopyd into bin/
	$(GO) build -o $(BIN)/ ./cmd/...

.PHONY: run
run: ## run canopyd on its embedded bbolt store in ./data
	$(GO) run ./cmd/canopyd --data $(DATA)

.PHONY: test
test: ## run every test with the race detector
	$(GO) test -race -count=1 ./...

.PHONY: bench
bench: ## run the benchmarks (CANOPY_BENCH_FULL=1 for the full DESIGN.md organisation)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./graph/ ./store/

.PHONY: lint
lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME
	$(GO) test -run '^$$' -fuzz '^FuzzParseCheck$$' -fuzztime $(FUZZTIME) ./scenario/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./scenario/
	$(GO) test -run '^$$' -fuzz '^FuzzWrite$$' -fuzztime $(FUZZTIME) ./graph/
	$(GO) test -run '^$$' -fuzz '^FuzzRestore$$' -fuzztime $(FUZZTIME) ./graph/
	$(GO) test -run '^$$' -fuzz '^FuzzKeys$$' -fuzztime $(FUZZTIME) ./store/
