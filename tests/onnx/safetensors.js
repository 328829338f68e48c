'use strict';
// Reads float32 tensors from a safetensors file (8-byte little-endian header length, JSON header, raw data).
const fs = require('fs');

function readSafetensors(path) {
  const bytes = fs.readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const tensors = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (info.dtype !== 'F32') throw new Error(`${path}: ${name} is ${info.dtype}, expected F32`);
    const [begin, end] = info.data_offsets;
    const data = bytes.subarray(8 + headerLength + begin, 8 + headerLength + end);
    // Copied so that the Float32Array is aligned whatever the header's length.
    tensors[name] = {dims: info.shape, data: new Float32Array(new Uint8Array(data).buffer)};
  }
  return tensors;
}

module.exports = {readSafetensors};
