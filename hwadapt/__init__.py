"""hwadapt: hardware-aware neural-network adaptation."""
__version__ = "0.1.0"
