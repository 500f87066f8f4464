"""imgbatch and its peers, side by side, on one folder of images.

Run through tests/bench/run, which installs the peers and builds a release
imgbatch first; see README.md beside this file for what is measured and how
to read the table. This is a benchmark, not a test: it never fails on
numbers, only on a broken setup.

Every peer does the same job (--workload), into a fresh temporary folder,
with --jobs single-threaded workers: "thumb" (the default) makes each image
a thumbnail that fits inside WxH, written as JPEG at --quality; "web" makes
three WebPs of each image at --quality, fit into 1600x1600, 960 wide and 480
wide, never enlarged; "web-webp", "web-avif" and "web-jpeg" one copy fit into
1600x1600, never enlarged; "watermark" that copy in JPEG with a watermark;
"variants" the three sizes of "web" in WebP and JPEG. Rounds alternate the peers (a different order each
round) and the table shows medians.

Wall time is measured around the peer's whole process tree (start-up
included: that is what a user waits for). CPU time and peak RSS come from
wait4() on that tree, the same rusage /usr/bin/time reports: CPU is the sum
over every process, peak RSS the largest single process.
"""

import argparse
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS_DIR = os.path.join(HERE, "peers")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp")

# Every peer gets N single-threaded workers, as imgbatch -j N runs libvips
# with one thread per worker: these keep the libraries of the xargs-driven
# peers from starting a thread per core inside each of their N processes.
SINGLE_THREAD_ENV = {
    "VIPS_CONCURRENCY": "1",
    "OMP_NUM_THREADS": "1",
    "MAGICK_THREAD_LIMIT": "1",
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def which(*names):
    for n in names:
        if os.path.isabs(n):
            if os.access(n, os.X_OK):
                return n
        else:
            p = shutil.which(n)
            if p:
                return p
    return None


def first_line(argv, env=None):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (r.stdout or r.stderr).strip()
    return text.splitlines()[0].strip() if r.returncode == 0 and text else None


# --------------------------------------------------------------------------
# Running one command and measuring it


class Measure:
    def __init__(self, rc, wall, cpu, maxrss_kib, stderr):
        self.rc, self.wall, self.cpu, self.maxrss_kib, self.stderr = rc, wall, cpu, maxrss_kib, stderr


def run_measured(argv, cwd=None, env=None, stdin_bytes=None):
    """Run argv, return wall seconds and the rusage of its whole tree.

    wait4() on the child gives the rusage the kernel accumulated for it and
    every descendant it reaped: CPU summed, ru_maxrss the largest single
    process. Popen is used only to start the child; we reap it ourselves.
    """
    errf = tempfile.TemporaryFile()
    stdin = subprocess.PIPE if stdin_bytes is not None else subprocess.DEVNULL
    t0 = time.monotonic()
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdin,
                         stdout=subprocess.DEVNULL, stderr=errf)
    if stdin_bytes is not None:
        try:
            p.stdin.write(stdin_bytes)
        except BrokenPipeError:
            pass
        p.stdin.close()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    errf.seek(0)
    stderr = errf.read().decode(errors="replace")
    errf.close()
    return Measure(p.returncode, wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, stderr)


def proc_children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def proc_hwm_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run_polled(argv, env=None, interval=0.005):
    """Run argv and poll VmHWM (peak RSS) of it and of its children.

    Returns (rc, parent peak KiB, {child pid: peak KiB}). VmHWM only grows,
    so any poll after a peak catches it; a child is read until it exits.
    """
    p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parent, children = 0, {}
    while p.poll() is None:
        v = proc_hwm_kib(p.pid)
        if v:
            parent = max(parent, v)
        stack = proc_children(p.pid)
        while stack:
            c = stack.pop()
            v = proc_hwm_kib(c)
            if v:
                children[c] = max(children.get(c, 0), v)
            stack.extend(proc_children(c))
        time.sleep(interval)
    p.stderr.read()
    p.stderr.close()
    return p.returncode, parent, children


# --------------------------------------------------------------------------
# The peers


class Output:
    """One output made of each input: OUTDIR/STEM.EXT when the name is empty,
    else OUTDIR/STEM-NAME.EXT, fit into w x h (h None: w wide), never
    enlarged when shrink is set."""

    def __init__(self, name, w, h=None, shrink=True):
        self.name, self.w, self.h, self.shrink = name, w, h, shrink

    def geom(self):
        """ImageMagick geometry, as imgbatch, vipsthumbnail and the peer
        scripts read it: 256x256, 1600x1600>, 960x>."""
        return "%dx%s%s" % (self.w, self.h or "", ">" if self.shrink else "")

    def spec(self):
        """NAME=GEOM, as the sharp and Pillow peer scripts take it."""
        return "%s=%s" % (self.name, self.geom())

    def path(self, out, stem, ext):
        return os.path.join(out, "%s%s.%s" % (stem, "-" + self.name if self.name else "", ext))

    def expected(self, w, h):
        scale = self.w / w if self.h is None else min(self.w / w, self.h / h)
        if self.shrink:
            scale = min(scale, 1.0)
        return round(w * scale), round(h * scale)


# The web workload: one decode, three WebPs, never enlarged. The largest
# comes first, with both sides given (the Pillow peer drafts to it).
WEB_OUTPUTS = (Output("l", 1600, 1600), Output("m", 960), Output("s", 480))
WEB_COPY = (Output("", 1600, 1600),)


class Workload:
    """One job every peer does: its outputs per input, the formats each is
    written in, the quality unless --quality says otherwise, and whether a
    watermark is laid on each output."""

    def __init__(self, outputs, exts, quality, watermark=False, text=""):
        self.outputs, self.exts, self.quality = outputs, exts, quality
        self.watermark, self.text = watermark, text


WORKLOAD_DEFS = {
    "thumb": None,
    "web": Workload(WEB_OUTPUTS, ("webp",), 80, text="three WebPs"),
    "web-webp": Workload(WEB_COPY, ("webp",), 80, text="a web copy, WebP"),
    "web-avif": Workload(WEB_COPY, ("avif",), 50, text="a web copy, AVIF"),
    "web-jpeg": Workload(WEB_COPY, ("jpg",), 82, text="a web copy, JPEG"),
    "watermark": Workload(WEB_COPY, ("jpg",), 82, watermark=True,
                          text="a web copy with a watermark, JPEG"),
    "variants": Workload(WEB_OUTPUTS, ("webp", "jpg"), 80,
                         text="three sizes in two formats"),
}
WORKLOADS = tuple(WORKLOAD_DEFS)
# The watermark: WIDTH% of each output's width, at the south-east corner,
# MARGIN px in, at OPACITY; imgbatch's overlay op and the peer scripts'
# --overlay take the same four values.
WATERMARK = {"margin": 16, "opacity": 0.5, "width_pct": 20}


def make_watermark(path):
    """A 600x200 logo with soft alpha edges: a rounded plate and a mark, as
    a watermark PNG usually is. Made once per run, before any clock."""
    from PIL import Image, ImageDraw

    im = Image.new("RGBA", (600, 200), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.rounded_rectangle((4, 4, 595, 195), radius=40, fill=(255, 255, 255, 170))
    d.ellipse((30, 30, 170, 170), fill=(200, 30, 40, 255))
    for i in range(6):
        d.rectangle((200 + i * 62, 60 + (i % 2) * 20, 240 + i * 62, 140), fill=(20, 20, 20, 230))
    im.save(path)


class Job:
    """What every peer is asked to do, and the files to do it on."""

    def __init__(self, args, root, rels, listdir):
        self.root = root
        self.rels = rels
        self.paths = [os.path.join(root, r) for r in rels]
        self.jobs = args.jobs
        self.w, self.h = args.box
        self.size = "%dx%d" % args.box
        self.workload = args.workload
        self.spec = WORKLOAD_DEFS[self.workload]
        self.watermark = None
        if self.spec:
            self.exts, self.outputs = self.spec.exts, self.spec.outputs
            self.quality = args.quality or self.spec.quality
            if self.spec.watermark:
                self.watermark = os.path.join(listdir, "watermark.png")
                if not os.path.exists(self.watermark):
                    make_watermark(self.watermark)
        else:
            self.exts, self.outputs = ("jpg",), (Output("", self.w, self.h, shrink=False),)
            self.quality = args.quality or 80
        self.ext = self.exts[0]
        self.xargs_n = args.xargs_n or max(1, math.ceil(len(rels) / (4 * args.jobs)))
        self.listfile = os.path.join(listdir, "files-%d.lst" % len(rels))
        with open(self.listfile, "wb") as f:
            f.write(b"\0".join(p.encode() for p in self.paths) + b"\0")

    def nul_paths(self):
        return b"\0".join(p.encode() for p in self.paths) + b"\0"

    def nul_rels(self):
        return b"\0".join(r.encode() for r in self.rels) + b"\0"

    def subset(self, n, listdir, args):
        return Job(args, self.root, self.rels[:n], listdir)

    def describe(self):
        if self.spec:
            wm = ""
            if self.watermark:
                wm = ", watermark at %(width_pct)d%% width, southeast, %(margin)d px in, " \
                     "opacity %(opacity)g" % WATERMARK
            return "%s: %s of each image, %s quality %d, at %s, never enlarged%s" % (
                self.workload, self.spec.text, " and ".join(self.exts), self.quality,
                ", ".join(o.geom() for o in self.outputs), wm)
        return "thumbnails to fit %s, JPEG quality %d" % (self.size, self.quality)

    def overlay_value(self):
        """FILE:MARGIN:OPACITY:PCT, as the peer scripts' --overlay takes it."""
        return "%s:%d:%g:%d" % (self.watermark, WATERMARK["margin"], WATERMARK["opacity"],
                                WATERMARK["width_pct"])

    def script_args(self, out):
        """What the sharp and Pillow peer scripts take after their name."""
        wm = ["--overlay", self.overlay_value()] if self.watermark else []
        return [str(self.jobs), ",".join(self.exts), str(self.quality), out, self.listfile] + \
            wm + [o.spec() for o in self.outputs]


def base_env(extra=None):
    env = dict(os.environ)
    env.update(SINGLE_THREAD_ENV)
    if extra:
        env.update(extra)
    return env


class Peer:
    name = "?"
    available = False
    why = ""
    version = ""
    # Why the peer is left out of the web workloads; None: it takes part.
    not_web = None
    # Formats it cannot write, and edits it cannot make, as run here.
    cannot_write = ()
    no_watermark = None

    def prepare(self, job, rundir):
        """Make the output folder (and anything else untimed); return it."""
        out = os.path.join(rundir, "out")
        os.makedirs(out)
        return out

    def invocation(self, job, rundir, out):
        """(argv, cwd, env, stdin bytes) of the timed command."""
        raise NotImplementedError

    def outputs(self, out):
        return [os.path.join(out, f) for f in os.listdir(out) if f.lower().endswith(".jpg")]


class Imgbatch(Peer):
    name = "imgbatch"

    def __init__(self, binary):
        self.binary = binary
        if binary and os.access(binary, os.X_OK):
            self.available = True
            v = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
            self.version = " ".join(v.split())
            if os.environ.get("IMGBATCH_BENCH_SOURCE"):
                self.version += "; built from the " + os.environ["IMGBATCH_BENCH_SOURCE"]
        else:
            self.why = "no imgbatch binary at %s (give --imgbatch PATH)" % binary

    def argv(self, job, out, fmt=None):
        if job.spec and len(job.outputs) > 1:
            resize = [a for o in job.outputs for a in ("--variant", "%s:%s" % (o.name, o.geom()))]
        elif job.spec:
            resize = ["-s", job.outputs[0].geom()]
        else:
            resize = ["-s", job.size]
        if job.watermark:
            resize += ["-f", "overlay=%s:southeast:%d:%g:%d%%" % (
                job.watermark, WATERMARK["margin"], WATERMARK["opacity"],
                WATERMARK["width_pct"])]
        formats = [a for e in ([fmt] if fmt else job.exts) for a in ("-F", e)]
        return [self.binary, "--files-from", job.listfile, "-0", "-o", out] + resize + \
            ["-j", str(job.jobs), "-q"] + formats + ["--quality", str(job.quality)]

    def invocation(self, job, rundir, out):
        return self.argv(job, out), None, base_env(), None


class Sharp(Peer):
    name = "sharp"

    def __init__(self, node_prefix):
        self.node = which("node", "nodejs")
        self.node_path = os.path.join(node_prefix, "node_modules")
        if not self.node:
            self.why = "node not found"
            return
        env = dict(os.environ, NODE_PATH=self.node_path)
        v = first_line([self.node, "-p",
                        "const v = require('sharp').versions; v.sharp + ' (libvips ' + v.vips +"
                        " ', mozjpeg, node ' + process.version + ')'"],
                       env=env)
        if not v:
            self.why = "sharp not installed under %s" % node_prefix
            return
        self.available, self.version = True, "sharp " + v

    def invocation(self, job, rundir, out):
        env = base_env({"NODE_PATH": self.node_path, "UV_THREADPOOL_SIZE": str(job.jobs)})
        return ([self.node, os.path.join(PEERS_DIR, "sharp_thumbs.js")] + job.script_args(out),
                None, env, None)


class Pillow(Peer):
    name = "pillow"
    cannot_write = ("avif",)

    def __init__(self):
        self.python = "/usr/bin/python3"
        v = first_line([self.python, "-c", "import PIL; print(PIL.__version__)"])
        if v:
            self.available, self.version = True, "Pillow %s (multiprocessing.Pool)" % v
        else:
            self.why = "/usr/bin/python3 with Pillow (python3-pil) not found"

    def invocation(self, job, rundir, out):
        return ([self.python, os.path.join(PEERS_DIR, "pillow_thumbs.py")] + job.script_args(out),
                None, base_env(), None)


class XargsPeer(Peer):
    """A one-image-at-a-time CLI fanned out with xargs -P N -n K."""

    def xargs(self, job):
        return ["xargs", "-0", "-P", str(job.jobs), "-n", str(job.xargs_n)]

    def find(self, names, version_args, pattern, fallback, missing, version_tool=None):
        """Looks the tool up: self.bin is the first of names there, and the
        version what pattern matches in the first line that version_tool
        (the tool itself unless given) prints with version_args, else
        fallback; missing says why when none is there."""
        self.bin = which(*names)
        if not self.bin:
            self.why = missing
            return
        self.available = True
        m = re.search(pattern, first_line([version_tool or self.bin] + version_args) or "")
        self.version = "%s (%s via xargs)" % (m.group(0) if m else fallback, self.name)


class Vipsthumbnail(XargsPeer):
    name = "vipsthumbnail"
    no_watermark = "has no way to lay a watermark"

    def __init__(self):
        self.find(("/usr/bin/vipsthumbnail", "vipsthumbnail"), ["--version"], r".+", "vips",
                  "vipsthumbnail not found (Debian: libvips-tools)", which("vips") or "vips")

    def argv(self, job, out, ext="jpg", opts=None):
        opts = opts if opts is not None else "[Q=%d]" % job.quality
        return self.xargs(job) + [self.bin, "-s", job.size,
                                  "-o", os.path.join(out, "%s." + ext + opts)]

    def invocation(self, job, rundir, out):
        if not job.spec:
            return self.argv(job, out), None, base_env(), job.nul_paths()
        # One vipsthumbnail per output size and format over each batch of
        # files, as a user scripts it: it takes one -s and one -o, so each
        # file is decoded once per output (each with shrink-on-load for its
        # own size).
        script = " && ".join(
            "%s -s %s -o %s \"$@\"" % (self.bin, shlex.quote(o.geom()), shlex.quote(
                o.path(out, "%s", "%s[Q=%d]" % (ext, job.quality))))
            for o in job.outputs for ext in job.exts)
        return self.xargs(job) + ["sh", "-c", script, "sh"], None, base_env(), job.nul_paths()


class Mogrify(XargsPeer):
    name = "mogrify"
    not_web = ("not set up for the web workload (three mogrify passes, each decoding every "
               "pixel)")

    def __init__(self):
        self.find(("/usr/bin/mogrify", "mogrify"), ["-version"], r"ImageMagick \S+ \S+",
                  "ImageMagick", "mogrify not found (Debian: imagemagick)")

    def invocation(self, job, rundir, out):
        return (self.xargs(job) + [self.bin, "-thumbnail", job.size, "-quality", str(job.quality),
                                   "-format", "jpg", "-path", out],
                None, base_env(), job.nul_paths())


class GmMogrify(XargsPeer):
    name = "gm mogrify"
    not_web = Mogrify.not_web

    def __init__(self):
        self.find(("/usr/bin/gm", "gm"), ["version"], r"GraphicsMagick \S+", "GraphicsMagick",
                  "gm not found (Debian: graphicsmagick)")

    def invocation(self, job, rundir, out):
        # gm appends the input path as given to -output-directory, so it is
        # run from the image folder with relative paths.
        return (self.xargs(job) + [self.bin, "mogrify", "-output-directory", out,
                                   "-create-directories", "-thumbnail", job.size,
                                   "-quality", str(job.quality), "-format", "jpg"],
                job.root, base_env(), job.nul_rels())

    def outputs(self, out):
        found = []
        for d, _, files in os.walk(out):
            found += [os.path.join(d, f) for f in files if f.lower().endswith(".jpg")]
        return found


class Imgp(Peer):
    name = "imgp"
    # imgp picks its inputs by extension and takes no others.
    reads = (".jpg", ".jpeg", ".png")
    not_web = "writes only JPEG and PNG"

    def __init__(self):
        self.bin = which("/usr/bin/imgp")
        if not self.bin:
            self.why = "imgp not found (Debian: imgp)"
            return
        self.available = True
        self.version = "imgp %s (Pillow, multiprocessing.Pool)" % (
            first_line(["/usr/bin/python3", "-c",
                        "import re,sys; print(re.search(r\"_VERSION_ = '([^']+)'\","
                        " open('/usr/bin/imgp').read()).group(1))"]) or "?")

    def prepare(self, job, rundir):
        # imgp writes NAME_IMGP.jpg beside each input and has no output
        # option: it gets a fresh folder of hard links (copies across
        # filesystems), made before the clock starts.
        out = os.path.join(rundir, "in")
        os.makedirs(out)
        for src in job.paths:
            dst = os.path.join(out, os.path.basename(src))
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
        return out

    def invocation(self, job, rundir, out):
        env = base_env({"PYTHONWARNINGS": "ignore", "IMGP": self.bin})
        return (["/usr/bin/python3", os.path.join(PEERS_DIR, "imgp_jobs.py"), str(job.jobs),
                 "-x", job.size, "-q", str(min(job.quality, 95)), "-c", "-m", out],
                None, env, None)

    def outputs(self, out):
        return [os.path.join(out, f) for f in os.listdir(out) if f.endswith("_IMGP.jpg")]


# --------------------------------------------------------------------------


def image_size(path):
    """Width and height of an image, None if it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Exception:
        pass
    if path.endswith(".avif"):
        # This Pillow may not read AVIF; Debian's vips does.
        r = subprocess.run(["vipsheader", "-f", "width", path], capture_output=True, text=True)
        r2 = subprocess.run(["vipsheader", "-f", "height", path], capture_output=True, text=True)
        if r.returncode == 0 and r2.returncode == 0:
            return int(r.stdout), int(r2.stdout)
    return None


def check_thumbs(peer, job, out):
    """Count the outputs and check each fits the box with one side touching it."""
    files = peer.outputs(out)
    bad = 0
    for f in files:
        size = image_size(f)
        if not size or not (size[0] <= job.w and size[1] <= job.h
                            and (size[0] == job.w or size[1] == job.h)):
            bad += 1
    return len(files), bad, files


def check_web(job, out):
    """check_web_ext over every format of the job: an input is done when it
    is done in each."""
    done, bad, files = None, 0, []
    for ext in job.exts:
        d, b, f = check_web_ext(job, out, ext)
        done = d if done is None else min(done, d)
        bad, files = bad + b, files + f
    return done, bad, files


def check_web_ext(job, out, ext):
    """Count the inputs whose outputs are all there, and those with an output
    more than a pixel off the size it should have (from the input's stored
    size: EXIF orientation is not looked at). An output may be missing when
    another of the same input has its size: imgbatch writes outputs that
    would come out the same once."""
    done = bad = 0
    files = []
    for src in job.paths:
        stem = os.path.splitext(os.path.basename(src))[0]
        src_size = image_size(src)
        want = {o.path(out, stem, ext): o.expected(*src_size) for o in job.outputs}
        have = {path: image_size(path) for path in want if os.path.exists(path)}
        files += have
        if any(not size or abs(size[0] - want[path][0]) > 1 or abs(size[1] - want[path][1]) > 1
               for path, size in have.items()):
            bad += 1
        if all(any(path in have and want[path] == dims for path in want)
               for dims in want.values()):
            done += 1
    return done, bad, files


def run_once(peer, job, workdir, tag):
    rundir = tempfile.mkdtemp(prefix="%s-%s-" % (tag, peer.name.replace(" ", "_")), dir=workdir)
    try:
        out = peer.prepare(job, rundir)
        argv, cwd, env, stdin = peer.invocation(job, rundir, out)
        m = run_measured(argv, cwd=cwd, env=env, stdin_bytes=stdin)
        if job.spec:
            m.count, m.bad, files = check_web(job, out)
        else:
            m.count, m.bad, files = check_thumbs(peer, job, out)
        m.files, m.bytes = len(files), sum(os.path.getsize(f) for f in files)
        m.argv = argv
        return m
    finally:
        shutil.rmtree(rundir, ignore_errors=True)


def round_order(peers, r):
    """A different order each round: rotate by about half the peers per round
    (so each peer's place moves a long way) and reverse every other round (so
    its neighbours change too). No peer always runs first, or always runs
    right after the same peer, whose page cache and heat it would inherit."""
    k = (r * (len(peers) // 2 + 1)) % len(peers)
    order = peers[k:] + peers[:k]
    return order[::-1] if r % 2 else order


def scan_images(root):
    rels, skipped = [], 0
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        for f in sorted(files):
            if f.startswith("."):
                continue
            rel = os.path.relpath(os.path.join(d, f), root)
            if f.lower().endswith(IMAGE_EXTS):
                rels.append(rel)
            else:
                skipped += 1
    return rels, skipped


def describe_images(job):
    from PIL import Image

    mps, nbytes, kinds = [], 0, {}
    for p in job.paths:
        with Image.open(p) as im:
            mps.append(im.size[0] * im.size[1] / 1e6)
            kinds[im.format] = kinds.get(im.format, 0) + 1
        nbytes += os.path.getsize(p)
    return mps, nbytes, kinds


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def psnr_pair(a, b):
    """PSNR in dB over R, G and B of two 8-bit images; None if sizes differ."""
    from PIL import Image

    with Image.open(a) as ia, Image.open(b) as ib:
        return psnr_images(ia.convert("RGB"), ib.convert("RGB"))


def png_size(path):
    from PIL import Image

    with Image.open(path) as im:
        return "%dx%d" % im.size


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def fidelity(imgbatch, vips, job, workdir):
    d = tempfile.mkdtemp(prefix="fidelity-", dir=workdir)
    try:
        a, b = os.path.join(d, "imgbatch"), os.path.join(d, "vips")
        os.makedirs(a)
        os.makedirs(b)
        r1 = subprocess.run(imgbatch.argv(job, a, fmt="png"), env=base_env(),
                            capture_output=True, text=True)
        r2 = subprocess.run(vips.argv(job, b, ext="png", opts=""), input=job.nul_paths(),
                            env=base_env(), capture_output=True)
        if r1.returncode or r2.returncode:
            return "fidelity: not measured (imgbatch exit %d, vipsthumbnail exit %d)" % (
                r1.returncode, r2.returncode)
        values, mismatched, missing = [], [], 0
        for rel in job.rels:
            stem = os.path.splitext(os.path.basename(rel))[0]
            pa, pb = os.path.join(a, stem + ".png"), os.path.join(b, stem + ".png")
            if not (os.path.exists(pa) and os.path.exists(pb)):
                missing += 1
                continue
            v = psnr_pair(pa, pb)
            if v is None:
                mismatched.append("%s: %s vs %s" % (stem, png_size(pa), png_size(pb)))
            else:
                values.append((v, stem))
        if not values:
            return "fidelity: no pair of thumbnails with the same size to compare"
        finite = [v for v, _ in values if v != math.inf]
        identical = len(values) - len(finite)
        worst = min(values)
        mean = statistics.mean(finite) if finite else math.inf
        line = ("fidelity: PSNR of imgbatch -F png vs vipsthumbnail png thumbnails, %d pairs: "
                "mean %.1f dB, min %.1f dB (%s)" % (len(values), mean, worst[0], worst[1]))
        if identical:
            line += ", %d identical (excluded from the mean)" % identical
        if mismatched:
            line += "; %d with different dimensions, not compared (imgbatch vs vips: %s%s)" % (
                len(mismatched), ", ".join(mismatched[:3]), ", ..." if len(mismatched) > 3 else "")
        if missing:
            line += "; %d missing" % missing
        return line
    finally:
        shutil.rmtree(d, ignore_errors=True)


def decoded_rgb(path, scratch):
    """The pixels of an output as an RGB Pillow image; AVIF (which this
    Pillow may not read) through Debian's vips to a PNG first."""
    from PIL import Image

    if path.endswith(".avif"):
        png = os.path.join(scratch, "avif.png")
        subprocess.run(["vips", "copy", path, png], check=True, capture_output=True)
        path = png
    with Image.open(path) as im:
        return im.convert("RGB")


def psnr_images(A, B):
    """PSNR in dB of two RGB images; None if their sizes differ."""
    from PIL import ImageChops

    if A.size != B.size:
        return None
    hist = ImageChops.difference(A, B).histogram()
    sq = sum(n * (i % 256) ** 2 for i, n in enumerate(hist))
    mse = sq / (A.size[0] * A.size[1] * 3)
    return math.inf if mse == 0 else 10 * math.log10(255 * 255 / mse)


def fidelity_sharp(imgbatch, sharp, job, workdir):
    """PSNR of imgbatch's decoded outputs against sharp's, output by output,
    and the bytes of both: one more untimed run of each, outputs kept."""
    d = tempfile.mkdtemp(prefix="fidelity-", dir=workdir)
    try:
        dirs = {}
        for p in (imgbatch, sharp):
            dirs[p.name] = p.prepare(job, os.path.join(d, p.name))
            argv, cwd, env, stdin = p.invocation(job, d, dirs[p.name])
            m = run_measured(argv, cwd=cwd, env=env, stdin_bytes=stdin)
            if m.rc:
                return "fidelity: not measured (%s exit %d)" % (p.name, m.rc)
        values, mismatched, nbytes = [], 0, {"imgbatch": 0, "sharp": 0}
        for f in sorted(os.listdir(dirs["sharp"])):
            a, b = os.path.join(dirs["imgbatch"], f), os.path.join(dirs["sharp"], f)
            if not os.path.exists(a):
                continue
            nbytes["imgbatch"] += os.path.getsize(a)
            nbytes["sharp"] += os.path.getsize(b)
            v = psnr_images(decoded_rgb(a, d), decoded_rgb(b, d))
            if v is None:
                mismatched += 1
            else:
                values.append((v, f))
        if not values:
            return "fidelity: no pair of outputs with the same size to compare"
        finite = [v for v, _ in values if v != math.inf]
        worst = min(values)
        line = ("fidelity: PSNR of imgbatch's outputs vs sharp's, decoded, %d pairs: mean %.1f dB, "
                "min %.1f dB (%s); bytes of those pairs: imgbatch %.2f MB, sharp %.2f MB, "
                "ratio %.3f" % (len(values), statistics.mean(finite) if finite else math.inf,
                                worst[0], worst[1], nbytes["imgbatch"] / 1e6,
                                nbytes["sharp"] / 1e6, nbytes["imgbatch"] / nbytes["sharp"]))
        if mismatched:
            line += "; %d pairs differ in size, not compared" % mismatched
        return line
    finally:
        shutil.rmtree(d, ignore_errors=True)


def mib(kib):
    return "%.0f MiB" % (kib / 1024.0) if kib >= 10240 else "%.1f MiB" % (kib / 1024.0)


def main():
    ap = argparse.ArgumentParser(
        prog="tests/bench/run",
        description="Benchmark imgbatch against vipsthumbnail, ImageMagick, GraphicsMagick, "
                    "sharp, Pillow and imgp on one folder of JPEG/PNG images.")
    ap.add_argument("image_dir")
    ap.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1,
                    help="workers for every peer (default: CPUs)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    ap.add_argument("--workload", choices=WORKLOADS, default="thumb",
                    help="thumb: one JPEG thumbnail per image (default); web: three WebPs "
                         "per image, 1600x1600>, 960x> and 480x>; web-webp, web-avif, "
                         "web-jpeg: one copy in 1600x1600>; watermark: that copy in JPEG "
                         "with a watermark; variants: web's three sizes in WebP and JPEG")
    ap.add_argument("--size", default="256x256",
                    help="thumbnail box WxH (default 256x256; thumb workload only)")
    ap.add_argument("--quality", type=int, default=None,
                    help="quality of every output (default: 80; web-avif 50, web-jpeg and "
                         "watermark 82)")
    ap.add_argument("--peers", help="comma-separated subset, e.g. imgbatch,sharp,vipsthumbnail")
    ap.add_argument("--imgbatch", default=os.environ.get("IMGBATCH_BIN"),
                    help="imgbatch binary (tests/bench/run builds a release one)")
    ap.add_argument("--node-prefix", default=os.environ.get(
        "IMGBATCH_BENCH_NODE", os.path.join(HERE, ".node")),
        help="npm --prefix where sharp is installed (default tests/bench/.node)")
    ap.add_argument("--xargs-n", type=int, default=0, metavar="K",
                    help="files per process for the xargs peers (default: enough for 4 "
                         "batches per worker; 1 = one process per image)")
    ap.add_argument("--no-fidelity", action="store_true", help="skip the PSNR line")
    ap.add_argument("--no-memory", action="store_true",
                    help="skip the extra polled imgbatch run for parent/worker RSS")
    args = ap.parse_args()

    m = re.fullmatch(r"(\d+)x(\d+)", args.size)
    if not m:
        ap.error("--size must be WxH, e.g. 256x256")
    args.box = (int(m.group(1)), int(m.group(2)))
    if args.jobs < 1 or args.rounds < 1:
        ap.error("--jobs and --rounds must be at least 1")
    root = os.path.abspath(args.image_dir)
    if not os.path.isdir(root):
        ap.error("%s is not a folder" % args.image_dir)

    rels, others = scan_images(root)
    if not rels:
        sys.exit("bench: no .jpg/.jpeg/.png/.webp files under %s" % root)
    stems = {}
    for r in rels:
        stems.setdefault(os.path.splitext(os.path.basename(r))[0], []).append(r)
    dup = [v for v in stems.values() if len(v) > 1]
    if dup:
        sys.exit("bench: the peers write flat output folders, so file names must be unique; "
                 "%s clash" % " and ".join(dup[0]))

    all_peers = [Imgbatch(args.imgbatch), Sharp(args.node_prefix), Pillow(), Vipsthumbnail(),
                 Mogrify(), GmMogrify(), Imgp()]
    if args.peers:
        want = [w.strip() for w in args.peers.split(",")]
        unknown = set(want) - {p.name for p in all_peers}
        if unknown:
            ap.error("unknown peer(s): %s" % ", ".join(sorted(unknown)))
        if "imgbatch" not in want:
            want.insert(0, "imgbatch")
        all_peers = [p for p in all_peers if p.name in want]
    for p in all_peers:
        reads = getattr(p, "reads", None)
        if p.available and reads and any(not r.lower().endswith(reads) for r in rels):
            p.available = False
            p.why = "reads only %s files, and this set has others" % "/".join(reads)
        spec = WORKLOAD_DEFS[args.workload]
        if p.available and spec and p.not_web:
            p.available = False
            p.why = "SKIPPED for the %s workload: %s" % (args.workload, p.not_web)
        if p.available and spec and set(spec.exts) & set(p.cannot_write):
            p.available = False
            p.why = "SKIPPED: cannot write %s here" % "/".join(set(spec.exts) & set(p.cannot_write))
        if p.available and spec and spec.watermark and p.no_watermark:
            p.available = False
            p.why = "SKIPPED for the watermark workload: " + p.no_watermark
    imgbatch = all_peers[0]
    if not imgbatch.available:
        sys.exit("bench: " + imgbatch.why)

    workdir = tempfile.mkdtemp(prefix="imgbatch-bench-")
    try:
        job = Job(args, root, rels, workdir)
        warm = job.subset(min(len(rels), 2 * args.jobs), workdir, args)
        mps, nbytes, kinds = describe_images(job)

        ncores = os.cpu_count()
        print("imgbatch benchmark: %s, %d worker%s per peer"
              % (job.describe(), job.jobs, "" if job.jobs == 1 else "s"))
        print("machine: %d cores (%d usable), %s, Linux %s" % (
            ncores, len(os.sched_getaffinity(0)), cpu_model(), platform.release()))
        print("images: %d files (%s), %.1f MP total, %.2f-%.2f MP each (mean %.2f), %.1f MB, in %s"
              % (len(rels), ", ".join("%s %d" % kv for kv in sorted(kinds.items())), sum(mps),
                 min(mps), max(mps), statistics.mean(mps), nbytes / 1e6, root))
        if others:
            print("        (%d other files in the folder are not part of the set)" % others)
        print("load average before: %s (1, 5, 15 min)" % loadavg())
        print("rounds: %d, peer order changes every round; xargs peers take %d files per process"
              % (args.rounds, job.xargs_n))

        # Untimed: pull every input into the page cache and load each peer's
        # binaries and libraries once. A peer that fails here is reported and
        # left out rather than timed doing nothing.
        for p in job.paths:
            with open(p, "rb") as f:
                while f.read(1 << 20):
                    pass
        peers = []
        for p in all_peers:
            if not p.available:
                print("skipped: %-13s %s" % (p.name, p.why))
                continue
            w = run_once(p, warm, workdir, "warmup")
            if w.rc != 0 or w.count != len(warm.rels):
                err = " ".join(w.stderr.split())[:300]
                print("skipped: %-13s warm-up failed (exit %d, outputs for %d of %d inputs): %s"
                      % (p.name, w.rc, w.count, len(warm.rels), err))
                continue
            peers.append(p)
        if imgbatch not in peers:
            sys.exit("bench: imgbatch itself failed the warm-up run")
        print("versions:")
        for p in peers:
            print("  %-13s %s" % (p.name, p.version))
        print(flush=True)

        results = {p.name: [] for p in peers}
        for r in range(args.rounds):
            order = round_order(peers, r)
            log("round %d/%d: %s" % (r + 1, args.rounds, ", ".join(p.name for p in order)))
            for p in order:
                m = run_once(p, job, workdir, "r%d" % (r + 1))
                results[p.name].append(m)
                note = ""
                if m.rc != 0 or m.count != len(rels):
                    note = "  FAILED: exit %d, outputs for %d of %d inputs: %s" % (
                        m.rc, m.count, len(rels), " ".join(m.stderr.split())[:200])
                elif m.bad:
                    note = "  (%d %s not have the expected size)" % (
                        m.bad, "inputs have outputs that do" if job.spec
                        else "outputs do")
                log("  %-13s %7.2f s  cpu %7.2f s  maxrss %s  %d files, %.1f MB%s"
                    % (p.name, m.wall, m.cpu, mib(m.maxrss_kib), m.files, m.bytes / 1e6, note))

        poll_line = None
        if not args.no_memory:
            log("memory: one more imgbatch run, polling /proc VmHWM every 5 ms")
            d = tempfile.mkdtemp(prefix="memory-", dir=workdir)
            rc, parent, children = run_polled(imgbatch.argv(job, os.path.join(d, "out")),
                                              env=base_env())
            shutil.rmtree(d, ignore_errors=True)
            if rc == 0 and children:
                poll_line = ("imgbatch peak RSS (VmHWM polled every 5 ms, extra untimed run): "
                             "parent %s, largest worker %s (%d worker processes seen)"
                             % (mib(parent), mib(max(children.values())), len(children)))
            else:
                poll_line = "imgbatch peak RSS by polling: not measured (exit %d)" % rc

        fid_line = None
        vips = next((p for p in peers if isinstance(p, Vipsthumbnail)), None)
        sharp = next((p for p in peers if isinstance(p, Sharp)), None)
        if not args.no_fidelity:
            if job.spec and sharp:
                log("fidelity: imgbatch against sharp, one more untimed run of each, comparing")
                fid_line = fidelity_sharp(imgbatch, sharp, job, workdir)
            elif job.spec:
                fid_line = "fidelity: not measured (sharp is not available)"
            elif vips:
                log("fidelity: imgbatch -F png and vipsthumbnail png, comparing")
                fid_line = fidelity(imgbatch, vips, job, workdir)
            else:
                fid_line = "fidelity: not measured (vipsthumbnail is not available)"

        def ok_runs(name):
            return [m for m in results[name] if m.rc == 0 and m.count == len(rels)]

        base_runs = ok_runs("imgbatch")
        base = statistics.median(m.wall for m in base_runs) if base_runs else None
        base_cpu = statistics.median(m.cpu for m in base_runs) if base_runs else None
        print("%-13s %9s %15s %9s %14s %8s %10s %10s" % (
            "peer", "median s", "(min-max)", "images/s", "imgbatch/peer", "CPU s", "CPU ratio",
            "peak RSS"))
        for p in peers:
            runs = ok_runs(p.name)
            if not runs:
                print("%-13s FAILED in every round: %s" % (
                    p.name, " ".join(results[p.name][0].stderr.split())[:200]))
                continue
            walls = [m.wall for m in runs]
            med = statistics.median(walls)
            ratio = "%.2f" % (base / med) if base else "-"
            partial = "" if len(runs) == args.rounds else \
                "  (%d of %d rounds failed)" % (args.rounds - len(runs), args.rounds)
            cpu = statistics.median(m.cpu for m in runs)
            print("%-13s %9.2f %15s %9.1f %14s %8.2f %10s %10s%s" % (
                p.name, med, "(%.2f-%.2f)" % (min(walls), max(walls)), len(rels) / med, ratio,
                cpu, "%.2f" % (base_cpu / cpu) if base_cpu and cpu else "-",
                mib(max(m.maxrss_kib for m in runs)), partial))
        print("imgbatch/peer: imgbatch's median wall time / the peer's; below 1 imgbatch is "
              "faster.")
        print("CPU s: user+sys of all the peer's processes (median); CPU ratio: imgbatch's / "
              "the peer's.")
        print("peak RSS: the largest single process of the peer's tree, max over rounds.")
        print("written (last good round): " + "; ".join(
            "%s %d files, %.1f MB" % (p.name, runs[-1].files, runs[-1].bytes / 1e6)
            for p in peers for runs in [ok_runs(p.name)] if runs))
        last = {p.name: ok_runs(p.name)[-1] for p in peers if ok_runs(p.name)}
        if "sharp" in last and "imgbatch" in last and last["sharp"].bytes:
            print("bytes imgbatch/sharp: %.3f (all outputs of the last good rounds)"
                  % (last["imgbatch"].bytes / last["sharp"].bytes))
        print("load average after: %s" % loadavg())
        if poll_line:
            print(poll_line)
        if fid_line:
            print(fid_line)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
