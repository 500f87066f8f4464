"""imgp with a chosen number of worker processes.

usage: imgp_jobs.py JOBS IMGP_ARGS...

imgp has no --jobs option: it makes multiprocessing.Pool() with
os.cpu_count() workers. This runs the installed /usr/bin/imgp unchanged,
with os.cpu_count() answering JOBS, so imgp gets the same worker count as
every other peer.
"""

import os
import runpy
import sys

jobs = int(sys.argv[1])
os.cpu_count = lambda: jobs
imgp = os.environ.get("IMGP", "/usr/bin/imgp")
sys.argv = [imgp] + sys.argv[2:]
runpy.run_path(imgp, run_name="__main__")
