"""The MNIST-1D paper's four baselines (Greydanus, 2020), for sequences of length 40."""

from __future__ import annotations

import numpy as np

import minigrad.nn as nn
from models.pretrained import Pretrained


class MNIST1DLinear(Pretrained, nn.Module):
    """Linear(40, 10): logistic regression. 410 parameters."""

    def __init__(self, length: int = 40, num_classes: int = 10) -> None:
        self._remember(locals())
        nn.Module.__init__(self)
        self.linear = nn.Linear(length, num_classes)

    def forward(self, x):
        return self.linear(x)

    def onnx_forward(self, g, x):  # minigrad.onnx.export
        return g.module(self.linear, x, 2)


class MNIST1DMLP(Pretrained, nn.Module):
    """40-100-100-10 with ReLU and a residual second layer (h + relu(W2 h)), as the paper's
    notebook. 15,210 parameters."""

    def __init__(self, length: int = 40, hidden: int = 100, num_classes: int = 10) -> None:
        self._remember(locals())
        nn.Module.__init__(self)
        self.linear1 = nn.Linear(length, hidden)
        self.linear2 = nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        h = self.linear1(x).relu()
        h = h + self.linear2(h).relu()
        return self.linear3(h)

    def onnx_forward(self, g, x):  # minigrad.onnx.export
        h = g.node("Relu", [g.module(self.linear1, x, 2)])
        h = g.node("Add", [h, g.node("Relu", [g.module(self.linear2, h, 2)])])
        return g.module(self.linear3, h, 2)


class MNIST1DCNN(Pretrained, nn.Module):
    """Three Conv1d layers of 25 channels (kernel 5 then 3, 3; stride 2, padding 1) with
    ReLU, then Linear(125, 10). 5,210 parameters."""

    def __init__(self, channels: int = 25, num_classes: int = 10) -> None:
        self._remember(locals())
        nn.Module.__init__(self)
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.linear = nn.Linear(channels * 5, num_classes)

    def forward(self, x):
        h = x.reshape(x.shape[0], 1, x.shape[-1])
        h = self.conv3(self.conv2(self.conv1(h).relu()).relu()).relu()
        return self.linear(h.reshape(h.shape[0], -1))

    def onnx_forward(self, g, x):  # minigrad.onnx.export
        h = g.node("Reshape", [x, g.const(np.array([0, 1, -1], np.int64))])
        for conv in (self.conv1, self.conv2, self.conv3):
            h = g.node("Relu", [g.module(conv, h)])
        return g.module(self.linear, g.node("Flatten", [h], axis=1), 2)


class MNIST1DGRU(Pretrained, nn.Module):
    """A bidirectional GRU with 6 hidden units over the 40 steps (one value each), every
    step's output flattened into Linear(480, 10). 5,134 parameters."""

    def __init__(self, hidden: int = 6, length: int = 40, num_classes: int = 10) -> None:
        self._remember(locals())
        nn.Module.__init__(self)
        self.gru = nn.GRU(1, hidden, batch_first=True, bidirectional=True)
        self.linear = nn.Linear(2 * hidden * length, num_classes)

    def forward(self, x):
        out, _ = self.gru(x.reshape(x.shape[0], x.shape[-1], 1))
        return self.linear(out.reshape(out.shape[0], -1))

    def onnx_forward(self, g, x):  # minigrad.onnx.export
        out = g.module(self.gru, g.node("Reshape", [x, g.const(np.array([0, -1, 1], np.int64))]))
        return g.module(self.linear, g.node("Flatten", [out], axis=1), 2)
