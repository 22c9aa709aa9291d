#!/usr/bin/env bash
# Fetches the pinned Pkl CLI (the Java build, from Maven Central) into the local Maven cache
# and prints the jar's path. Tests evaluate crd/RestateCluster.pkl with it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
jar="$HOME/.m2/repository/org/pkl-lang/pkl-cli-java/$PKL_VERSION/pkl-cli-java-$PKL_VERSION.jar"
if [ ! -f "$jar" ]; then
  echo "[install-pkl] fetching org.pkl-lang:pkl-cli-java:$PKL_VERSION from Maven Central" >&2
  mvn -q dependency:get "-Dartifact=org.pkl-lang:pkl-cli-java:$PKL_VERSION" >&2 \
    || { echo "[install-pkl] FAILED: mvn dependency:get pkl-cli-java:$PKL_VERSION" >&2; exit 1; }
fi
echo "$jar"
