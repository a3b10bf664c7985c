"""Every model class of the zoo by name (for ``from_pretrained`` by ``model_type``)."""

from models.mnist1d import MNIST1DCNN, MNIST1DGRU, MNIST1DMLP, MNIST1DLinear
from models.text import (
    GPT,
    BertEncoder,
    BertForSequenceClassification,
    BertForTokenClassification,
    BiLSTMCRFTagger,
    BiLSTMTagger,
    CharLSTM,
    KimCNN,
)
from models.vision import MLP, DigitsCNN, LeNet5

MODELS = {
    cls.__name__: cls
    for cls in (
        MLP,
        LeNet5,
        DigitsCNN,
        MNIST1DLinear,
        MNIST1DMLP,
        MNIST1DCNN,
        MNIST1DGRU,
        CharLSTM,
        GPT,
        BertEncoder,
        BertForSequenceClassification,
        BertForTokenClassification,
        BiLSTMTagger,
        BiLSTMCRFTagger,
        KimCNN,
    )
}
