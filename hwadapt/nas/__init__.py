"""ProxylessNAS: latency-aware search over the ``proxyless`` space with binarized paths."""
from hwadapt.arch.proxyless import register_lut_space

register_lut_space()
