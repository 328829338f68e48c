'use strict';
// Reads what the tests need from an ONNX file's ModelProto with a minimal protobuf wire-format decoder:
// onnxruntime-node does not expose a model's metadata_props, and no protobuf library is needed for these few
// fields (field numbers from onnx/onnx.proto).
const fs = require('fs');

// Each field of one message: [{field, wire, value}], value a Number (varint) or a Buffer (length-delimited).
function fields(buffer) {
  const out = [];
  let at = 0;
  const varint = () => {
    let result = 0;
    let scale = 1;
    for (;;) {
      if (at >= buffer.length) throw new Error('truncated varint');
      const byte = buffer[at++];
      result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return result;
      scale *= 128;
    }
  };
  while (at < buffer.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) {
      out.push({field, wire, value: varint()});
    } else if (wire === 2) {
      const length = varint();
      out.push({field, wire, value: buffer.subarray(at, at + length)});
      at += length;
    } else if (wire === 1 || wire === 5) {
      at += wire === 1 ? 8 : 4;  // fixed64 / fixed32: not read here
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  return out;
}

const text = (buffer) => buffer.toString('utf8');
const all = (list, number) => list.filter((f) => f.field === number).map((f) => f.value);
const first = (list, number) => all(list, number)[0];

// {irVersion, opset, producer, metadata: {key: value}, opTypes: Set, initializers: [{name, external: {location,
// offset, length} | null}]}
function readOnnxFile(path) {
  const model = fields(fs.readFileSync(path));
  // ModelProto: 1 ir_version, 2 producer_name, 3 producer_version, 7 graph, 8 opset_import, 14 metadata_props.
  const producer = [first(model, 2), first(model, 3)].filter((b) => b && b.length).map(text).join(' ');
  const summary = {irVersion: first(model, 1), producer, metadata: {}, opTypes: new Set(), initializers: []};
  for (const opset of all(model, 8)) {  // OperatorSetIdProto: 1 domain, 2 version
    const f = fields(opset);
    const domain = first(f, 1);
    if (!domain || domain.length === 0 || text(domain) === 'ai.onnx') summary.opset = first(f, 2);
  }
  for (const entry of all(model, 14)) {  // StringStringEntryProto: 1 key, 2 value
    const f = fields(entry);
    summary.metadata[text(first(f, 1))] = text(first(f, 2) || Buffer.alloc(0));
  }
  const graph = fields(first(model, 7));
  for (const node of all(graph, 1)) summary.opTypes.add(text(first(fields(node), 4)));  // NodeProto: 4 op_type
  for (const tensor of all(graph, 5)) {  // TensorProto: 8 name, 13 external_data, 14 data_location (1 = EXTERNAL)
    const f = fields(tensor);
    let external = null;
    if (first(f, 14) === 1) {
      external = {};
      for (const entry of all(f, 13)) {
        const e = fields(entry);
        external[text(first(e, 1))] = text(first(e, 2));
      }
    }
    summary.initializers.push({name: text(first(f, 8)), external});
  }
  return summary;
}

module.exports = {readOnnxFile};
