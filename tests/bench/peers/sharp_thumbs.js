// sharp peer: the thumbnail job with JOBS images in flight.
//
// usage: node sharp_thumbs.js JOBS WIDTH HEIGHT QUALITY OUTDIR LISTFILE
//
// LISTFILE holds input paths separated by NUL; each output is OUTDIR/STEM.jpg.
// sharp.concurrency(1) gives each image one libvips thread and the runner
// sets UV_THREADPOOL_SIZE=JOBS, so JOBS images run at once on JOBS threads:
// the same "N single-threaded workers" shape as imgbatch -j N.
'use strict';
const fs = require('fs');
const path = require('path');
const sharp = require('sharp');

const [jobs, w, h, quality, outdir, listfile] = process.argv.slice(2);
const files = fs.readFileSync(listfile, 'utf8').split('\0').filter(Boolean);
sharp.concurrency(1);

let next = 0;
let failed = 0;
async function worker() {
  while (next < files.length) {
    const f = files[next++];
    const out = path.join(outdir, path.parse(f).name + '.jpg');
    try {
      await sharp(f)
        .resize(Number(w), Number(h), { fit: 'inside' })
        .jpeg({ quality: Number(quality) })
        .toFile(out);
    } catch (e) {
      failed++;
      console.error(`sharp: ${f}: ${e.message}`);
    }
  }
}

Promise.all(Array.from({ length: Number(jobs) }, worker)).then(() => {
  process.exitCode = failed ? 1 : 0;
});
