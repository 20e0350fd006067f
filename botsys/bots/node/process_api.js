// process_api: reshape a JSON document (an API response) — pick, rename, default, uppercase.
//
// Payload:
//   data       an object or an array of objects (required)
//   pick       ["id", "user.name", ...]  keep only these fields; dotted paths reach into objects
//              and the field is named by its last segment ("user.name" → "name") unless renamed
//   rename     {"old": "new"}            rename fields (after pick; keys are pick paths or names)
//   defaults   {"field": value}          set fields that are missing or null
//   uppercase  true | ["field", ...]     uppercase every string value, or only these fields
// Result: {"count": <items>, "items": [...]} for an array, {"count": 1, "item": {...}} for an object.
// Bad input exits 2 with the reason on stderr.

function fail(message) {
  process.stderr.write(message + "\n");
  process.exit(2);
}

function get(obj, path) {
  return path.split(".").reduce((v, key) => (v != null && typeof v === "object" ? v[key] : undefined), obj);
}

function upper(value) {
  if (typeof value === "string") return value.toUpperCase();
  if (Array.isArray(value)) return value.map(upper);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, upper(v)]));
  }
  return value;
}

function transform(item, spec) {
  if (!item || typeof item !== "object" || Array.isArray(item)) fail("data items must be objects");
  const rename = spec.rename || {};
  let out = {};
  if (Array.isArray(spec.pick)) {
    for (const path of spec.pick) {
      const value = get(item, path);
      if (value !== undefined) out[rename[path] || rename[path.split(".").pop()] || path.split(".").pop()] = value;
    }
  } else {
    for (const [key, value] of Object.entries(item)) out[rename[key] || key] = value;
  }
  for (const [key, value] of Object.entries(spec.defaults || {})) {
    if (out[key] === undefined || out[key] === null) out[key] = value;
  }
  if (spec.uppercase === true) out = upper(out);
  else if (Array.isArray(spec.uppercase)) for (const key of spec.uppercase) out[key] = upper(out[key]);
  return out;
}

function main(envelope) {
  const spec = envelope.payload;
  if (!spec || typeof spec !== "object" || spec.data === undefined) {
    fail('payload must be {"data": <object or array>, "pick"?, "rename"?, "defaults"?, "uppercase"?}');
  }
  const emit = (event) => process.stdout.write(JSON.stringify(event) + "\n");
  if (!Array.isArray(spec.data)) {
    emit({ result: { count: 1, item: transform(spec.data, spec) } });
    return;
  }
  const items = [];
  spec.data.forEach((item, i) => {
    items.push(transform(item, spec));
    if ((i + 1) % 1000 === 0) emit({ progress: Math.floor(((i + 1) * 100) / spec.data.length) });
  });
  emit({ progress: 100 });
  emit({ result: { count: items.length, items } });
}

const chunks = [];
process.stdin.on("data", (chunk) => chunks.push(chunk));
process.stdin.on("end", () => main(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
