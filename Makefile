# kubeup. `make help` lists the targets. Tools the tests run for real (Ignition) are built from
# the Go module proxy at pinned versions into ~/.cache/kubeup (XDG_CACHE_HOME), never into the repo.

GO ?= go
export GOFLAGS ?= -buildvcs=false

.PHONY: help build test lint bench fuzz e2e e2e-boot e2e-cluster e2e-day2 e2e-rollback e2e-upgrade e2e-network smoke up down status conformance conformance-summary tools toolchain bundle image clean

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# The commit `version` prints. (The image's agent is not stamped: its binary's hash keys the
# image cache, which would then be rebuilt on every commit.)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null)

build: ## build the commands into bin/ (version stamped with the commit)
	$(GO) build -ldflags "-X kubeup.dev/kubeup/internal/versions.Commit=$(COMMIT)" -o bin/ ./ignition-gen ./kubeup ./kubeup-agent ./kubeup-probe

tools: ## build the pinned third-party tools the tests use (cached): Ignition, Packer (1.9.4, and 1.11.2 for plugins install), EC2 metadata mock, debootstrap, qemu-img
	hack/tools.sh ignition >/dev/null
	hack/tools.sh aemm >/dev/null
	hack/tools.sh packer >/dev/null
	hack/tools.sh packer-install >/dev/null
	hack/tools.sh image-packages
	hack/tools.sh qemu

toolchain: ## build the default Kubernetes release and its etcd from source (KUBEUP_KUBERNETES=v1.36.3 for another; cached; ~13 minutes cold)
	hack/toolchain.sh >/dev/null

bundle: ## the offline component images, built from source (KUBEUP_KUBERNETES picks the release; cached; prints the directory)
	hack/bundle.sh

test: tools toolchain ## every test (as root): unit, Ignition apply, Packer templates, real control plane
	KUBEUP_IGNITION=$$(hack/tools.sh ignition) KUBEUP_PACKER=$$(hack/tools.sh packer) KUBEUP_PACKER_INSTALL=$$(hack/tools.sh packer-install) KUBEUP_AEMM=$$(hack/tools.sh aemm) KUBEUP_TOOLCHAIN=$$(hack/toolchain.sh) \
	  $(GO) test -count=1 -timeout 30m ./...

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l .); \
	  if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$$(hack/tools.sh staticcheck) ./...

bench: ## rendering 1,000 and 10,000 machines (time, memory, bytes); bring-up power-on to all phases, kubeup vs kubeadm side by side
	hack/tools.sh qemu
	KUBEUP_IMAGE=$$(hack/image.sh) $(GO) run ./hack/bench

fuzz: ## run the config decoder fuzz target for a minute
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./internal/cluster/

image: ## the Debian machine image for QEMU, by packer build images/qemu-debian.pkr.hcl (KUBEUP_KUBERNETES picks the release; cached; prints the directory)
	hack/image.sh

# Each e2e target fits about 2.5 hours on this machine with its builds done cold (a new machine
# builds the toolchain, bundle and image of a release in about half an hour: a cold .ci/run took 46
# minutes in all on 2026-12-07); make e2e runs them all.
# -p 1: one package at a time; two packages' VMs at once would share the host's two cores.
e2e: e2e-boot e2e-cluster e2e-day2 e2e-network ## every end-to-end test (as root): e2e-boot, e2e-cluster, e2e-rollback, e2e-upgrade, e2e-network

E2E_BOOT_ENV = KUBEUP_BUNDLE=$$(hack/bundle.sh) KUBEUP_COMPONENTS=$$(hack/components.sh) KUBEUP_IMAGE=$$(hack/image.sh)

e2e-boot: ## the parts end to end (as root): bundle in containerd, flannel CNI, the image booted, a 3-machine cluster network-booted, then a config change rolled onto one node (16 min measured, the image rebuilt in it)
	hack/tools.sh e2e-packages
	$(E2E_BOOT_ENV) $(GO) test -tags e2e -p 1 -count=1 -v -timeout 90m ./test/bundle/ ./test/cni/ ./test/image/ ./test/pxe/

e2e-cluster: ## a 3-machine QEMU cluster end to end (as root): faults, a node replaced, the master restored from a snapshot; certificate and CA rotation (~90 min)
	hack/tools.sh e2e-packages
	$(E2E_BOOT_ENV) $(GO) test -tags e2e -count=1 -v -timeout 120m -skip 'TestSmoke|TestUpgrade|TestConfigChange' ./test/cluster/

e2e-day2: e2e-rollback e2e-upgrade ## day two end to end: e2e-rollback, then e2e-upgrade

e2e-network: ## the upstream suite's sig-network [Conformance] specs (Services, DNS, pod networking) against a fresh QEMU cluster, as make conformance runs them (as root)
	SHARD=1/1 CONFORMANCE_NAME=sig-network CONFORMANCE_FOCUS='\[sig-network\].*\[Conformance\]' hack/conformance.sh

# Every release's image (internal/versions/releases.txt), since an upgrade goes from one to another.
E2E_IMAGES = hack/tools.sh qemu && for r in $$(awk '!/^\#/ && NF {print $$1}' internal/versions/releases.txt); do KUBEUP_KUBERNETES=$$r hack/image.sh >/dev/null || exit 1; done

e2e-rollback: ## a cluster at the older release whose upgrade is rolled back twice (once with etcd's data from the snapshot); a cluster at the newer release with one node's config changed and rolled (52 min measured, builds cached; the older release's build cold ~20 more)
	$(E2E_IMAGES)
	$(GO) test -tags e2e -count=1 -v -timeout 120m -run '^(TestUpgradeRollback|TestConfigChange)$$' ./test/cluster/

e2e-upgrade: ## a cluster at the older release upgraded to the newer under load (29 min measured, builds cached; the older release's build cold ~20 more)
	$(E2E_IMAGES)
	$(GO) test -tags e2e -count=1 -v -timeout 120m -run '^TestUpgrade$$' ./test/cluster/

smoke: ## CI's boot guard: a master and one node in QEMU, every phase, no faults
	hack/tools.sh qemu
	KUBEUP_IMAGE=$$(hack/image.sh) $(GO) test -tags e2e -count=1 -v -timeout 60m -run TestSmoke ./test/cluster/

conformance: ## shard SHARD=I/N of the upstream [Conformance] suite against a fresh QEMU cluster, test images from a registry on this host (as root; docs/conformance.md)
	hack/conformance.sh

conformance-summary: ## the counts and failures of every conformance shard run on this commit
	$(GO) run ./hack/conformance summary .kubeup/conformance/results/conformance/$$(git rev-parse --short HEAD)$$([ -z "$$(git status --porcelain --untracked-files=no)" ] || echo -dirty)

up: ## build what is missing (cached), then bring up configs/local.yaml in QEMU: 1 master + 2 nodes
	hack/tools.sh qemu
	img=$$(hack/image.sh) && $(GO) run ./kubeup up --config configs/local.yaml --image "$$img"

status: ## the machines of `make up` and their progress
	$(GO) run ./kubeup status --config configs/local.yaml

down: ## stop the machines of `make up` and remove what it made (the secrets bundle stays)
	$(GO) run ./kubeup down --config configs/local.yaml

clean: ## remove build outputs (never the secrets bundle in .kubeup/)
	rm -rf bin out
