"""Image classifiers: an MLP and LeNet-5."""

from __future__ import annotations

import minigrad.nn as nn
from models.pretrained import Pretrained


class MLP(Pretrained, nn.Module):
    """Flatten, then Linear(in_features, hidden) + ReLU for each hidden width, then
    Linear(last, num_classes). Default 784-256-10: 203,530 parameters."""

    def __init__(
        self,
        in_features: int = 784,
        hidden: list[int] | None = None,
        num_classes: int = 10,
        dropout: float = 0.0,
    ) -> None:
        self._remember(locals())
        nn.Module.__init__(self)
        widths = [in_features] + list(hidden if hidden is not None else [256])
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1], num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)

    def onnx_forward(self, g, x):  # minigrad.onnx.export
        return g.module(self.net, x)


class LeNet5(Pretrained, nn.Module):
    """LeNet-5 with ReLU and max pooling, for (B, 1, 28, 28) images: conv 6@5x5 (padding 2),
    pool 2, conv 16@5x5, pool 2, then 400-120-84-10. 61,706 parameters."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        self._remember(locals())
        nn.Module.__init__(self)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(400, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))

    def onnx_forward(self, g, x):  # minigrad.onnx.export
        return g.module(self.classifier, g.module(self.features, x))


class DigitsCNN(Pretrained, nn.Module):
    """A small CNN for the 8x8 digits (B, 1, 8, 8): conv 16@3x3 (padding 1), ReLU, pool 2,
    conv 32@3x3 (padding 1), ReLU, pool 2, then 128-64-10 with dropout. 13,706 parameters."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.1) -> None:
        self._remember(locals())
        nn.Module.__init__(self)
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(64, num_classes),
        )

    def forward(self, x):
        return self.net(x)

    def onnx_forward(self, g, x):  # minigrad.onnx.export
        return g.module(self.net, x)
