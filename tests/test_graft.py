"""Filter grafting: the entropy rule's arithmetic, the layer- and filter-level blends, the
in-memory ring, two tiny networks trained grafted and alone in their own processes, a
worker dying (one line) and the re-run resuming from the last finished epoch, and the
command's one-line errors."""
import json
import math
import multiprocessing
import os
import queue
import re
import signal
import threading
import time

import pytest
import torch
from conftest import TOY, TOY_RES
from typer.testing import CliRunner

from hwadapt.adapt.workflow import subsets
from hwadapt.cli.main import app
from hwadapt.data import load_dataset
from hwadapt.families import build
from hwadapt.graft.exchange import QueueExchange
from hwadapt.graft.rule import GraftError, GraftSettings, alpha, conv_bn_pairs, entropy, graft_filters, graft_layers
from hwadapt.graft.worker import GraftPlan, epoch_dir
from hwadapt.graft.workflow import train_set
from hwadapt.materialize.torch_net import Net, load_checkpoint
from hwadapt.progress import Reporter
from hwadapt.train import TrainConfig

runner = CliRunner()


def test_entropy_of_the_ten_bin_histogram_and_the_share_rule():
    assert entropy(torch.arange(100.0)) == pytest.approx(math.log(10))  # ten equal bins
    assert entropy(torch.tensor([0.0, 0.0, 1.0, 1.0])) == pytest.approx(math.log(2))
    assert entropy(torch.full((7,), 0.3)) == 0.0
    assert alpha(1.7, 1.7) == 0.5
    assert alpha(2.0, 1.99) == pytest.approx(0.4 / math.pi * math.atan(5.0) + 0.5)
    assert alpha(2.0, 1.99) + alpha(1.99, 2.0) == pytest.approx(1.0)
    assert 0.3 < alpha(0.0, 9.0) < alpha(9.0, 0.0) < 0.7  # A = 0.4 bounds the share to 0.5 -/+ 0.2
    assert alpha(2.0, 1.0, a=1.0, c=1e9) == pytest.approx(1.0)


def test_layers_blend_convolutions_only_and_filters_by_batch_norm_scales():
    torch.manual_seed(0)
    own_net, other_net = Net(build(TOY, resolution=TOY_RES)), Net(build(TOY, resolution=TOY_RES))
    own, other = own_net.state_dict(), other_net.state_dict()
    blended = graft_layers(own, other, GraftSettings())
    key = conv_bn_pairs(own_net)[0][0]
    share = alpha(entropy(own[key]), entropy(other[key]))
    assert torch.allclose(blended[key], share * own[key] + (1 - share) * other[key])
    assert all(torch.equal(blended[k], own[k]) for k in own if own[k].ndim != 4)  # BN and classifier stay

    conv, bn = conv_bn_pairs(own_net)[0]
    own[f"{bn}.weight"].copy_(torch.tensor([1.0] + [0.0] * (len(own[f"{bn}.weight"]) - 1)))
    other[f"{bn}.weight"].fill_(1.0)
    mixed = graft_filters(own, other, conv_bn_pairs(own_net))
    assert torch.allclose(mixed[conv][0], 0.5 * own[conv][0] + 0.5 * other[conv][0])
    assert torch.equal(mixed[conv][1], other[conv][1])  # a filter faded to nothing takes the other's
    with pytest.raises(GraftError, match="unknown grafting level 'stripe'"):
        GraftSettings(level="stripe")


def test_the_ring_passes_each_network_its_predecessors_weights_in_memory():
    exchange = QueueExchange([queue.Queue() for _ in range(3)])
    got = {}

    def worker(rank):
        got[rank] = exchange.swap(rank, 0, {"w": torch.full((2,), float(rank))})

    threads = [threading.Thread(target=worker, args=(rank,)) for rank in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {rank: int(state["w"][0]) for rank, state in got.items()} == {0: 2, 1: 0, 2: 1}


class Notes(Reporter):
    def __init__(self):
        self.notes = []

    def note(self, message):
        self.notes.append(message)


def test_two_tiny_networks_swap_in_memory_a_dying_worker_stops_the_run_and_the_rerun_resumes(tmp_path):
    """Two processes on digits; with A = 0 every share is one half, so right after a swap
    both networks hold the same convolutions: the weights went round the ring."""
    splits = subsets(load_dataset("digits", TOY_RES), 256, None, 0)
    plan = GraftPlan(build(TOY, resolution=TOY_RES).to_dict(), splits, TrainConfig(epochs=3, lr=0.1, batch_size=64),
                     2, tmp_path, GraftSettings(a=0.0))
    outcome = {}

    def run():
        try:
            train_set(plan, "processes", Notes(), "grafted")
        except GraftError as exc:
            outcome["error"] = str(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 240
    while not (tmp_path / "net1" / "epoch-001" / "weights.pt").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = next(p for p in multiprocessing.active_children() if p.name == "graft-net1")
    os.kill(victim.pid, signal.SIGKILL)  # a worker dies after its first epoch
    thread.join(timeout=120)
    assert "network 1's worker" in outcome["error"] and "killed by SIGKILL" in outcome["error"]
    assert "\n" not in outcome["error"] and "re-run the same command to resume" in outcome["error"]

    notes = Notes()
    results = train_set(plan, "processes", notes, "grafted")
    assert any(re.fullmatch(r"grafted: resuming after epoch [12]", note) for note in notes.notes), notes.notes
    assert [r["rank"] for r in results] == [0, 1] and [r["lr"] for r in results] == pytest.approx([0.05, 0.1])
    assert all([e["epoch"] for e in r["history"]] == [1, 2, 3] for r in results)
    after_swap = [load_checkpoint(epoch_dir(tmp_path, rank, 2))[0] for rank in (0, 1)]
    for first, second in zip(*(conv_bn_pairs(net) for net in after_swap)):
        assert torch.allclose(after_swap[0].state_dict()[first[0]], after_swap[1].state_dict()[second[0]])
    assert train_set(plan, "processes", notes, "grafted") == results  # a finished set is read back


@pytest.mark.slow
def test_cli_trains_grafted_and_independent_networks(tmp_path):
    result = runner.invoke(app, ["graft", "--family", TOY, "--resolution", str(TOY_RES), "--data", "digits", "--nets",
                                 "2", "--epochs", "2", "--train-images", "256", "--batch-size", "64", "--out",
                                 str(tmp_path / "g")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "g" / "report.json").read_text())
    assert [n["rank"] for n in report["networks"]] == [0, 1]
    assert {"grafted_test_accuracy", "independent_test_accuracy", "gain"} <= set(report["networks"][0])


def test_cli_errors_are_one_line(tmp_path):
    for args, expected in [(["--level", "stripe"], "unknown grafting level"),
                           (["--family", "resnet9000"], "unknown family 'resnet9000'")]:
        given = {"--family": TOY, **dict(zip(args[::2], args[1::2]))}
        result = runner.invoke(app, ["graft", "--data", "digits", "--epochs", "1", "--out", str(tmp_path / "g"),
                                     *[x for kv in given.items() for x in kv]])
        lines = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert result.exit_code == 1 and len(lines) == 1 and expected in lines[0], result.output


@pytest.mark.slow
def test_netadapt_long_term_fine_tune_grafted(tmp_path, toy_lut, toy_checkpoint):
    """``--graft 2``: NetAdapt's result fine-tuned as two grafted copies, the better kept."""
    result = runner.invoke(app, ["adapt", "--checkpoint", str(toy_checkpoint), "--lut", str(toy_lut), "--out",
                                 str(tmp_path / "na"), "--budget-ratio", "0.8", "--data", "digits", "--short-steps",
                                 "3", "--long-epochs", "2", "--first-step", "0.2", "--batch-size", "64", "--graft",
                                 "2"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "na" / "report.json").read_text())
    assert report["test_accuracy"] > 0
    assert (tmp_path / "na" / "graft" / "net1" / "result.json").is_file()
    refused = runner.invoke(app, ["adapt", "--checkpoint", str(toy_checkpoint), "--lut", str(toy_lut), "--out",
                                  str(tmp_path / "x"), "--budget-ratio", "0.8", "--data", "digits", "--graft", "1"])
    assert refused.exit_code == 1 and "ring of 2 networks or more" in refused.output
