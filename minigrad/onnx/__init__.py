"""``minigrad.onnx``: export a model to ONNX, checked by the ``onnx`` package (the optional
extra ``minigrad[onnx]``).

    minigrad.onnx.export(model, example_inputs, "model.onnx")

The graph uses ONNX's standard operators (opset 17): Gemm/MatMul, Conv, MaxPool/AveragePool,
LSTM/GRU, LayerNormalization, Softmax, attention written as its parts (MatMul, scale, mask,
Softmax, MatMul). The batch dimension is dynamic; inputs and outputs are named.
"""

from minigrad.onnx.export import GraphBuilder, export

__all__ = ["GraphBuilder", "export"]
