"""``hwadapt search`` end to end: search -> derive (on target) -> train -> measure -> report.

Every stage writes its result into the output folder and is skipped when re-run with the
same settings, so an interrupted run resumes where it stopped:

- ``search/``: supernet checkpoint and history (per epoch), and ``search.png``: E[latency]
  and the argmax's latency per epoch against the target;
- ``derive.json`` and ``arch.json``: the member chosen, its swaps and calibration rounds;
- ``train/``: the derived network's training checkpoint (per epoch);
- ``report.json``: target, predicted, measured latency and test accuracy.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from hwadapt.data import Splits, load_dataset
from hwadapt.families.proxyless import ProxylessSpace
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.materialize import FORMATS, export
from hwadapt.materialize.torch_net import Net
from hwadapt.measure import EndToEnd, MeasurePlan, default_plan, measure_in_windows, noisy_note
from hwadapt.nas.derive import calibrated_member
from hwadapt.nas.latency import LatencyTable, SearchError, latency_table
from hwadapt.nas.plot import SEARCH_PLOT, search_png
from hwadapt.nas.search import SUMMARY_FILE, SearchConfig, search
from hwadapt.nas.supernet import SuperNet
from hwadapt.progress import QUIET, Reporter
from hwadapt.train import TrainConfig, fit
from hwadapt.train.device import resolve_device
from hwadapt.train.loop import SUMMARY_FILE as TRAIN_SUMMARY

REPORT_FILE, ARCH_FILE, DERIVE_FILE = "report.json", "arch.json", "derive.json"


def measure_figure(agent, arch, probe, plan: MeasurePlan, net=None) -> EndToEnd:
    """The end-to-end latency of ``arch``: its median window, with the windows' spread."""
    return EndToEnd.of(measure_in_windows(agent, [arch], [net], plan, probe)[0])


@dataclass(frozen=True)
class SearchJob:
    """What ``hwadapt search`` was asked to do."""

    lut: str
    data: str
    out: str
    search: SearchConfig
    train_epochs: int = 10
    tolerance: float = 0.05
    width: float = 1.0
    depth: int | None = None
    from_scratch: bool = False
    train_images: int | None = None
    holdout_images: int | None = None
    device: str = "auto"  # where the supernet and the derived network train (not part of the run's identity)


@dataclass
class Context:
    job: SearchJob
    predictor: LatencyPredictor
    space: ProxylessSpace
    table: LatencyTable
    splits: Splits
    device: torch.device

    @property
    def out(self) -> Path:
        return Path(self.job.out)

    def identity(self) -> dict:
        return {"lut": self.predictor.meta.digest, "data": self.splits.source, "space": self.space.to_dict(),
                "train_images": self.job.train_images, "holdout_images": self.job.holdout_images}


def prepare(job: SearchJob) -> Context:
    """Load and check everything before any long work: LUT, space, target, data."""
    device = resolve_device(job.device)
    predictor = LatencyPredictor.load(job.lut)
    meta = predictor.meta
    if meta.family != "proxyless":
        raise SearchError(f"{job.lut} is a LUT of family {meta.family!r}; build one of the search space with "
                          f"`hwadapt profile --family proxyless --resolution {meta.resolution}`")
    if not 0 < job.tolerance < 1:
        raise SearchError(f"tolerance must be a fraction in (0, 1), got {job.tolerance}")
    space = ProxylessSpace(meta.resolution, meta.num_classes, job.width, job.depth)
    table = latency_table(predictor, space)
    table.check_target(job.search.target_ms)
    splits = load_dataset(job.data, meta.resolution, seed=job.search.seed)
    if splits.num_classes != meta.num_classes:
        raise SearchError(f"the data has {splits.num_classes} classes but the LUT was built for "
                          f"{meta.num_classes}; profile with --num-classes {splits.num_classes}")
    if job.train_images:
        splits = replace(splits, train=splits.train.subset(job.train_images, job.search.seed))
    if job.holdout_images:
        splits = replace(splits, holdout=splits.holdout.subset(job.holdout_images, job.search.seed))
    return Context(job, predictor, space, table, splits, device)


def run_search(ctx: Context, reporter: Reporter) -> SuperNet:
    torch.manual_seed(ctx.job.search.seed)
    net = SuperNet(ctx.space).to(ctx.device)  # initialised on the CPU: the same weights on every device
    summary = search(net, ctx.table, ctx.splits, ctx.job.search, ctx.out / "search", identity=ctx.identity(),
                     reporter=reporter)
    search_png(ctx.out / "search" / SEARCH_PLOT, summary["history"], ctx.job.search.target_ms,
               ctx.table.of(ctx.table.fastest()), ctx.table.of(ctx.table.slowest()))
    return net


def derive(ctx: Context, net: SuperNet, agent, plan: MeasurePlan) -> dict:
    """The member to train: the argmax, adjusted and calibrated onto the target."""
    path = ctx.out / DERIVE_FILE
    if path.is_file():
        return json.loads(path.read_text())
    start = net.argmax()
    log_probs = [torch.log_softmax(a.detach(), 0).tolist() for a in net.alphas]
    probe = ctx.predictor.target.probe()

    def measure(choices: list[int]) -> float:
        return measure_figure(agent, net.member(choices), probe, plan).ms

    target = ctx.job.search.target_ms
    adjustment, rounds = calibrated_member(ctx.table, log_probs, start, target, measure,
                                           tolerance=ctx.job.tolerance)
    names = lambda choices: [net.choices[k][i] for k, i in enumerate(choices)]  # noqa: E731
    derived = {
        "argmax": names(start), "argmax_predicted_ms": ctx.table.of(start),
        "choices": names(adjustment.choices), "choice_index": adjustment.choices,
        "predicted_ms": adjustment.predicted_ms,
        "swaps": [{"position": s.position, "from": net.choices[s.position][s.before],
                   "to": net.choices[s.position][s.after], "predicted_ms": s.predicted_ms} for s in adjustment.swaps],
        "calibration": [asdict(r) for r in rounds],
    }
    net.member(adjustment.choices).save(ctx.out / ARCH_FILE)
    path.write_text(json.dumps(derived, indent=2) + "\n")
    return derived


def train_member(ctx: Context, net: SuperNet, derived: dict, reporter: Reporter) -> tuple[Net, dict]:
    choices = derived["choice_index"]
    member = (Net(net.member(choices)) if ctx.job.from_scratch else net.member_net(choices)).to(ctx.device)
    s = ctx.job.search
    config = TrainConfig(epochs=ctx.job.train_epochs, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay,
                         batch_size=s.batch_size, seed=s.seed)
    summary = fit(member, ctx.splits, config, ctx.out / "train", reporter=reporter,
                  identity={**ctx.identity(), "from_scratch": ctx.job.from_scratch})
    return member, summary


def run(job: SearchJob, plan: MeasurePlan | None = None, reporter: Reporter = QUIET) -> dict:
    """The whole pipeline; returns the report (also written to ``out/report.json``)."""
    ctx = prepare(job)
    if ctx.out.is_dir() and any(ctx.out.iterdir()) and not (ctx.out / "search" / SUMMARY_FILE).is_file():
        raise SearchError(f"{ctx.out} exists and holds no search; choose another --out")
    ctx.out.mkdir(parents=True, exist_ok=True)
    target = ctx.predictor.target
    agent = target.agent()
    plan = plan or default_plan(agent)
    try:
        target.check(agent)
        net = run_search(ctx, reporter)
        derived = derive(ctx, net, agent, plan)
        member, summary = train_member(ctx, net, derived, reporter)
        figure = measure_figure(agent, member.arch, target.probe(), plan, net=member)
    finally:
        agent.close()
    exports = {"checkpoint": str(ctx.out / "train")}
    for fmt in FORMATS:
        exports[fmt] = str(export(member.arch, fmt, ctx.out / "train" / f"model.{fmt}", net=member))
    if figure.noisy:
        reporter.note(noisy_note([figure]))
    return write_report(ctx, derived, summary, figure, exports)


def write_report(ctx: Context, derived: dict, summary: dict, figure: EndToEnd, exports: dict[str, str]) -> dict:
    """``report.json``: the fields every adaptation report has (method, budget, predicted,
    measured with its spread, accuracy, wall time, arch, exports), and the search's own."""
    target, measured_ms = ctx.job.search.target_ms, figure.ms
    history = json.loads((ctx.out / "search" / "search.json").read_text())["history"]
    report = {
        "method": "proxylessnas",
        "target_ms": target,
        "budget_ms": target,
        "predicted_ms": derived["predicted_ms"],
        "measured_ms": measured_ms,
        "measured_spread_pct": figure.spread_pct,
        "measured_windows_ms": list(figure.windows_ms),
        "measured_error": (measured_ms - target) / target,
        "within_tolerance": abs(measured_ms - target) <= ctx.job.tolerance * target,
        "wall_s": _training_seconds(ctx.out),
        "exports": exports,
        "tolerance": ctx.job.tolerance,
        "test_accuracy": summary["test_accuracy"],
        "holdout_accuracy": summary["holdout_accuracy"],
        "adjusted": bool(derived["swaps"]) or len(derived["calibration"]) > 1,
        "note": _adjustment_note(derived),
        "argmax": derived["argmax"], "argmax_predicted_ms": derived["argmax_predicted_ms"],
        "choices": derived["choices"], "swaps": len(derived["swaps"]), "calibration": derived["calibration"],
        "search": _search_summary(history, target),
        "lut": {"path": ctx.job.lut, "backend": ctx.predictor.meta.backend, "digest": ctx.predictor.meta.digest},
        "space": ctx.space.to_dict(), "arch": ARCH_FILE,
        "job": json.loads(json.dumps(asdict(ctx.job))),
    }
    (ctx.out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _training_seconds(out: Path) -> float:
    """The search's and the derived network's training time, from their records."""
    search = json.loads((out / "search" / "search.json").read_text())["history"]
    train = json.loads((out / "train" / TRAIN_SUMMARY).read_text())["history"]
    return float(sum(e.get("seconds", 0.0) for e in search) + sum(e.get("seconds", 0.0) for e in train))


def _search_summary(history: list[dict], target_ms: float) -> dict:
    """Where the search alone put the architecture: how far it moved E[latency] towards
    the target (1 is all the way, 0 not at all, negative away from it), and how far the
    argmax it ends on -- before any derive swap -- misses the target."""
    if not history:
        return {"epochs": 0, "first_expected_ms": None, "final_expected_ms": None, "progress_to_target": None,
                "argmax_predicted_ms": None, "argmax_error": None}
    first, final = history[0]["expected_ms"], history[-1]["expected_ms"]
    progress = (first - final) / (first - target_ms) if first != target_ms else 1.0
    argmax = history[-1]["argmax_predicted_ms"]
    return {"epochs": len(history), "first_expected_ms": first, "final_expected_ms": final,
            "progress_to_target": progress, "argmax_predicted_ms": argmax,
            "argmax_error": (argmax - target_ms) / target_ms}


def _adjustment_note(derived: dict) -> str:
    rounds = derived["calibration"]
    if not derived["swaps"] and len(rounds) == 1:
        return "the argmax of the learned probabilities met the target as it was"
    ratio = rounds[0]["measured_ms"] / rounds[0]["predicted_ms"]
    return (f"the argmax was predicted at {derived['argmax_predicted_ms']:.4g} ms; {len(derived['swaps'])} greedy "
            f"swap(s) moved it towards the target, after {len(rounds)} measurement round(s) (measured/predicted "
            f"{ratio:.3f} in the first)")
