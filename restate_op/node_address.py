"""Where the operator reaches a Restate pod's node port (for provisioning). Pure."""

from __future__ import annotations

DEFAULT_NODE_ADDRESS_TEMPLATE = "{pod}.restate-cluster.{namespace}.svc.{cluster_dns}:5122"


def node_address(
    cluster_namespace: str,
    cluster_dns: str,
    pod: str = "restate-0",
    template: str | None = None,
) -> str:
    """The gRPC target of a pod's node port, via the headless ``restate-cluster`` Service.

    ``template`` (flag ``--node-address-template``) overrides the address for operators that
    reach pods some other way (a proxy, a unix socket in tests); it may use ``{pod}``,
    ``{namespace}`` and ``{cluster_dns}``.
    """
    return (template or DEFAULT_NODE_ADDRESS_TEMPLATE).format(
        pod=pod, namespace=cluster_namespace, cluster_dns=cluster_dns
    )
