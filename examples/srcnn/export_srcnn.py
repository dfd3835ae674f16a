#!/usr/bin/python3
"""Exports the tutorial's SRCNN (SuperResolutionNet, bicubic x3) to ONNX, as the tutorial does.

    /usr/bin/python3 examples/srcnn/export_srcnn.py OUT_DIR

Writes OUT_DIR/srcnn.onnx (opset 11, names input/output). The tutorial downloads trained weights,
which cannot be fetched here; until kiln ships its own trained checkpoint the weights are random
(fixed seed), which is enough to deploy and inspect the model.
"""
import os
import sys

import torch
from torch import nn


class SuperResolutionNet(nn.Module):
    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor
        self.img_upsampler = nn.Upsample(scale_factor=self.upscale_factor, mode='bicubic', align_corners=False)
        self.conv1 = nn.Conv2d(3, 64, kernel_size=9, padding=4)
        self.conv2 = nn.Conv2d(64, 32, kernel_size=1, padding=0)
        self.conv3 = nn.Conv2d(32, 3, kernel_size=5, padding=2)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.img_upsampler(x)
        out = self.relu(self.conv1(x))
        out = self.relu(self.conv2(out))
        out = self.conv3(out)
        return out


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    model = SuperResolutionNet(upscale_factor=3).eval()
    x = torch.randn(1, 3, 256, 256)
    path = os.path.join(out_dir, "srcnn.onnx")
    with torch.no_grad():
        torch.onnx.export(model, x, path, opset_version=11, input_names=['input'], output_names=['output'])
    print("exported", path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
