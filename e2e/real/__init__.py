"""The `real` tier: a real node (kubelet, containerd, CNI) on the local control plane."""
