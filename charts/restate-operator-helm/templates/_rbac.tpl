{{/* Generated from restate_op/rbac.py; do not edit. */}}
{{- define "restate-operator.clusterRules" }}
# The restate configuration, in ConfigMaps named by content hash; stale ones are pruned.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# Each RestateCluster gets a Namespace of the same name, applied and watched; deleted by the
# garbage collector.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch", "create", "patch"]
# Watched to follow volume expansion; patched to request the larger size. The StatefulSet
# creates them and they outlive it: never create or delete.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "watch", "patch"]
# Watched: provisioning starts once pod restate-0 runs, and a pod that cannot run (image, crash
# loop, OOM, scheduling) is reported in the cluster's status. Deleted one at a time in a rolling
# update (the StatefulSet rolls OnDelete, re-creating each from the new template), in the order
# and at the pace Restate allows.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "delete"]
# The ServiceAccount restate pods run as.
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["list", "watch", "create", "patch"]
# The restate and restate-cluster Services.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch", "create", "patch"]
# The restate StatefulSet; deleted with propagation Orphan (pods and volumes kept) to re-create
# it with a larger volume claim template.
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# The Pod Identity and Workload Identity canary Jobs, deleted once they have done their work or
# failed.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# Events on RestateClusters (transitions, resizes, provisioning); patch updates the series count
# of a repeated event.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# The NetworkPolicies isolating each cluster; pruned when no longer wanted.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# The PodDisruptionBudget of multi-node clusters; pruned when scaled to one.
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# The resource the operator reconciles; cached in an informer. Never written: there is no
# finalizer, children are reaped by owner references.
- apiGroups: ["restate.dev"]
  resources: ["restateclusters"]
  verbs: ["list", "watch"]
# Children carry an owner reference with blockOwnerDeletion; where the
# OwnerReferencesPermissionEnforcement admission plugin is on (e.g. OpenShift) that needs update
# on the owner's finalizers. Grants nothing else: the CRD serves no finalizers subresource.
- apiGroups: ["restate.dev"]
  resources: ["restateclusters/finalizers"]
  verbs: ["update"]
# Status (phase, conditions, replicas, provisioned) is server-side applied to the status
# subresource.
- apiGroups: ["restate.dev"]
  resources: ["restateclusters/status"]
  verbs: ["patch"]
# The SecretProviderClass mounting the request-signing key from an external store (Secrets Store
# CSI driver); pruned when no longer wanted.
- apiGroups: ["secrets-store.csi.x-k8s.io"]
  resources: ["secretproviderclasses"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# allowVolumeExpansion decides whether a larger storage request can be met.
- apiGroups: ["storage.k8s.io"]
  resources: ["storageclasses"]
  verbs: ["list", "watch"]
# SecurityGroupPolicy for spec.security.awsPodSecurityGroups (AWS VPC CNI); pruned when the
# field is removed. Harmless where the CRD is absent.
- apiGroups: ["vpcresources.k8s.aws"]
  resources: ["securitygrouppolicies"]
  verbs: ["list", "watch", "create", "patch", "delete"]
{{- end }}
{{- define "restate-operator.leaseRules" }}
# Leader election: read the Lease, create it once, then renew, take over or release it with an
# optimistic update on its resourceVersion.
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end }}
{{- define "restate-operator.podIdentityRules" }}
# PodIdentityAssociations for spec.security.awsPodIdentityAssociationRoleArn; cached, applied,
# and pruned when the role is removed.
- apiGroups: ["eks.services.k8s.aws"]
  resources: ["podidentityassociations"]
  verbs: ["list", "watch", "create", "patch", "delete"]
{{- end }}
{{- define "restate-operator.workloadIdentityRules" }}
# IAMPolicyMembers binding each cluster's ServiceAccount to the GCP service account of its
# iam.gke.io/gcp-service-account annotation; cached, applied, and pruned when the annotation is
# removed.
- apiGroups: ["iam.cnrm.cloud.google.com"]
  resources: ["iampolicymembers"]
  verbs: ["list", "watch", "create", "patch", "delete"]
{{- end }}
{{- define "restate-operator.deploymentRules" }}
# RestateDeployment: the restate.dev/latest label is applied to the pods of the version Restate
# routes to (a ReplicaSet never relabels running pods).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["patch"]
# RestateDeployment: a version's Service is deleted with its ReplicaSet beyond
# revisionHistoryLimit.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["delete"]
# RestateDeployment: one ReplicaSet per version, scaled to zero when retired, deleted beyond
# revisionHistoryLimit.
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# RestateDeployment: the per-version HPA of a draining version (spec.autoscaling), deleted in
# every other state.
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# RestateDeployment in Knative mode: one Configuration per version, deleted beyond
# revisionHistoryLimit. Harmless where Knative Serving is absent.
- apiGroups: ["serving.knative.dev"]
  resources: ["configurations"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# RestateDeployment in Knative mode: a version is registered once its latest Revision is Ready.
- apiGroups: ["serving.knative.dev"]
  resources: ["revisions"]
  verbs: ["list", "watch"]
# RestateDeployment in Knative mode: one cluster-local Route per version, whose URL is
# registered; deleted with its Configuration by the garbage collector.
- apiGroups: ["serving.knative.dev"]
  resources: ["routes"]
  verbs: ["list", "watch", "create", "patch"]
# RestateDeployment: cached in an informer; its finalizer is applied, and released with a JSON
# patch tested against the uid after a fresh get.
- apiGroups: ["restate.dev"]
  resources: ["restatedeployments"]
  verbs: ["get", "list", "watch", "patch"]
# RestateDeployment status (conditions, per-version list) is server-side applied.
- apiGroups: ["restate.dev"]
  resources: ["restatedeployments/status"]
  verbs: ["patch"]
# Version objects carry an owner reference with blockOwnerDeletion (see
# restateclusters/finalizers).
- apiGroups: ["restate.dev"]
  resources: ["restatedeployments/finalizers"]
  verbs: ["update"]
# RestateCloudEnvironment: cached in an informer; upstream's finalizer is released on deletion
# with a JSON patch tested against the uid after a fresh get.
- apiGroups: ["restate.dev"]
  resources: ["restatecloudenvironments"]
  verbs: ["get", "list", "watch", "patch"]
# RestateCloudEnvironment status (phase, Ready and Degraded, tunnel pods) is server-side
# applied.
- apiGroups: ["restate.dev"]
  resources: ["restatecloudenvironments/status"]
  verbs: ["patch"]
# Tunnel objects carry an owner reference with blockOwnerDeletion (see
# restateclusters/finalizers).
- apiGroups: ["restate.dev"]
  resources: ["restatecloudenvironments/finalizers"]
  verbs: ["update"]
{{- end }}
{{- define "restate-operator.cloudTunnelRules" }}
# RestateCloudEnvironment: the admin API bearer token (spec.authentication.secret), cached from
# this namespace only, so a rotation reaches its RestateDeployments at once.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list", "watch"]
# RestateCloudEnvironment: the tunnel client Deployment tunnel-<name>; deleted by the garbage
# collector with its RestateCloudEnvironment.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "watch", "create", "patch"]
{{- end }}
