"""Neural-network building blocks with PyTorch's names: ``Module`` and its containers, layers,
``minigrad.nn.functional`` (as ``F``) and ``minigrad.nn.init``.

So far (the nn issue is in progress): Module, Parameter, Sequential, ModuleList, ModuleDict,
Linear, Conv1d, Conv2d, Max/AvgPool1d/2d, AdaptiveAvgPool2d, Flatten, Identity, Dropout,
Embedding, LayerNorm, BatchNorm1d/2d, ReLU, Sigmoid, Tanh, Softmax, LogSoftmax.
"""

from minigrad.nn import functional, init
from minigrad.nn.layers import (
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LayerNorm,
    Linear,
    LogSoftmax,
    MaxPool1d,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from minigrad.nn.module import Module, ModuleDict, ModuleList, Parameter, Sequential
