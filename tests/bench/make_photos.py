"""Build the benchmark's two photo folders from the public corpus.

Run through tests/bench/make-photos, which installs vips first. Every image
is a photograph from ../shared/corpus (see SOURCES), re-encoded without metadata
and rescaled with `vips resize`:

  DIR/large/  4-20 MP, mixed as a photo folder is: of every six, four JPEGs,
              one PNG and one WebP. Sources smaller than the target are
              UPSCALED, so these files have camera-photo sizes but no more
              detail than their source; they measure decode/resize/encode
              cost at that size.
  DIR/small/  0.3-1.3 MP JPEGs made by DOWNSCALING (sources already below the
              target are re-encoded at their own size, never enlarged).

The output is deterministic for a given corpus and vips version.
"""

import argparse
import concurrent.futures
import math
import os
import shutil
import subprocess
import sys
import tempfile

# Real photographs only. Left out on purpose: sharp/flowers.jpeg (a smooth
# pink gradient, not a photo) and exif-samples/.../67-0_length_string.jpg
# (a flat grey frame); both would make decoding look cheaper than it is.
SOURCES = [
    "sharp/2569067123_aca715a2ee_o.jpg",
    "libvips-testsuite/ultra-hdr.jpg",
    "libvips-testsuite/avif-orientation-6.avif",
    "image-png/benches/kodim02.png",
    "image-png/benches/kodim07.png",
    "image-png/benches/kodim17.png",
    "image-png/benches/kodim23.png",
    "sharp/4.webp",
    "exif-samples/jpg/tests/30-type_error.jpg",
    "exif-samples/jpg/tests/33-type_error.jpg",
    "exif-samples/jpg/tests/28-hex_value.jpg",
    "exif-samples/jpg/tests/35-empty.jpg",
    "exif-samples/jpg/tests/87_OSError.jpg",
    "exif-samples/jpg/Reconyx_HC500_Hyperfire.jpg",
    "exif-samples/jpg/tests/22-canon_tags.jpg",
    "exif-samples/jpg/tests/36-memory_error.jpg",
    "exif-samples/jpg/tests/45-gps_ifd.jpg",
]

GOLDEN = 0.6180339887498949
QUALITIES = (92, 85, 75)


def default_corpus():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    return os.path.join(os.path.dirname(repo), "shared", "corpus")


def header_size(path):
    out = subprocess.run(["vipsheader", "-f", "width", path], capture_output=True,
                         text=True, check=True).stdout
    w = int(out.strip())
    out = subprocess.run(["vipsheader", "-f", "height", path], capture_output=True,
                         text=True, check=True).stdout
    return w, int(out.strip())


def spread(i, lo, hi):
    """The i-th of a low-discrepancy sequence in [lo, hi]: sizes cover the
    range evenly whatever the count."""
    return lo + (hi - lo) * ((0.5 + i * GOLDEN) % 1.0)


# Saver options per format: JPEG and WebP at the file's quality, PNG with
# the adaptive row filters that libpng, ImageMagick and most editors use by
# default (libvips' own default is no filter, which few PNGs in the wild
# have and which is cheaper to decode).
SAVE_OPTS = {
    "jpg": "[Q=%d,strip,optimize_coding]",
    "png": "[compression=6,filter=all,strip]",
    "webp": "[Q=%d,strip]",
}


def make_one(src, size, target_mp, quality, dest, allow_upscale):
    w, h = size
    scale = math.sqrt(target_mp * 1e6 / (w * h))
    if scale > 1 and not allow_upscale:
        scale = 1.0
    opts = SAVE_OPTS[dest.rsplit(".", 1)[1]]
    if "%d" in opts:
        opts = opts % quality
    if abs(scale - 1.0) < 1e-3:
        subprocess.run(["vips", "copy", src, dest + opts], check=True)
    else:
        # lanczos3 both ways; --vscale keeps the aspect ratio exact.
        subprocess.run(["vips", "resize", src, dest + opts, "%.6f" % scale,
                        "--kernel", "lanczos3"], check=True)
    return header_size(dest)


def build_set(corpus, sources, out, count, lo, hi, allow_upscale, tag, formats):
    """formats: the file format of each image in turn, cycled."""
    os.makedirs(out, exist_ok=True)
    for old in os.listdir(out):
        if old.endswith(tuple("." + f for f in SAVE_OPTS)):
            os.remove(os.path.join(out, old))
    jobs = []
    for i in range(count):
        rel, src, size = sources[i % len(sources)]
        stem = "%s-%03d-%s" % (tag, i + 1, os.path.splitext(os.path.basename(rel))[0])
        ext = formats[i % len(formats)]
        jobs.append((rel, src, size, spread(i, lo, hi), QUALITIES[i % len(QUALITIES)],
                     stem + "." + ext, os.path.join(out, stem + "." + ext)))
    # vips is run once per file; a thread per CPU keeps the CPUs busy.
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as ex:
        dims = list(ex.map(lambda j: make_one(j[1], j[2], j[3], j[4], j[6], allow_upscale),
                           jobs))
    total_mp, sizes, nbytes = 0.0, [], 0
    kinds = {}
    for (rel, _, _, _, quality, name, dest), (w, h) in zip(jobs, dims):
        mp = w * h / 1e6
        sizes.append(mp)
        total_mp += mp
        nbytes += os.path.getsize(dest)
        ext = name.rsplit(".", 1)[1]
        kinds[ext] = kinds.get(ext, 0) + 1
        print("  %-48s %5dx%-5d %5.2f MP  %-4s from %s"
              % (name, w, h, mp, "" if ext == "png" else "q%d" % quality, rel))
    print("  -> %d files (%s) in %s: %.1f MP total, %.2f-%.2f MP each, %.1f MB"
          % (count, ", ".join("%d %s" % (n, e.upper()) for e, n in sorted(kinds.items())), out,
             total_mp, min(sizes), max(sizes), nbytes / 1e6))


def main():
    ap = argparse.ArgumentParser(prog="make-photos", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="output folder (gets large/ and small/)")
    ap.add_argument("--corpus", default=os.environ.get("IMGBATCH_CORPUS", default_corpus()),
                    help="the public corpus (default: ../shared/corpus beside the repo)")
    ap.add_argument("--large", type=int, default=48, metavar="N",
                    help="number of 4-20 MP photos (default 48: 32 JPEG, 8 PNG, 8 WebP)")
    ap.add_argument("--small", type=int, default=300, metavar="N",
                    help="number of 0.3-1.3 MP JPEGs (default 300)")
    args = ap.parse_args()

    if not os.path.isdir(args.corpus):
        sys.exit("make-photos: corpus not found at %s (give --corpus DIR)" % args.corpus)
    sources = []
    missing = []
    tmp = tempfile.mkdtemp(prefix="make-photos-")
    try:
        for i, rel in enumerate(SOURCES):
            path = os.path.join(args.corpus, rel)
            if not os.path.isfile(path):
                missing.append(rel)
                continue
            # Decode every source once to an uncompressed .v file: AVIF and
            # WebP loaders are slow, and this pins each source's pixels.
            # EXIF orientation is applied here (vips autorot), then dropped.
            flat = os.path.join(tmp, "src%02d.v" % i)
            r = subprocess.run(["vips", "autorot", path, flat], capture_output=True, text=True)
            if r.returncode != 0:
                missing.append("%s (vips: %s)" % (rel, r.stderr.strip().splitlines()[-1:]))
                continue
            sources.append((rel, flat, header_size(flat)))
        if not sources:
            sys.exit("make-photos: none of the source photos could be read from %s" % args.corpus)

        print("make-photos: these are REAL PHOTOS from the public corpus in %s" % args.corpus)
        print("(%d source photos, listed per file below), re-encoded without metadata"
              % len(sources))
        print("and rescaled with %s." % subprocess.run(
            ["vips", "--version"], capture_output=True, text=True).stdout.strip())
        if missing:
            print("skipped sources: " + ", ".join(missing))
        print()
        print("large: %d photos of 4-20 MP, of every six four JPEGs, one PNG, one WebP;"
              % args.large)
        print("sources smaller than the target were UPSCALED (lanczos3), so they have camera")
        print("sizes but no more detail than their source.")
        build_set(args.corpus, sources, os.path.join(args.dir, "large"), args.large,
                  4.0, 20.0, True, "large", ("jpg", "jpg", "png", "jpg", "jpg", "webp"))
        print()
        print("small: %d JPEGs of 0.3-1.3 MP, DOWNSCALED from the same photos (a source"
              % args.small)
        print("already smaller than the target is re-encoded at its own size, not enlarged).")
        build_set(args.corpus, sources, os.path.join(args.dir, "small"), args.small,
                  0.3, 1.3, False, "small", ("jpg",))
        print()
        print("Run the benchmark on them with:")
        print("  tests/bench/run %s --jobs 2 --rounds 3" % os.path.join(args.dir, "large"))
        print("  tests/bench/run %s --jobs 2 --rounds 3" % os.path.join(args.dir, "small"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
