#!/usr/bin/python3
"""Trains the tutorial's SRCNN (x3) on the CPU, on images that python3-skimage ships.

    /usr/bin/python3 examples/srcnn/train_srcnn.py [OUT_DIR] [--steps N]

The tutorial downloads a trained checkpoint; that cannot be done here, so kiln trains its own. Reproducible:
fixed seeds and a fixed step count (torch's CPU kernels may still differ in the last bits across machines).
About 6 minutes on 2 cores. Needs python3-skimage (`apt-get install python3-skimage`), which `make test`
does not install: the trained weights are committed. Then `export_srcnn.py` writes the ONNX files.

Data: HR patches from the training images below; the LR input is the HR patch shrunk 3x with
cv2.INTER_AREA (what the demo does to the held-out images). Held out: astronaut (the demo's face) and
chelsea; they are never seen in training.

The network works on 0-255 BGR pixels as in the tutorial. It is trained on pixels / 255 and then converted:
every layer is linear up to a ReLU, so scaling all three biases by 255 gives exactly f(255 x) = 255 f(x).

Writes OUT_DIR/srcnn.pth in the tutorial's checkpoint layout ({'state_dict': {'generator.conv1.weight': ...}})
and prints the held-out PSNR of SRCNN and of plain bicubic.
"""
import argparse
import os
import sys
import time
import warnings

import cv2
import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srcnn_model import SuperResolutionNet  # noqa: E402

TRAIN = ["coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel", "camera",
         "moon", "coins", "clock", "grass", "gravel", "brick", "page", "text"]
HELD_OUT = ["astronaut", "chelsea"]
SCALE = 3


def load_bgr(name):
    import skimage.data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        im = getattr(skimage.data, name)()
    if im.ndim == 2:
        im = np.stack([im] * 3, axis=-1)
    im = im[..., :3].astype(np.uint8)
    return np.ascontiguousarray(im[..., ::-1])  # RGB -> BGR, as cv2.imread gives


def crop_to_scale(im):
    h, w = im.shape[:2]
    return im[:h - h % SCALE, :w - w % SCALE]


def shrink(hr):
    h, w = hr.shape[:2]
    return cv2.resize(hr, (w // SCALE, h // SCALE), interpolation=cv2.INTER_AREA)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def to_uint8(t):
    return np.clip(t.detach().numpy()[0].transpose(1, 2, 0), 0, 255).round().astype(np.uint8)


def evaluate(model, names):
    """PSNR (dB) of SRCNN and of the network's own bicubic upsampling, on whole images."""
    out = []
    with torch.no_grad():
        for n in names:
            hr = crop_to_scale(load_bgr(n))
            lr = torch.from_numpy(shrink(hr).transpose(2, 0, 1)[None].astype(np.float32))
            sr = to_uint8(model(lr))
            bic = to_uint8(model.img_upsampler(lr))
            out.append((n, psnr(sr, hr), psnr(bic, hr)))
    return out


def identity_init(model):
    """Starts the network at plain bicubic: 3 of conv1's and conv2's channels pass the (non-negative) pixels
    through and conv3 adds them back up, so training only has to learn the correction. The other channels
    keep torch's default initialisation, and conv3 reads them with small weights."""
    with torch.no_grad():
        for conv, center in ((model.conv1, 4), (model.conv2, 0)):
            conv.weight[:3].zero_()
            conv.bias[:3].zero_()
            for c in range(3):
                conv.weight[c, c, center, center] = 1.0
        model.conv3.weight.mul_(0.01)
        model.conv3.bias.zero_()
        model.conv3.weight[:, :3].zero_()
        for c in range(3):
            model.conv3.weight[c, c, 2, 2] = 1.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir", nargs="?", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--patch", type=int, default=48)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-4)
    args = ap.parse_args()

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    torch.set_num_threads(os.cpu_count() or 1)

    images = [crop_to_scale(load_bgr(n)).astype(np.float32) / 255 for n in TRAIN]
    p = args.patch - args.patch % SCALE

    def batch():
        hr, lr = [], []
        for _ in range(args.batch):
            im = images[rng.integers(len(images))]
            y = rng.integers(0, (im.shape[0] - p) // SCALE + 1) * SCALE
            x = rng.integers(0, (im.shape[1] - p) // SCALE + 1) * SCALE
            patch = im[y:y + p, x:x + p]
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
            patch = np.ascontiguousarray(np.rot90(patch, rng.integers(4)))
            hr.append(patch.transpose(2, 0, 1))
            lr.append(shrink(patch).transpose(2, 0, 1))
        return torch.from_numpy(np.stack(lr)), torch.from_numpy(np.stack(hr))

    model = SuperResolutionNet(upscale_factor=SCALE)
    identity_init(model)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[int(args.steps * 0.7)], gamma=0.1)
    loss_fn = nn.MSELoss()
    start = time.time()
    for step in range(1, args.steps + 1):
        lr, hr = batch()
        # The whole patch, borders included: there the convolutions read zero padding, and the network has to
        # learn to leave those pixels close to bicubic.
        loss = loss_fn(model(lr), hr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == args.steps:
            print(f"step {step:5d}  loss {loss.item():.6f}  psnr(patch) {10 * np.log10(1 / loss.item()):.2f} dB  "
                  f"{time.time() - start:.0f} s", flush=True)

    # Convert to the 0-255 domain: scale every bias by 255.
    with torch.no_grad():
        for conv in (model.conv1, model.conv2, model.conv3):
            conv.bias.mul_(255.0)
    model.eval()
    state = {"generator." + k: v.clone() for k, v in model.state_dict().items()}
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, "srcnn.pth")
    torch.save({"state_dict": state}, path)
    print("saved", path)
    for name, s, b in evaluate(model, HELD_OUT):
        print(f"held out {name:10s}  SRCNN {s:.2f} dB   bicubic {b:.2f} dB   gain {s - b:+.2f} dB")


if __name__ == "__main__":
    main()
