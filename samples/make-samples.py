#!/usr/bin/python3
"""Makes the sample images in this folder (Debian: python3-pil).

Each sample exercises one thing imgbatch handles: a colour photo-like JPEG,
a PNG with transparency, a grayscale image, a WebP, and a JPEG whose pixels
are stored sideways with an EXIF orientation tag saying so.
"""
import math
import os
from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))


def scene(w, h):
    """A small landscape: sky gradient, sun, hills, so resizing shows something."""
    im = Image.new("RGB", (w, h))
    px = im.load()
    for y in range(h):
        for x in range(w):
            t = y / h
            px[x, y] = (int(90 + 120 * t), int(150 + 60 * t), int(235 - 40 * t))
    d = ImageDraw.Draw(im)
    d.ellipse([w * 0.68, h * 0.12, w * 0.84, h * 0.12 + w * 0.16], fill=(255, 214, 90))
    for k, colour in enumerate([(60, 120, 60), (40, 95, 45)]):
        pts = [(0, h)]
        for x in range(0, w + 1, 8):
            pts.append((x, h * (0.62 + 0.1 * k) - h * 0.12 * math.sin(x / w * math.pi * (2 + k))))
        pts.append((w, h))
        d.polygon(pts, fill=colour)
    return im


def main():
    scene(960, 640).save(os.path.join(HERE, "landscape.jpg"), quality=88)

    badge = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    d = ImageDraw.Draw(badge)
    d.ellipse([20, 20, 380, 380], fill=(220, 60, 60, 255), outline=(255, 255, 255, 255), width=12)
    d.rectangle([150, 120, 250, 280], fill=(255, 255, 255, 200))
    badge.save(os.path.join(HERE, "badge-alpha.png"))

    scene(640, 480).convert("L").save(os.path.join(HERE, "gray.png"))

    os.makedirs(os.path.join(HERE, "web"), exist_ok=True)
    scene(800, 450).save(os.path.join(HERE, "web", "banner.webp"), quality=80)

    # Stored rotated 90 degrees anticlockwise; orientation 6 tells viewers to
    # turn it clockwise, so upright it is 480 wide and 640 tall.
    upright = scene(480, 640)
    stored = upright.transpose(Image.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(os.path.join(HERE, "web", "phone-rotated.jpg"), quality=88, exif=exif.tobytes())


if __name__ == "__main__":
    main()
