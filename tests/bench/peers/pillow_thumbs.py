"""Pillow peer: resized copies of every image with multiprocessing.Pool(N).

usage: pillow_thumbs.py JOBS FORMAT QUALITY OUTDIR LISTFILE NAME=GEOM...

LISTFILE holds input paths separated by NUL; FORMAT is jpg or webp. Each
NAME=GEOM is one output, OUTDIR/STEM.FORMAT for an empty NAME, else
OUTDIR/STEM-NAME.FORMAT; GEOM is WxH (fit inside) or Wx (width only), with
or without '>': thumbnail() never enlarges, so both mean the same here.

Each image is opened and decoded once. draft() lets the JPEG decoder scale
by 1/2..1/8 in the DCT domain, as imgbatch, vips and sharp do, but no
smaller than the first output's box (the runner puts the largest first, with
both sides given); each output is then a thumbnail() of a copy of the
decoded image. WebP is written at method=4,
libwebp's and Pillow's default and the same as sharp's default effort 4.
Exits 1 if any image failed, after naming it on stderr.
"""

import os
import re
import sys
from multiprocessing import Pool

from PIL import Image

# Pillow's format name and save options for each FORMAT.
SAVE = {"jpg": ("JPEG", {}), "webp": ("WEBP", {"method": 4})}
UNBOUNDED = 1 << 30

SETTINGS = {}


def init(fmt, quality, outdir, outputs):
    SETTINGS.update(fmt=fmt, quality=quality, outdir=outdir, outputs=outputs)


def parse_spec(spec):
    m = re.fullmatch(r"([^=]*)=(\d*)x(\d*)>?", spec)
    if not m or not (m.group(2) or m.group(3)):
        sys.exit("pillow: bad output spec %s" % spec)
    suffix = "-" + m.group(1) if m.group(1) else ""
    return suffix, (int(m.group(2) or UNBOUNDED), int(m.group(3) or UNBOUNDED))


def thumb(path):
    fmt, outputs = SETTINGS["fmt"], SETTINGS["outputs"]
    kind, options = SAVE[fmt]
    stem = os.path.join(SETTINGS["outdir"], os.path.splitext(os.path.basename(path))[0])
    try:
        with Image.open(path) as im:
            im.draft("RGB", outputs[0][1])
            if im.mode not in ("RGB", "L"):
                im = im.convert("RGB")
            for suffix, box in outputs:
                out = im.copy() if len(outputs) > 1 else im
                out.thumbnail(box)
                out.save("%s%s.%s" % (stem, suffix, fmt), kind, quality=SETTINGS["quality"],
                         **options)
        return None
    except Exception as e:  # one bad file must not stop the batch
        return "%s: %s" % (path, e)


def main():
    jobs, fmt, quality, outdir, listfile = sys.argv[1:6]
    outputs = [parse_spec(s) for s in sys.argv[6:]]
    with open(listfile, "rb") as f:
        paths = [p.decode() for p in f.read().split(b"\0") if p]
    with Pool(int(jobs), initializer=init,
              initargs=(fmt, int(quality), outdir, outputs)) as pool:
        errors = [e for e in pool.imap_unordered(thumb, paths, chunksize=1) if e]
    for e in errors:
        print("pillow: " + e, file=sys.stderr)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
