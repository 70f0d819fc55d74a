"""NetAdapt: shrink a trained network's channel groups until a predicted-latency budget is met."""
