#!/usr/bin/python3
"""Exports a small convolutional network whose activation is a custom operator, my_ops::Swish, as the tutorial's
chapters do with a torch.autograd.Function and its symbolic:

    /usr/bin/python3 examples/custom_op/export_model.py OUT_DIR

writes OUT_DIR/swish_net.onnx (opset 11 plus my_ops 1), OUT_DIR/input.npy and OUT_DIR/expected.npy (torch's output
for that input), for kiln with examples/custom_op/swish_op.c loaded."""
import os
import sys
import warnings

import numpy as np
import torch


class Swish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, beta):
        return x * torch.sigmoid(beta * x)

    @staticmethod
    def symbolic(g, x, beta):
        # An operator of our own domain, with a float attribute: kiln runs it with the library's kernel.
        return g.op("my_ops::Swish", x, beta_f=beta)


class SwishNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 3, 3, padding=1)

    def forward(self, x):
        return self.conv2(Swish.apply(self.conv1(x), 1.5))


def main():
    warnings.filterwarnings("ignore")  # torch 1.13 warns that it cannot infer my_ops::Swish's shape
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = SwishNet().eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        torch.onnx.export(model, x, os.path.join(out, "swish_net.onnx"), opset_version=11,
                          input_names=["input"], output_names=["output"], custom_opsets={"my_ops": 1},
                          dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}})
    np.save(os.path.join(out, "input.npy"), x.numpy())
    np.save(os.path.join(out, "expected.npy"), expected.numpy())


if __name__ == "__main__":
    main()
