"""ProxylessNAS: latency-aware search over the ``proxyless`` space with binarized paths."""
