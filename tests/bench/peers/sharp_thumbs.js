// sharp peer: resized copies of every image, JOBS images in flight.
//
// usage: node sharp_thumbs.js JOBS FORMAT QUALITY OUTDIR LISTFILE NAME=GEOM...
//
// LISTFILE holds input paths separated by NUL. FORMAT is jpg or webp. Each
// NAME=GEOM is one output, OUTDIR/STEM.FORMAT for an empty NAME, else
// OUTDIR/STEM-NAME.FORMAT. GEOM is WxH (fit inside), Wx (width only) or
// either with '>' (shrink only: withoutEnlargement).
// With one output an image is sharp(f).resize(...).toFormat(...); with
// several, each is a clone() of one sharp(f) instance, as sharp's docs
// show for many outputs from one input. Each clone is its own libvips
// pipeline: the file is decoded once per output, each with shrink-on-load
// for its own size (sharp has no way to share decoded pixels among clones).
// sharp.concurrency(1) gives each pipeline one libvips thread and the runner
// sets UV_THREADPOOL_SIZE=JOBS, so JOBS pipelines run at once on JOBS
// threads: the same "N single-threaded workers" shape as imgbatch -j N.
'use strict';
const fs = require('fs');
const path = require('path');
const sharp = require('sharp');

const [jobs, format, quality, outdir, listfile, ...specs] = process.argv.slice(2);
const files = fs.readFileSync(listfile, 'utf8').split('\0').filter(Boolean);
const outputs = specs.map((spec) => {
  const m = /^([^=]*)=(\d*)x(\d*)(>?)$/.exec(spec);
  if (!m) throw new Error(`bad output spec ${spec}`);
  return {
    suffix: m[1] ? `-${m[1]}` : '',
    width: m[2] ? Number(m[2]) : null,
    height: m[3] ? Number(m[3]) : null,
    options: { fit: 'inside', withoutEnlargement: m[4] === '>' },
  };
});
const encoder = format === 'jpg' ? 'jpeg' : format;
sharp.concurrency(1);

let next = 0;
let failed = 0;
async function worker() {
  while (next < files.length) {
    const f = files[next++];
    const stem = path.parse(f).name;
    const img = sharp(f);
    try {
      await Promise.all(outputs.map((o) =>
        (outputs.length > 1 ? img.clone() : img)
          .resize(o.width, o.height, o.options)
          .toFormat(encoder, { quality: Number(quality) })
          .toFile(path.join(outdir, `${stem}${o.suffix}.${format}`))));
    } catch (e) {
      failed++;
      console.error(`sharp: ${f}: ${e.message}`);
    }
  }
}

Promise.all(Array.from({ length: Number(jobs) }, worker)).then(() => {
  process.exitCode = failed ? 1 : 0;
});
