#!/usr/bin/env bash
# make conformance SHARD=I/N: runs shard I of N of Kubernetes' [Conformance] suite, at the
# release kubeup brings up by default, against a fresh 3-machine QEMU cluster whose test images
# come from a registry on this host (docs/conformance.md):
#
#   1. builds e2e.test, ginkgo and the test images' parts (hack/conformance-tools.sh), the
#      registry (distribution) and the machine image, all cached;
#   2. starts a new registry on 127.0.0.1 over TLS with its own CA and a password
#      (.kubeup/conformance/registry) and pushes every test image to it;
#   3. brings up the cluster "conformance" from a config this script writes: its registries:
#      trust the registry's CA and its credentials are in the secrets bundle (kubeup registry
#      login); qemu.hostForwards lets the machines reach the registry at 10.0.2.100:5000;
#   4. lists the suite's specs (a dry run), deals them into N shards, and runs shard I with
#      ginkgo, parallel specs on CONFORMANCE_PROCS processes and [Serial] ones after them, the
#      suite's image names mapped to the registry (--kube-test-repo-list);
#   5. writes junit.xml, run.json and the log into
#      .kubeup/conformance/results/<name>/<commit>/<I>-of-<N>/ and prints the merged summary of
#      every shard of that commit so far (make conformance-summary prints it again).
#
# Environment: SHARD (I/N, required), CONFORMANCE_FOCUS (the specs, a regular expression;
# default \[Conformance\]) and CONFORMANCE_NAME (their results' name; default conformance),
# CONFORMANCE_PROCS (default 2), CONFORMANCE_TIMEOUT (the suite's run in minutes, default 120),
# CONFORMANCE_REGISTRY (the registry's loopback address, default 127.0.0.1:5000). The cluster
# stays up afterwards for a look; the next run replaces it.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

shard=${SHARD:-}
if ! [[ $shard =~ ^([0-9]+)/([0-9]+)$ ]] || [ "${BASH_REMATCH[1]}" -lt 1 ] || [ "${BASH_REMATCH[1]}" -gt "${BASH_REMATCH[2]}" ]; then
  log "SHARD=I/N is required, 1 <= I <= N: the whole suite does not fit one run here; make conformance SHARD=1/8, then 2/8 ... 8/8"
  exit 2
fi
i=${BASH_REMATCH[1]} n=${BASH_REMATCH[2]}
focus=${CONFORMANCE_FOCUS:-'\[Conformance\]'}
# Two processes: at three, the first make e2e-network runs overloaded the cluster under TCG
# (pods minutes from created to running, specs failing on their waits).
procs=${CONFORMANCE_PROCS:-2}
minutes=${CONFORMANCE_TIMEOUT:-120}
[[ $minutes =~ ^[1-9][0-9]*$ ]] || { log "CONFORMANCE_TIMEOUT=$minutes: the suite's run in minutes, such as 120"; exit 2; }
listen=${CONFORMANCE_REGISTRY:-127.0.0.1:5000}
guest=10.0.2.100:5000
repo_path=e2e
cluster=conformance
state=.kubeup/$cluster
commit=$(git rev-parse --short HEAD)
[ -z "$(git status --porcelain --untracked-files=no)" ] || commit="$commit-dirty"
name=${CONFORMANCE_NAME:-conformance}
[[ $name =~ ^[a-z0-9-]+$ ]] || { log "CONFORMANCE_NAME=$name: lower-case letters, digits and dashes"; exit 2; }
# Absolute: ginkgo runs e2e.test in the binary's directory.
results=$PWD/$state/results/$name/$commit/$i-of-$n
read -r K8S_VERSION _ < <(release "") || exit 1

log "building what the run needs (cached)"
tools=$(hack/conformance-tools.sh)
registry=$(hack/tools.sh registry)
hack/tools.sh qemu
kubectl=$(hack/toolchain.sh)/kubectl
image=$(hack/image.sh)
source_dir=$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S_VERSION
mkdir -p "$state/bin" && chmod 700 "$state"
go build -o "$state/bin/" ./kubeup ./ignition-gen ./hack/conformance
kubeup=$state/bin/kubeup conformance=$state/bin/conformance ignition_gen=$state/bin/ignition-gen
rm -rf "$results" && mkdir -p "$results"
exec > >(tee "$results/run.log") 2>&1

# The specs of the shard, from a dry run: no cluster needed, so a bad focus fails in seconds.
log "listing the specs of $focus (dry run), shard $i of $n"
"$tools/e2e.test" --ginkgo.dry-run --ginkgo.focus="$focus" --ginkgo.json-report="$results/dry-run.json" \
  --ginkgo.no-color --provider=skeleton >"$results/dry-run.log" 2>&1 || {
  log "the dry run failed: $results/dry-run.log"
  exit 1
}
mapfile -t shard_flags < <("$conformance" shard -shard "$i/$n" "$results/dry-run.json")
log "${#shard_flags[@]} spec locations in this shard"

# The registry: new for each run (its certificate lives a day), its CA in the cluster's config.
regdir=$PWD/$state/registry
rm -rf "$regdir"
"$conformance" registry -dir "$regdir" -listen "$listen" -guest "$guest" -username conformance
log "starting the registry on $listen"
# No tracing: distribution exports OpenTelemetry traces to localhost:4318 unless told not to.
OTEL_TRACES_EXPORTER=none "$registry" serve "$regdir/config.yml" >"$results/registry.log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true' EXIT
deadline=$((SECONDS + 60))
until curl -sf --cacert "$regdir/ca.crt" -o /dev/null -w '' "https://$listen/v2/" -u "conformance:$(cat "$regdir/password")"; do
  kill -0 $registry_pid 2>/dev/null || { log "the registry exited: $results/registry.log"; exit 1; }
  [ $SECONDS -lt $deadline ] || { log "the registry did not answer on $listen within 60s: $results/registry.log"; exit 1; }
  sleep 1
done
log "pushing the test images"
timeout 20m "$conformance" push -repo "$listen/$repo_path" -ca "$regdir/ca.crt" -username conformance \
  -bins "$tools/bin" -userland "$tools/userland" -source "$source_dir" <"$regdir/password" | tee "$results/images.txt"

# The cluster's config: configs/local.yaml's cluster on a network of its own, with the registry.
config=$state/cluster.yaml
{
  cat <<EOF
# Written by hack/conformance.sh: the cluster make conformance runs the suite against.
apiVersion: kubeup.dev/v1alpha1
kind: Cluster
name: $cluster
kubernetesVersion: $K8S_VERSION
target: qemu
controlPlane:
  endpoint: 10.30.0.10:6443
  certSANs: [127.0.0.1, localhost]
registries:
  - registry: $guest
    mirrors: [https://$guest]
    ca: |
EOF
  sed 's/^/      /' "$regdir/ca.crt"
  cat <<EOF
qemu:
  memory: 3G
  cpus: 2
  network: 10.30.0.0/24
  hostForwards:
    - guest: $guest
      host: $listen
machines:
EOF
  for m in master:10 node-1:11 node-2:12; do
    role=node && [ "${m%%:*}" = master ] && role=master
    printf '  - name: %s\n    role: %s\n    mac: "52:54:00:30:00:%s"\n    address: 10.30.0.%s/24\n    gateway: 10.30.0.1\n' \
      "${m%%:*}" "$role" "${m##*:}" "${m##*:}"
  done
} >"$config"

log "bringing up a fresh cluster $cluster"
"$kubeup" down --config "$config" >/dev/null 2>&1 || true
"$ignition_gen" validate --config "$config"
# The bundle first, so that the registry's credentials are in it before any config is rendered.
"$ignition_gen" --config "$config" --out "$state/ignition" >/dev/null
"$kubeup" registry login "$guest" --config "$config" --username conformance --password-stdin <"$regdir/password"
"$kubeup" up --config "$config" --image "$image" --timeout 45m
kubeconfig=$(realpath "$("$kubeup" kubeconfig --config "$config")")

# The large test images on every machine before the specs: their first pulls under emulation
# take minutes, longer than the specs wait (which images: hack/conformance/images.go).
log "pulling the test images the specs share onto every machine (at most 20 minutes)"
"$conformance" prepull -repo "$guest/$repo_path" >"$results/prepull.yaml"
"$kubectl" --kubeconfig "$kubeconfig" apply -f "$results/prepull.yaml"
"$kubectl" --kubeconfig "$kubeconfig" -n kubeup-prepull rollout status daemonset/prepull --timeout=20m
# The specs start once the nodes have removed the pre-pull pods: in a run that did not wait, a
# node's containerd still tore one down (its task deletes timing out) while it made the first
# spec's sandbox, which took 2m48s, longer than that spec waits for its pods.
"$kubectl" --kubeconfig "$kubeconfig" delete namespace kubeup-prepull --timeout=10m

# Every registry the suite names is mapped to the one on this host.
cat >"$results/repo-list.yaml" <<EOF
promoterE2eRegistry: $guest/$repo_path
buildImageRegistry: $guest/$repo_path
gcEtcdRegistry: $guest/$repo_path
gcRegistry: $guest/$repo_path
sigStorageRegistry: $guest/$repo_path
dockerLibraryRegistry: $guest/$repo_path
cloudProviderGcpRegistry: $guest/$repo_path
privateRegistry: $guest/private
invalidRegistry: invalid.registry.k8s.io/invalid
EOF
json_focus=${focus//\\/\\\\}
printf '{"commit": "%s", "release": "%s", "shard": "%s/%s", "focus": "%s"}\n' "$commit" "$K8S_VERSION" "$i" "$n" "${json_focus//\"/\\\"}" >"$results/run.json"

log "running shard $i of $n: $procs processes, [Serial] specs last; at most $minutes minutes"
rc=0
# Ginkgo's own timeout reports the specs under way; the outer one is for a ginkgo that hangs.
KUBE_TEST_REPO_LIST=$results/repo-list.yaml timeout --kill-after=1m "$((minutes + 5))m" \
  "$tools/ginkgo" run --procs="$procs" --timeout="${minutes}m" --no-color --silence-skips --focus="$focus" \
  "${shard_flags[@]/#--ginkgo./--}" --junit-report="$results/junit.xml" \
  "$tools/e2e.test" -- --kubeconfig="$kubeconfig" --kubectl-path="$kubectl" --provider=skeleton \
  --repo-root="$source_dir" --kube-test-repo-list="$results/repo-list.yaml" --disable-log-dump || rc=$?
[ -f "$results/junit.xml" ] || { log "the suite wrote no JUnit report (exit $rc): $results/run.log"; exit 1; }
log "shard $i of $n done (exit $rc); the summary of commit $commit so far:"
"$conformance" summary "$(dirname "$results")" | tee "$(dirname "$results")/summary.txt"
exit "$rc"
