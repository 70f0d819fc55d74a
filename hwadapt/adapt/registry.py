"""The registry of adaptation methods.

Every method takes the same job: a trained network, a LUT (its predictor) and a budget,
with data to fine-tune on and a folder of its own. It returns where its adapted network
is (a checkpoint) and, optionally, the networks it kept on its way; measuring, exporting
and reporting are the same for every method (:mod:`hwadapt.adapt.workflow`), so a new
method is one module that registers a :class:`Method`.

A method's settings are a dataclass of its own (defaults included): the command line
offers each field as an option of ``hwadapt adapt`` (``--short-steps`` for
``short_steps``), and the field's ``help`` metadata is the option's help.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from hwadapt.cluster import Executor
from hwadapt.data import Splits
from hwadapt.errors import HwadaptError
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.materialize.torch_net import Net
from hwadapt.progress import QUIET, Reporter
from hwadapt.registry import Registry


class MethodError(HwadaptError):
    """A method unknown, or asked for with settings it does not have."""


@dataclass
class AdaptJob:
    """What every method is given."""

    base: Net  # the trained network to adapt
    splits: Splits  # train (fine-tuning), holdout (choices), test (reported only)
    predictor: LatencyPredictor  # prices networks on the table's device
    budget_ms: float  # the latency to reach, as the predictor prices it
    out: Path  # the method's own folder (resumable: a re-run with the same job continues)
    identity: dict[str, Any]  # what makes this run this run: a folder holding another is refused
    checkpoint: Path | None = None  # where the trained network was read from (its train.json)
    seed: int = 0
    reporter: Reporter = QUIET
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where it trains (the base is there)
    executor: Executor | None = None  # where work that fans out runs (None: serially, here)


@dataclass
class Member:
    """A network a method kept on its way, drawn on the family plot and measured."""

    checkpoint: Path | None  # None: the base network
    row: dict[str, Any]  # its figures: at least predicted_ms, test_accuracy, arch (a dict) and stage


@dataclass
class Outcome:
    """What a method returns: its adapted, trained network and what it wants reported.
    ``members`` are the networks on its way, ``result_row`` the result's own row of the
    family (stage ``"long-term"``), measured with it."""

    checkpoint: Path
    predicted_ms: float
    members: list[Member] = field(default_factory=list)
    result_row: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # method-specific figures for report.json
    notes: list[str] = field(default_factory=list)  # lines worth telling the user


class Method:
    """An adaptation method: ``run`` turns a job into an :class:`Outcome`."""

    name: ClassVar[str]
    description: ClassVar[str]
    Settings: ClassVar[type]  # a dataclass of the method's settings, with defaults

    def run(self, job: AdaptJob, settings: Any) -> Outcome:
        raise NotImplementedError

    def check(self, base: Net, settings: Any) -> None:
        """Refuse (with a :class:`MethodError`) a network this method cannot adapt; called
        before anything is written. Every network can be adapted here."""

    def settings(self, **given: Any) -> Any:
        """The method's settings with ``given`` fields set (None: the default); an error
        naming the method's own settings for any it does not have."""
        names = {f.name for f in dataclasses.fields(self.Settings)}
        unknown = sorted(k for k, v in given.items() if v is not None and k not in names)
        if unknown:
            options = ", ".join(f"--{n.replace('_', '-')}" for n in sorted(names)) or "none"
            raise MethodError(f"{', '.join('--' + u.replace('_', '-') for u in unknown)} "
                              f"{'is not a setting' if len(unknown) == 1 else 'are not settings'} of method "
                              f"{self.name} (its settings: {options})")
        return self.Settings(**{k: v for k, v in given.items() if v is not None and k in names})


METHODS: Registry[Method] = Registry("method", MethodError)
register_method = METHODS.instance  # class decorator of a method


def get_method(name: str) -> Method:
    return METHODS[name]


def setting_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """``METHOD.FIELD=VALUE`` items (VALUE in JSON) as settings per method."""
    found: dict[str, dict[str, Any]] = {}
    for item in items:
        key, _, value = item.partition("=")
        method, _, field_name = key.partition(".")
        try:
            found.setdefault(method, {})[field_name.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError as exc:
            raise MethodError(f"{item!r}: the value must be JSON ({exc})") from None
    return found


def setting(default: Any, help: str) -> Any:  # noqa: A002 - the option's help text
    """A settings field with its command-line help."""
    return field(default=default, metadata={"help": help})
