"""Pillow peer: the thumbnail job with multiprocessing.Pool(N).

usage: pillow_thumbs.py JOBS WIDTH HEIGHT QUALITY OUTDIR LISTFILE

LISTFILE holds input paths separated by NUL. Each output is OUTDIR/STEM.jpg.
draft() lets the JPEG decoder scale by 1/2..1/8 in the DCT domain, as
imgbatch, vips and sharp do; thumbnail() then fits the image inside the box.
Exits 1 if any image failed, after naming it on stderr.
"""

import os
import sys
from multiprocessing import Pool

from PIL import Image

BOX = None
QUALITY = None
OUTDIR = None


def init(box, quality, outdir):
    global BOX, QUALITY, OUTDIR
    BOX, QUALITY, OUTDIR = box, quality, outdir


def thumb(path):
    try:
        with Image.open(path) as im:
            im.draft("RGB", BOX)
            if im.mode not in ("RGB", "L"):
                im = im.convert("RGB")
            im.thumbnail(BOX)
            stem = os.path.splitext(os.path.basename(path))[0]
            im.save(os.path.join(OUTDIR, stem + ".jpg"), "JPEG", quality=QUALITY)
        return None
    except Exception as e:  # one bad file must not stop the batch
        return "%s: %s" % (path, e)


def main():
    jobs, w, h, quality, outdir, listfile = sys.argv[1:7]
    with open(listfile, "rb") as f:
        paths = [p.decode() for p in f.read().split(b"\0") if p]
    with Pool(int(jobs), initializer=init,
              initargs=((int(w), int(h)), int(quality), outdir)) as pool:
        errors = [e for e in pool.imap_unordered(thumb, paths, chunksize=1) if e]
    for e in errors:
        print("pillow: " + e, file=sys.stderr)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
