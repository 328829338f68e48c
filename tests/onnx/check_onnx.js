'use strict';
// Runs vit's ONNX exports in ONNX Runtime and compares their outputs with vit's own (and an independent
// reference's, where the case has one).
//   node check_onnx.js DIR          every case of DIR/cases.json (written by vit_models_tests "[onnx-files]")
//   node check_onnx.js --describe FILE
//                                   prints FILE's interface, metadata and output on a zero batch as JSON (CLI tests)
// Installed by third_party/install-deps.sh (npm ci in this folder); exits 1 on any failure.
const fs = require('fs');
const path = require('path');
const {readOnnxFile} = require('./onnx_file');
const {readSafetensors} = require('./safetensors');

let ort;
try {
  ort = require('onnxruntime-node');
} catch (e) {
  console.error(`onnxruntime-node is not installed in ${__dirname} (third_party/install-deps.sh installs it): ${e.message}`);
  process.exit(1);
}

const kTolerance = 1e-4;  // on logits of several units: the same function, computed in another order
const kLevels = ['disabled', 'all'];  // graph optimisations off, and every fusion ONNX Runtime has

async function open(file, level) {
  return ort.InferenceSession.create(file, {graphOptimizationLevel: level, intraOpNumThreads: 1, interOpNumThreads: 1});
}

// Images (N, C, H, W) rows [begin, end) as a tensor.
function rows(tensor, begin, end) {
  const size = tensor.dims.slice(1).reduce((a, b) => a * b, 1);
  return new ort.Tensor('float32', tensor.data.slice(begin * size, end * size), [end - begin, ...tensor.dims.slice(1)]);
}

function maxAbsDiff(got, expected, begin, end) {
  const size = expected.dims.slice(1).reduce((a, b) => a * b, 1);
  if (got.data.length !== (end - begin) * size) return Infinity;
  let worst = 0;
  for (let i = 0; i < got.data.length; ++i) {
    const d = Math.abs(got.data[i] - expected.data[begin * size + i]);
    if (Number.isNaN(d)) return Infinity;  // a NaN anywhere is the worst difference
    worst = Math.max(worst, d);
  }
  return worst;
}

async function checkCase(dir, c) {
  const problems = [];
  const file = path.join(dir, c.onnx);
  const tensors = readSafetensors(path.join(dir, c.tensors));
  const summary = readOnnxFile(file);
  const irVersion = c.opset <= 14 ? 7 : 8;  // the IR of the ONNX release that brought the opset
  if (summary.irVersion !== irVersion) problems.push(`ir_version ${summary.irVersion}, expected ${irVersion}`);
  if (summary.opset !== c.opset) problems.push(`opset ${summary.opset}, expected ${c.opset}`);
  if (JSON.stringify(JSON.parse(summary.metadata.label_names)) !== JSON.stringify(c.label_names))
    problems.push(`metadata label_names ${summary.metadata.label_names}`);
  if (!JSON.parse(summary.metadata['vit.json']).config) problems.push('metadata vit.json has no config');
  const external = summary.initializers.filter((t) => t.external);
  if (c.external_data !== external.length > 0) problems.push(`${external.length} tensors in external data`);
  for (const t of external)
    if (!fs.existsSync(path.join(dir, t.external.location))) problems.push(`missing data file ${t.external.location}`);

  let worst = 0;
  let againstReference = false;
  const compare = (what, got, expected, begin, end) => {
    const diff = maxAbsDiff(got, expected, begin, end);
    worst = Math.max(worst, diff);
    if (!(diff <= kTolerance)) problems.push(`${what}: max |difference| ${diff}`);
  };
  const images = tensors.images;
  const n = images.dims[0];
  for (const level of kLevels) {
    const session = await open(file, level);
    const output = session.outputNames[0];
    if (session.inputNames.join() !== 'images') problems.push(`inputs ${session.inputNames}`);
    if (!['logits', 'features'].includes(output)) problems.push(`output ${output}`);
    const batchDim = session.inputMetadata[0].shape[0];
    if (batchDim !== (c.dynamic_batch ? 'batch' : n)) problems.push(`batch dimension ${batchDim}`);
    compare(`${level}, batch ${n}`, (await session.run({images: rows(images, 0, n)}))[output], tensors.logits, 0, n);
    if (c.dynamic_batch) {
      compare(`${level}, batch 1`, (await session.run({images: rows(images, n - 1, n)}))[output], tensors.logits, n - 1, n);
      if (tensors.reference_images) {  // the independent implementation's logits, on its own images
        const m = tensors.reference_images.dims[0];
        const got = (await session.run({images: rows(tensors.reference_images, 0, m)}))[output];
        compare(`${level}, reference`, got, tensors.reference_logits, 0, m);
        againstReference = true;
      }
    }
    await session.release();
  }
  return {problems, worst, againstReference};
}

async function checkAll(dir) {
  const cases = JSON.parse(fs.readFileSync(path.join(dir, 'cases.json'), 'utf8'));
  if (cases.length === 0) throw new Error(`${dir}/cases.json lists no case`);
  console.log(`ONNX Runtime ${ort.env.versions.node} (node ${process.version}), ${cases.length} files`);
  let failed = 0;
  let worst = 0;
  let references = 0;
  for (const c of cases) {
    let result;
    try {
      result = await checkCase(dir, c);
    } catch (e) {  // a file ONNX Runtime or the reader refuses fails its case, not the whole run
      result = {problems: [String(e.message || e)], worst: Infinity, againstReference: false};
    }
    const {problems, worst: w} = result;
    worst = Math.max(worst, w);
    if (result.againstReference) ++references;
    console.log(`${problems.length ? 'FAIL' : 'ok  '} ${c.name}  max |difference| ${w.toExponential(2)}` +
                (problems.length ? `\n       ${problems.join('\n       ')}` : ''));
    if (problems.length) ++failed;
  }
  console.log(`${cases.length - failed} passed, ${failed} failed; ${references} also against the Python reference; ` +
              `largest difference ${worst.toExponential(2)} (tolerance ${kTolerance})`);
  return failed === 0;
}

async function describe(file) {
  const summary = readOnnxFile(file);
  const session = await open(file, 'all');
  const input = session.inputMetadata[0];
  const dims = input.shape.map((d) => (typeof d === 'number' ? d : 2));  // a symbolic batch: run on 2
  const zeros = new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
  const output = (await session.run({images: zeros}))[session.outputNames[0]];
  console.log(JSON.stringify({
    inputs: session.inputNames, input_shape: input.shape, outputs: session.outputNames,
    output_shape: session.outputMetadata[0].shape, ran: {input: dims, output: output.dims,
    finite: output.data.every(Number.isFinite)}, ir_version: summary.irVersion, opset: summary.opset,
    producer: summary.producer, op_types: [...summary.opTypes].sort(), metadata: summary.metadata,
    external_initializers: summary.initializers.filter((t) => t.external).length,
  }));
  await session.release();
  return true;
}

const args = process.argv.slice(2);
const run = args[0] === '--describe' && args.length === 2 ? describe(args[1]) : args.length === 1 ? checkAll(args[0]) : null;
if (!run) {
  console.error('usage: node check_onnx.js DIR | --describe FILE');
  process.exit(2);
}
run.then((ok) => process.exit(ok ? 0 : 1), (e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
