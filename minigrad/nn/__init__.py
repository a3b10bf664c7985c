"""Neural-network building blocks with PyTorch's names: ``Module`` and its containers, layers,
``minigrad.nn.functional`` (as ``F``) and ``minigrad.nn.init``.

- containers: Module, Parameter, Sequential, ModuleList, ModuleDict
- layers (layers.py): Linear, Conv1d/2d, Max/AvgPool1d/2d, AdaptiveAvgPool2d, Flatten,
  Identity, Dropout, Embedding, LayerNorm, BatchNorm1d/2d
- activations (layers.py): ReLU, LeakyReLU, ELU, GELU, SiLU, Softplus, Sigmoid, LogSigmoid, Tanh,
  Softmax, LogSoftmax
- recurrent (rnn.py): RNN, LSTM, GRU and RNNCell, LSTMCell, GRUCell
- attention (attention.py): MultiheadAttention, TransformerEncoderLayer, TransformerEncoder
- losses (loss.py): MSELoss, L1Loss, SmoothL1Loss, HuberLoss, BCELoss, BCEWithLogitsLoss,
  CrossEntropyLoss, NLLLoss, KLDivLoss
- structured output (crf.py): CRF, bio_constraints
- utils.py: functional_call, l2_penalty
"""

from minigrad.nn import functional, init, utils
from minigrad.nn.attention import (
    MultiheadAttention,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from minigrad.nn.crf import CRF, bio_constraints
from minigrad.nn.layers import (
    ELU,
    GELU,
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
    LeakyReLU,
    Linear,
    LogSigmoid,
    LogSoftmax,
    MaxPool1d,
    MaxPool2d,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from minigrad.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from minigrad.nn.module import Module, ModuleDict, ModuleList, Parameter, Sequential
from minigrad.nn.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
