// sharp peer: resized copies of every image, JOBS images in flight.
//
// usage: node sharp_thumbs.js JOBS FORMATS QUALITY OUTDIR LISTFILE
//                             [--overlay FILE:MARGIN:OPACITY:PCT] NAME=GEOM...
//
// LISTFILE holds input paths separated by NUL. FORMATS is jpg, webp or avif,
// or several separated by commas: each output is written in each. Each
// NAME=GEOM is one output, OUTDIR/STEM.FORMAT for an empty NAME, else
// OUTDIR/STEM-NAME.FORMAT. GEOM is WxH (fit inside), Wx (width only) or
// either with '>' (shrink only: withoutEnlargement).
// With one output an image is sharp(f).resize(...).toFormat(...); with
// several, each is a clone() of one sharp(f) instance, as sharp's docs
// show for many outputs from one input. Each clone is its own libvips
// pipeline: the file is decoded once per output, each with shrink-on-load
// for its own size (sharp has no way to share decoded pixels among clones).
// --overlay lays FILE on each output as imgbatch's overlay op does: scaled
// to PCT% of the output's width, OPACITY applied to its alpha, MARGIN px
// in from the south-east corner. sharp's composite() has neither opacity
// nor a margin: the opacity is applied to FILE once, before any image, and
// the position computed from the output's size, which is read from the
// header as sharp users do (metadata()). Scaled watermarks are kept by
// width, as imgbatch keeps its last one.
// Encoders keep sharp's defaults (JPEG: optimised Huffman coding, WebP
// effort 4), except AVIF, whose default 4:4:4 chroma is set to 4:2:0, what
// libvips' AVIF saver does below quality 90, so the bytes compare.
// sharp.concurrency(1) gives each pipeline one libvips thread and the runner
// sets UV_THREADPOOL_SIZE=JOBS, so JOBS pipelines run at once on JOBS
// threads: the same "N single-threaded workers" shape as imgbatch -j N.
'use strict';
const fs = require('fs');
const path = require('path');
const sharp = require('sharp');

const [jobs, formatList, quality, outdir, listfile, ...rest] = process.argv.slice(2);
let overlaySpec = null;
if (rest[0] === '--overlay') {
  overlaySpec = rest[1];
  rest.splice(0, 2);
}
const files = fs.readFileSync(listfile, 'utf8').split('\0').filter(Boolean);
const outputs = rest.map((spec) => {
  const m = /^([^=]*)=(\d*)x(\d*)(>?)$/.exec(spec);
  if (!m) throw new Error(`bad output spec ${spec}`);
  return {
    suffix: m[1] ? `-${m[1]}` : '',
    width: m[2] ? Number(m[2]) : null,
    height: m[3] ? Number(m[3]) : null,
    options: { fit: 'inside', withoutEnlargement: m[4] === '>' },
  };
});
const formats = formatList.split(',');
const encoderOptions = {
  jpg: ['jpeg', {}],
  webp: ['webp', {}],
  avif: ['avif', { chromaSubsampling: '4:2:0' }],
};
sharp.concurrency(1);

// The overlay file with its opacity applied, decoded once; scaled copies by width.
async function loadOverlay(spec) {
  const [file, margin, opacity, pct] = spec.split(':');
  const { data, info } = await sharp(file).ensureAlpha()
    .linear([1, 1, 1, Number(opacity)], [0, 0, 0, 0]).raw()
    .toBuffer({ resolveWithObject: true });
  return { data, info, margin: Number(margin), pct: Number(pct), scaled: new Map() };
}

async function scaledOverlay(ov, width) {
  const w = Math.max(1, Math.round((width * ov.pct) / 100));
  if (!ov.scaled.has(w)) {
    const raw = { width: ov.info.width, height: ov.info.height, channels: 4 };
    ov.scaled.set(w, await sharp(ov.data, { raw }).resize(w).png({ compressionLevel: 0 })
      .toBuffer({ resolveWithObject: true }));
  }
  return ov.scaled.get(w);
}

// The size sharp's fit:inside gives, from the input's stored size.
function fitInside(meta, o) {
  let scale = Math.min(o.width ? o.width / meta.width : Infinity,
    o.height ? o.height / meta.height : Infinity);
  if (o.options.withoutEnlargement) scale = Math.min(scale, 1);
  return [Math.round(meta.width * scale), Math.round(meta.height * scale)];
}

async function withOverlay(pipeline, f, o, ov) {
  if (!ov) return pipeline;
  const [w, h] = fitInside(await sharp(f).metadata(), o);
  const mark = await scaledOverlay(ov, w);
  return pipeline.composite([{
    input: mark.data,
    left: Math.max(0, w - mark.info.width - ov.margin),
    top: Math.max(0, h - mark.info.height - ov.margin),
  }]);
}

let next = 0;
let failed = 0;
async function worker(ov) {
  while (next < files.length) {
    const f = files[next++];
    const stem = path.parse(f).name;
    const img = sharp(f);
    const several = outputs.length * formats.length > 1;
    try {
      await Promise.all(outputs.flatMap((o) => formats.map(async (format) => {
        const [encoder, options] = encoderOptions[format];
        const resized = (several ? img.clone() : img).resize(o.width, o.height, o.options);
        const p = await withOverlay(resized, f, o, ov);
        return p.toFormat(encoder, { quality: Number(quality), ...options })
          .toFile(path.join(outdir, `${stem}${o.suffix}.${format}`));
      })));
    } catch (e) {
      failed++;
      console.error(`sharp: ${f}: ${e.message}`);
    }
  }
}

(overlaySpec ? loadOverlay(overlaySpec) : Promise.resolve(null))
  .then((ov) => Promise.all(Array.from({ length: Number(jobs) }, () => worker(ov))))
  .then(() => {
    process.exitCode = failed ? 1 : 0;
  });
