"""Adaptation methods: one module per method, each registering itself (:mod:`hwadapt.adapt.registry`),
and the workflow every method runs through (:mod:`hwadapt.adapt.workflow`)."""
from hwadapt.adapt import knapsack, morphnet, multiplier, netadapt, slimming  # noqa: F401  (each registers its method)
from hwadapt.adapt.registry import METHODS, AdaptJob, Member, Method, Outcome, get_method, register_method

__all__ = ["METHODS", "AdaptJob", "Member", "Method", "Outcome", "get_method", "register_method"]
