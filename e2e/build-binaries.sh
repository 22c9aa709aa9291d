#!/usr/bin/env bash
# Builds the real control-plane components from the Go module proxy and caches them outside
# the repository, keyed by version:
#   $RESTATE_OP_CACHE/bin/<component>-<version>/<binary>
# A component is rebuilt only when its pin in e2e/versions.env changes. Prints the bin dirs.
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod requires the staging modules at v0.0.0
# and replaces them with local paths, which only works in the main module. So we build it from a
# small wrapper module that requires k8s.io/kubernetes and replaces every staging module with
# its published v0.X.Y.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${RESTATE_OP_CACHE:-$HOME/.cache/restate-op}
export GOFLAGS=-buildvcs=false CGO_ENABLED=0
mkdir -p "$cache/bin" "$cache/build"
# One build at a time per cache: a second run (another work tree, a test starting while
# bootstrap builds) waits here, then finds the binaries built.
exec 9>"$cache/build/.lock"
flock 9

log() { printf '[build-binaries] %s\n' "$*" >&2; }
fail() { printf '[build-binaries] FAILED: %s\n' "$*" >&2; exit 1; }

built() {  # built DIR BIN... : true when every binary exists in DIR
  local dir=$1; shift
  for b in "$@"; do [ -x "$dir/$b" ] || return 1; done
}

kube_module() {  # kube_module: creates (once) the wrapper module dir and prints its path
  local v=$KUBERNETES_VERSION mod="$cache/build/kubernetes-$KUBERNETES_VERSION"
  # A dir made by an older version of this script (no .ready) is complete once go.sum exists.
  [ -f "$mod/go.sum" ] && [ -f "$mod/tools.go" ] && touch "$mod/.ready"
  if [ ! -f "$mod/.ready" ]; then
    rm -rf "$mod" && mkdir -p "$mod"
    local gomod
    gomod=$(cd "$mod" && go mod download -json "k8s.io/kubernetes@$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])') \
      || fail "kubernetes: go mod download k8s.io/kubernetes@$v"
    local staging="v0.${v#v1.}"
    {
      echo "module restate-op.local/kube-build"
      echo
      grep -E '^go [0-9]' "$gomod"
      echo
      echo "require k8s.io/kubernetes $v"
      echo
      echo "replace ("
      grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" \
        | awk -v s="$staging" '{print "\t" $1 " => " $1 " " s}'
      echo ")"
    } > "$mod/go.mod"
    cat > "$mod/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    (cd "$mod" && go mod tidy -e >/dev/null 2>&1 || true
     cd "$mod" && go mod download) || fail "kubernetes: module download"
    touch "$mod/.ready"
  fi
  # The node binaries (kubelet, kube-proxy) live in the same module, so they share its module
  # set and the Go build cache; added to an existing module dir without recreating it.
  if [ ! -f "$mod/tools_node.go" ]; then
    cat > "$mod/tools_node.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
    (cd "$mod" && go mod tidy -e >/dev/null 2>&1 || true
     cd "$mod" && go mod download) || fail "kubernetes: module download (kubelet, kube-proxy)"
  fi
  echo "$mod"
}

kube_ldflags() {
  local v=$KUBERNETES_VERSION minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    ld+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$ld"
}

build_kube_cmds() {  # build_kube_cmds OUTDIR CMD...
  local out=$1; shift
  built "$out" "$@" && return 0
  log "building Kubernetes $KUBERNETES_VERSION ($*)"
  local mod ld
  mod=$(kube_module)
  ld=$(kube_ldflags)
  mkdir -p "$out.tmp"
  for cmd in "$@"; do
    [ -x "$out.tmp/$cmd" ] && continue
    log "  go build $cmd"
    (cd "$mod" && nice go build -trimpath -ldflags "$ld" -o "$out.tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd") \
      || fail "kubernetes: go build $cmd"
  done
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_kubernetes() {
  build_kube_cmds "$cache/bin/kubernetes-$KUBERNETES_VERSION" \
    kube-apiserver kube-controller-manager kube-scheduler kubectl
}

# The real node's binaries, in their own dir so adding them never rebuilds the four above.
build_kubelet() {
  build_kube_cmds "$cache/bin/kubernetes-node-$KUBERNETES_VERSION" kubelet kube-proxy
}

build_go_install() {  # build_go_install NAME VERSION OUTBIN PACKAGE [LDFLAGS]
  local name=$1 v=$2 bin=$3 pkg=$4 ld=${5:-"-s -w"} out="$cache/bin/$1-$2"
  built "$out" "$bin" && return 0
  log "building $name $v ($pkg)"
  mkdir -p "$out.tmp"
  GOBIN="$out.tmp" nice go install -trimpath -ldflags "$ld" "$pkg@$v" || fail "$name: go install $pkg@$v"
  local produced
  produced=$(basename "${pkg%/}")
  [ "$produced" = "$bin" ] || mv "$out.tmp/$produced" "$out.tmp/$bin"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_etcd() {
  local v=$ETCD_VERSION out="$cache/bin/etcd-$ETCD_VERSION"
  built "$out" etcd && return 0
  log "building etcd $v"
  local mod="$cache/build/etcd-$v"
  rm -rf "$mod" && mkdir -p "$mod"
  cat > "$mod/go.mod" <<GOMOD
module restate-op.local/etcd-build

go 1.24

require go.etcd.io/etcd/server/v3 $v
GOMOD
  cat > "$mod/main.go" <<'GO'
// Command etcd runs the etcd server, exactly as go.etcd.io/etcd/server/v3's main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$mod" && go mod tidy && mkdir -p "$out.tmp" \
    && go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=release-$v" -o "$out.tmp/etcd" .) \
    || fail "etcd: build"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_kwok() {
  build_go_install kwok "$KWOK_VERSION" kwok sigs.k8s.io/kwok/cmd/kwok \
    "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
}

build_helm() {
  build_go_install helm "$HELM_VERSION" helm helm.sh/helm/v3/cmd/helm \
    "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
}

# CoreDNS with only the plugins the real node's cluster DNS needs (no forward: names outside
# the cluster get SERVFAIL, so nothing is ever resolved through the machine's resolver). A
# wrapper main that skips core/plugin (which imports all ~60 plugins) builds in a fraction of
# the time of `go install github.com/coredns/coredns`.
build_coredns() {
  local v=$COREDNS_VERSION out="$cache/bin/coredns-$COREDNS_VERSION"
  built "$out" coredns && return 0
  log "building CoreDNS $v (slim: kubernetes, cache, errors, health, ready, bind)"
  local mod="$cache/build/coredns-$v"
  rm -rf "$mod" && mkdir -p "$mod"
  cat > "$mod/go.mod" <<GOMOD
module restate-op.local/coredns-build

go 1.24

require github.com/coredns/coredns $v
GOMOD
  cat > "$mod/main.go" <<'GO'
// Command coredns is CoreDNS with only the plugins a test cluster's DNS needs.
package main

import (
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"

	"github.com/coredns/coredns/coremain"
)

func main() { coremain.Run() }
GO
  (cd "$mod" && go mod tidy && mkdir -p "$out.tmp" \
    && nice go build -trimpath -ldflags "-s -w" -o "$out.tmp/coredns" .) \
    || fail "coredns: build"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_local_path() {
  build_go_install local-path-provisioner "$LOCAL_PATH_VERSION" local-path-provisioner \
    github.com/rancher/local-path-provisioner
}

# Pinned to the one version the Go module proxy serves; used only as the test cluster's
# NetworkPolicy enforcer (firewall mode: no routing, no service proxy).
build_kube_router() {
  build_go_install kube-router "$KUBE_ROUTER_VERSION" kube-router \
    github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
}

build_actionlint() {  # lints .github/workflows (scripts/test); not built by default
  build_go_install actionlint "$ACTIONLINT_VERSION" actionlint \
    github.com/rhysd/actionlint/cmd/actionlint \
    "-s -w -X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION"
}

# The control plane (default) and, with "node", everything the real node needs.
which=${*:-etcd kubernetes kwok helm}
which=${which/node/kubelet coredns local_path kube_router}
for c in $which; do "build_$c"; done

for d in "kubernetes-$KUBERNETES_VERSION" "etcd-$ETCD_VERSION" "kwok-$KWOK_VERSION" \
  "helm-$HELM_VERSION" "kubernetes-node-$KUBERNETES_VERSION" "coredns-$COREDNS_VERSION" \
  "local-path-provisioner-$LOCAL_PATH_VERSION" "kube-router-$KUBE_ROUTER_VERSION"; do
  if [ -d "$cache/bin/$d" ]; then echo "$cache/bin/$d"; fi
done
if [ -d "$cache/bin/actionlint-$ACTIONLINT_VERSION" ]; then
  echo "$cache/bin/actionlint-$ACTIONLINT_VERSION"
fi
