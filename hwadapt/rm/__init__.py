"""RM: removing residual connections exactly (ResNet -> plain chain, MobileNetV2 ->
MobileNetV1-like chain), so that every width can be pruned on its own."""
