# sessiongate — see README.md. `make test` is the test command CI runs.
SHELL := /usr/bin/env bash -o pipefail
BIN := $(CURDIR)/bin
GO ?= go
export GOFLAGS ?= -buildvcs=false

CONTROLLER_GEN := $(BIN)/controller-gen

.PHONY: all build generate lint test test-bins demo bench clean

all: build

# Static (no cgo), no build paths, no debug info: what the image ships. The
# Dockerfile and the stand-alone test build with exactly these (make build).
GO_BUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w"

build: ## Build sessiongate and sgctl (also as the kubectl plugin kubectl-sessiongate) into bin/.
	$(GO_BUILD) -o $(BIN)/sessiongate ./cmd/sessiongate
	$(GO_BUILD) -o $(BIN)/sgctl ./cmd/sgctl
	ln -sf sgctl $(BIN)/kubectl-sessiongate

bench: test-bins build ## Measure the gateway against direct and kubectl proxy; writes bench/results/latest.{json,md}.
	$(GO) run ./cmd/sgbench -bin $(BIN) -out bench/results

demo: test-bins build ## Run a complete local gateway until Ctrl-C (see README).
	$(BIN)/sessiongate dev

generate: $(CONTROLLER_GEN) ## Regenerate deepcopy, CRDs, the gateway's Role and the target RBAC from markers (and the chart's copies).
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd
	$(CONTROLLER_GEN) rbac:roleName=sessiongate paths=./internal/... output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) rbac:roleName=sessiongate-minter paths=./config/target/minter output:rbac:artifacts:config=config/target/minter
	$(CONTROLLER_GEN) rbac:roleName=sessiongate-csr paths=./config/target/csr output:rbac:artifacts:config=config/target/csr
	$(CONTROLLER_GEN) rbac:roleName=sessiongate-debug paths=./config/target/debug output:rbac:artifacts:config=config/target/debug
	cat config/target/minter/{head,role,bindings}.yaml >config/target/rbac.yaml
	cat config/target/csr/{head,role,bindings}.yaml >config/target/rbac-csr.yaml
	cat config/target/debug/{head,role,bindings}.yaml >config/target/rbac-debug.yaml
	cp config/crd/*.yaml charts/sessiongate/crds/
	cp config/rbac/role.yaml charts/sessiongate/files/role.yaml

lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-clean:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test-bins: ## Build kube-apiserver, etcd, kubectl (and kwok) from the Go module proxy into bin/.
	hack/test-bins.sh $(BIN)

test: test-bins lint ## Run every test against real kube-apiservers.
	KUBEBUILDER_ASSETS=$(BIN) $(GO) test -count=1 -timeout 30m ./...

$(CONTROLLER_GEN):
	GOBIN=$(BIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0

clean:
	rm -rf $(BIN)
