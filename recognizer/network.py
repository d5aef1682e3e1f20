"""The digit CNN.

Two blocks of two 3x3 convolutions, each block followed by 2x2 max pooling,
then one hidden dense layer: about 470,000 parameters, most of them in the
dense layer. One 28x28 drawing takes about a millisecond on one CPU core.

Input: a float tensor of shape (N, 1, 28, 28) with values in [0, 1], ink = 1,
like MNIST. The network normalises it itself, so every caller passes the same
thing the preprocessing produces.
"""

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

ARCHITECTURE = "digitcnn-v1"

# The layers after the convolutions: what a head-only training changes
# (trainer/head_only.py) and what a taught copy stores (recognizer/taught.py).
HEAD_LAYERS = ("dense", "classifier")
# What the head reads: the second pooling's 64 maps of 7x7, flattened.
FEATURES = 64 * 7 * 7

# MNIST's pixel mean and standard deviation, for inputs in [0, 1].
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def conv_block(in_channels, out_channels):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DigitNet(nn.Module):
    def __init__(self, dropout=0.3):
        super().__init__()
        self.conv1 = conv_block(1, 32)
        self.conv2 = conv_block(32, 32)
        self.pool1 = nn.MaxPool2d(2)
        self.conv3 = conv_block(32, 64)
        self.conv4 = conv_block(64, 64)
        self.pool2 = nn.MaxPool2d(2)
        self.dense = nn.Linear(FEATURES, 128)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(128, 10)

    def forward(self, x):
        return self.forward_with_activations(x, keep=False)[0]

    def trunk(self, x):
        """The convolutions' output, flattened (N, FEATURES): what the head reads.

        The same steps as the start of `forward_with_activations`, which the
        teaching pages use stage by stage.
        """
        x = (x - MNIST_MEAN) / MNIST_STD
        x = self.pool1(self.conv2(self.conv1(x)))
        x = self.pool2(self.conv4(self.conv3(x)))
        return torch.flatten(x, 1)

    def head(self, features):
        """The logits from trunk features: dense layer, dropout (while training), outputs."""
        return self.classifier(self.dropout(F.relu(self.dense(features))))

    def forward_with_activations(self, x, keep=True):
        """Return the logits and, when `keep`, every intermediate activation.

        The names are the stages the teaching pages show, in order.
        """
        activations = OrderedDict()

        def stage(name, value):
            if keep:
                activations[name] = value
            return value

        x = (x - MNIST_MEAN) / MNIST_STD
        x = stage("conv1", self.conv1(x))
        x = stage("conv2", self.conv2(x))
        x = stage("pool1", self.pool1(x))
        x = stage("conv3", self.conv3(x))
        x = stage("conv4", self.conv4(x))
        x = stage("pool2", self.pool2(x))
        x = stage("dense", F.relu(self.dense(torch.flatten(x, 1))))
        logits = stage("logits", self.classifier(self.dropout(x)))
        return logits, activations


def build_model():
    return DigitNet()


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


def describe_layers(model, input_shape=(1, 1, 28, 28)):
    """Rows of (name, kind, output shape, parameters) for the model card."""
    rows = []
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        _, activations = model.forward_with_activations(torch.zeros(input_shape))
    model.train(was_training)
    modules = {
        "conv1": model.conv1, "conv2": model.conv2, "pool1": model.pool1,
        "conv3": model.conv3, "conv4": model.conv4, "pool2": model.pool2,
        "dense": model.dense, "logits": model.classifier,
    }
    kinds = {
        "conv1": "3x3 convolution + batch norm + ReLU",
        "conv2": "3x3 convolution + batch norm + ReLU",
        "pool1": "2x2 max pooling",
        "conv3": "3x3 convolution + batch norm + ReLU",
        "conv4": "3x3 convolution + batch norm + ReLU",
        "pool2": "2x2 max pooling",
        "dense": "fully connected + ReLU (dropout while training)",
        "logits": "fully connected, one output per digit",
    }
    rows.append(("input", "28x28 greyscale drawing", (1, 28, 28), 0))
    for name, value in activations.items():
        rows.append((name, kinds[name], tuple(value.shape[1:]), count_parameters(modules[name])))
    return rows
