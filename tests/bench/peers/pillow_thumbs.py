"""Pillow peer: resized copies of every image with multiprocessing.Pool(N).

usage: pillow_thumbs.py JOBS FORMATS QUALITY OUTDIR LISTFILE
                        [--overlay FILE:MARGIN:OPACITY:PCT] NAME=GEOM...

LISTFILE holds input paths separated by NUL; FORMATS is jpg or webp, or
both separated by a comma: each output is written in each. Each
NAME=GEOM is one output, OUTDIR/STEM.FORMAT for an empty NAME, else
OUTDIR/STEM-NAME.FORMAT; GEOM is WxH (fit inside) or Wx (width only), with
or without '>': thumbnail() never enlarges, so both mean the same here.

Each image is opened and decoded once. draft() lets the JPEG decoder scale
by 1/2..1/8 in the DCT domain, as imgbatch, vips and sharp do, but no
smaller than the first output's box (the runner puts the largest first, with
both sides given); each output is then a thumbnail() of a copy of the
decoded image. WebP is written at method=4,
libwebp's and Pillow's default and the same as sharp's default effort 4.
--overlay lays FILE on each output as imgbatch's overlay op does: PCT% of
the output's width (Lanczos), its alpha times OPACITY (applied once, at
start), MARGIN px in from the south-east corner; scaled copies are kept by
width. Exits 1 if any image failed, after naming it on stderr.
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


def init(fmts, quality, outdir, outputs, overlay):
    SETTINGS.update(fmts=fmts, quality=quality, outdir=outdir, outputs=outputs,
                    overlay=load_overlay(overlay) if overlay else None, scaled={})


def load_overlay(spec):
    file, margin, opacity, pct = spec.split(":")
    im = Image.open(file).convert("RGBA")
    im.putalpha(im.getchannel("A").point(lambda a: round(a * float(opacity))))
    return im, int(margin), float(pct)


def lay_overlay(out):
    """out (RGB or L) with the watermark pasted at its south-east corner."""
    mark, margin, pct = SETTINGS["overlay"]
    w = max(1, round(out.width * pct / 100))
    if w not in SETTINGS["scaled"]:
        SETTINGS["scaled"][w] = mark.resize((w, max(1, round(mark.height * w / mark.width))),
                                            Image.LANCZOS)
    m = SETTINGS["scaled"][w]
    if out.mode != "RGB":
        out = out.convert("RGB")
    out.paste(m, (max(0, out.width - m.width - margin), max(0, out.height - m.height - margin)), m)
    return out


def parse_spec(spec):
    m = re.fullmatch(r"([^=]*)=(\d*)x(\d*)>?", spec)
    if not m or not (m.group(2) or m.group(3)):
        sys.exit("pillow: bad output spec %s" % spec)
    suffix = "-" + m.group(1) if m.group(1) else ""
    return suffix, (int(m.group(2) or UNBOUNDED), int(m.group(3) or UNBOUNDED))


def thumb(path):
    outputs = SETTINGS["outputs"]
    stem = os.path.join(SETTINGS["outdir"], os.path.splitext(os.path.basename(path))[0])
    try:
        with Image.open(path) as im:
            im.draft("RGB", outputs[0][1])
            if im.mode not in ("RGB", "L"):
                im = im.convert("RGB")
            for suffix, box in outputs:
                out = im.copy() if len(outputs) > 1 else im
                out.thumbnail(box)
                if SETTINGS["overlay"]:
                    out = lay_overlay(out)
                for fmt in SETTINGS["fmts"]:
                    kind, options = SAVE[fmt]
                    out.save("%s%s.%s" % (stem, suffix, fmt), kind, quality=SETTINGS["quality"],
                             **options)
        return None
    except Exception as e:  # one bad file must not stop the batch
        return "%s: %s" % (path, e)


def main():
    jobs, fmts, quality, outdir, listfile = sys.argv[1:6]
    rest, overlay = sys.argv[6:], None
    if rest[:1] == ["--overlay"]:
        overlay, rest = rest[1], rest[2:]
    outputs = [parse_spec(s) for s in rest]
    with open(listfile, "rb") as f:
        paths = [p.decode() for p in f.read().split(b"\0") if p]
    with Pool(int(jobs), initializer=init,
              initargs=(fmts.split(","), int(quality), outdir, outputs, overlay)) as pool:
        errors = [e for e in pool.imap_unordered(thumb, paths, chunksize=1) if e]
    for e in errors:
        print("pillow: " + e, file=sys.stderr)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
