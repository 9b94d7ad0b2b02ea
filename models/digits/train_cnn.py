#!/usr/bin/python3
"""Trains the recognizer's convolutional digit classifier and writes it as ONNX.

    lostcard-train-digits --glyph-set gs-1.bin --seed 1 --lines 4000 --card-photos 6000 --exact-groups
    lostcard-train-digits --glyph-set gs-2.bin --seed 2 --lines 4000 --card-photos 6000 --exact-groups
    models/digits/train_cnn.py --out models/digits/digit_cnn.onnx --epochs 5 gs-1.bin gs-2.bin

The glyph sets are the glyphs the recognizer's own line cutter cuts from rendered lines and
card photos, labelled (lostcard-train-digits writes them; the format is described there). The
glyphs kept back there (one line or card in ten) are not learnt from: they measure the network,
and set the temperature that scales its logits (the recognizer's gates read its probabilities).
Glyph sets written since lostcard-train-digits keeps the wrong-way-round turns of kept-back cuts
back too (mostly "no digit") fit the temperature on both kinds of answer; the line figures leave
those glyphs out. (The committed network's sets predate that: its temperature was fitted on
digits only.) `lostcard-train-digits --height` adds the height preparation's cuts of embossing,
`--pitch` the cuts by pitch of embossed card photos' number lines.

Needs PyTorch (Debian: python3-torch; `tools/setup-deps --training` installs it). The
recognizer itself reads the ONNX file with OpenCV's dnn module and needs no PyTorch.
The last line printed is
    train-cnn: glyphs=.. validation_glyphs=.. glyph_accuracy=.. line_accuracy=..
               relief_line_accuracy=.. height_line_accuracy=.. card_photo_line_accuracy=..
               pitch_cut_line_accuracy=.. turned_accuracy=.. temperature=..
(glyph_accuracy over the kept-back glyphs of the cuts, line_accuracy over their lines, the next
two over the lines cut as relief or height, card_photo_line_accuracy over the lines of card
photos, pitch_cut_line_accuracy over the lines cut by pitch; turned_accuracy over the kept-back
wrong-way-round glyphs.)
"""

import argparse
import struct
import sys

import numpy as np
import torch
from torch import nn

MAGIC = b"lostcard-glyphs-1\n"
HELD_BACK, FROM_RELIEF, FROM_CARD_PHOTO, WRONG_WAY_ROUND, FROM_HEIGHT, FROM_PITCH_CUT = \
    1, 2, 4, 8, 16, 32
CLASSES = 11  # digits 0..9, and not a digit


def read_glyph_set(path, line_offset):
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(MAGIC):
        sys.exit(f"train-cnn: {path} is not a glyph set (lostcard-train-digits --glyph-set)")
    width, height = struct.unpack_from("<II", data, len(MAGIC))
    record = np.dtype([("label", "u1"), ("flags", "u1"), ("line", "<u4"),
                       ("pixels", "u1", (height, width))])
    body = data[len(MAGIC) + 8:]
    if len(body) % record.itemsize:
        sys.exit(f"train-cnn: {path} ends in the middle of a glyph")
    records = np.frombuffer(body, dtype=record)
    lines = records["line"].astype(np.int64) + line_offset
    return records["pixels"], records["label"].astype(np.int64), records["flags"], lines


class DigitNet(nn.Module):
    """Three 3x3 convolutions with pooling, one hidden layer: about 1.9 million multiply-adds a glyph."""

    def __init__(self, height, width):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        )
        self.classify = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(64 * (height // 4) * (width // 4), 128), nn.ReLU(),
            nn.Dropout(0.3),
            nn.Linear(128, CLASSES),
        )

    def forward(self, x):
        return self.classify(self.features(x))


class Scaled(nn.Module):
    """The trained network with its logits divided by the fitted temperature (what is exported)."""

    def __init__(self, net, temperature):
        super().__init__()
        self.net = net
        self.register_buffer("inverse_temperature", torch.tensor(1.0 / temperature))

    def forward(self, x):
        return self.net(x) * self.inverse_temperature


def shifted(batch, generator, reach=2):
    """Each glyph moved by up to `reach` pixels each way (the cutter's boxes vary that much)."""
    n, _, h, w = batch.shape
    padded = nn.functional.pad(batch, (reach, reach, reach, reach))
    dx = torch.randint(0, 2 * reach + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * reach + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # n x h
    cols = (dx[:, None] + torch.arange(w)[None, :])  # n x w
    index = torch.arange(n)[:, None, None]
    return padded[index, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def logits_of(net, x, batch=4096):
    net.eval()
    with torch.no_grad():
        return torch.cat([net(x[i:i + batch]) for i in range(0, len(x), batch)])


def fit_temperature(logits, labels):
    """The temperature that minimises the kept-back glyphs' negative log likelihood."""
    best_t, best_nll = 1.0, float("inf")
    for t in np.arange(0.5, 5.01, 0.05):
        nll = nn.functional.cross_entropy(logits / t, labels).item()
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("glyph_sets", nargs="+", help="files written by lostcard-train-digits --glyph-set")
    parser.add_argument("--out", required=True, help="where to write the model (.onnx)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(args.seed)

    parts = []
    offset = 0
    for path in args.glyph_sets:
        part = read_glyph_set(path, offset)
        offset = int(part[3].max()) + 1 if len(part[3]) else offset
        parts.append(part)
    pixels = np.concatenate([p[0] for p in parts])
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    flags = np.concatenate([p[2] for p in parts])
    lines = np.concatenate([p[3] for p in parts])
    height, width = pixels.shape[1:]
    x = torch.from_numpy(pixels).float().div_(255.0).unsqueeze(1)
    held = torch.from_numpy((flags & HELD_BACK) != 0)
    train_x, train_y = x[~held], labels[~held]
    held_x, held_y = x[held], labels[held]
    print(f"train-cnn: learning from {len(train_x)} glyphs, {len(held_x)} kept back", flush=True)

    net = DigitNet(height, width)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=3e-3, total_steps=args.epochs * ((len(train_x) + 255) // 256))
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(train_x), generator=generator)
        total = 0.0
        for start in range(0, len(order), 256):
            take = order[start:start + 256]
            batch = shifted(train_x[take], generator)
            loss = nn.functional.cross_entropy(net(batch), train_y[take])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(take)
        right = (logits_of(net, held_x).argmax(1) == held_y).float().mean().item()
        print(f"epoch {epoch + 1}: loss={total / len(train_x):.4f} held_glyph_accuracy={right:.4f}",
              flush=True)

    held_logits = logits_of(net, held_x)
    temperature = fit_temperature(held_logits, held_y)
    if temperature < 0.5 + 1e-6 or temperature > 5.0 - 1e-6:
        print(f"train-cnn: warning: the temperature fit stopped at the edge of its range "
              f"({temperature:.2f})", flush=True)
    scaled = Scaled(net, temperature).eval()
    torch.onnx.export(scaled, torch.zeros(1, 1, height, width), args.out, input_names=["glyph"],
                      output_names=["logits"], dynamic_axes={"glyph": {0: "n"}, "logits": {0: "n"}},
                      opset_version=11)

    # Line figures over the kept-back cuts, their wrong-way-round glyphs left out.
    right_all = (held_logits.argmax(1) == held_y).numpy()
    held_flags_all = flags[held.numpy()]
    turned = (held_flags_all & WRONG_WAY_ROUND) != 0
    right = right_all[~turned]
    held_lines = lines[held.numpy()][~turned]
    held_flags = held_flags_all[~turned]
    line_ids, inverse = np.unique(held_lines, return_inverse=True)
    line_right = np.ones(len(line_ids), dtype=bool)
    np.logical_and.at(line_right, inverse, right)
    line_flags = np.zeros(len(line_ids), dtype=np.uint8)
    line_flags[inverse] = held_flags

    def share(mask):
        return float(line_right[mask].mean()) if mask.any() else 0.0

    turned_accuracy = f"{float(right_all[turned].mean()):.4f}" if turned.any() else "n/a"
    print(f"train-cnn: glyphs={len(train_x)} validation_glyphs={len(held_x)} "
          f"glyph_accuracy={right.mean():.4f} line_accuracy={line_right.mean():.4f} "
          f"relief_line_accuracy={share((line_flags & FROM_RELIEF) != 0):.4f} "
          f"height_line_accuracy={share((line_flags & FROM_HEIGHT) != 0):.4f} "
          f"card_photo_line_accuracy={share((line_flags & FROM_CARD_PHOTO) != 0):.4f} "
          f"pitch_cut_line_accuracy={share((line_flags & FROM_PITCH_CUT) != 0):.4f} "
          f"turned_accuracy={turned_accuracy} temperature={temperature:.2f}")


if __name__ == "__main__":
    main()
