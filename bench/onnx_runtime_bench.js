'use strict';
// Inference throughput of an ONNX file in ONNX Runtime (npm's onnxruntime-node, installed in tests/onnx by
// third_party/install-deps.sh), measured as `vit bench` measures its own: warm-up runs, then timed windows of about
// WINDOW_SECONDS each, their median in images per second. Random input; graph optimisations at "all".
// usage: node onnx_runtime_bench.js MODEL.onnx --threads N --batch-size B [--windows 5] [--window-seconds 2]
//        prints JSON {images_per_s, windows_images_per_s, steps_per_window, onnxruntime}
const path = require('path');
const ort = require(path.join(__dirname, '..', 'tests', 'onnx', 'node_modules', 'onnxruntime-node'));

async function main() {
  const [file, ...rest] = process.argv.slice(2);
  const option = (name, fallback) => {
    const i = rest.indexOf(name);
    return i >= 0 ? Number(rest[i + 1]) : fallback;
  };
  const threads = option('--threads', 1);
  const batch = option('--batch-size', 64);
  const windows = option('--windows', 5);
  const windowSeconds = option('--window-seconds', 2);
  const session = await ort.InferenceSession.create(file, {graphOptimizationLevel: 'all', intraOpNumThreads: threads,
                                                           interOpNumThreads: 1, executionMode: 'sequential'});
  const dims = session.inputMetadata[0].shape.map((d) => (typeof d === 'number' ? d : batch));
  const data = Float32Array.from({length: dims.reduce((a, b) => a * b, 1)}, () => Math.random() * 2 - 1);
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data, dims)};
  const step = () => session.run(feeds);
  // Warm-up; the last one sizes the windows.
  let seconds = 0;
  for (let i = 0; i < 3; ++i) {
    const start = process.hrtime.bigint();
    await step();
    seconds = Number(process.hrtime.bigint() - start) / 1e9;
  }
  const steps = Math.max(1, Math.round(windowSeconds / seconds));
  const rates = [];
  for (let w = 0; w < windows; ++w) {
    const start = process.hrtime.bigint();
    for (let s = 0; s < steps; ++s) await step();
    rates.push((steps * dims[0]) / (Number(process.hrtime.bigint() - start) / 1e9));
  }
  const sorted = [...rates].sort((a, b) => a - b);
  console.log(JSON.stringify({images_per_s: sorted[Math.floor(sorted.length / 2)], windows_images_per_s: rates,
                              steps_per_window: steps, onnxruntime: ort.env.versions.node}));
  await session.release();
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
