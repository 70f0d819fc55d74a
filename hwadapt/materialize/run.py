"""Running an exported model file (ONNX with ONNX Runtime, TFLite with LiteRT) on NCHW
inputs, one image at a time as a deployed network sees them: what the exports are
checked against their PyTorch network with."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def run_model(path: str | Path, x: np.ndarray) -> np.ndarray:
    """The outputs of the model at ``path`` on the NCHW batch ``x`` (by its suffix)."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    rows = []
    for i in range(len(x)):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[i:i + 1].transpose(0, 2, 3, 1).copy())
        interpreter.invoke()
        rows.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    return np.concatenate(rows)
