"""Model families: one module per family, each registering its builder, space and grid."""
from hwadapt.families import mobilenet_v1, mobilenet_v2, plain, proxyless, resnet, vgg  # noqa: F401  (each registers itself)
from hwadapt.families.base import (FAMILIES, Family, Grid, Space, build, family, get_family, make_divisible,
                                   register_family, width_space)

__all__ = ["FAMILIES", "Family", "Grid", "Space", "build", "family", "get_family", "make_divisible",
           "register_family", "width_space"]
