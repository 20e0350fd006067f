// simulate: the seed's simulated Node.js workload.
//
// Payload (all optional): {"durationMs": 1000..3000 random by default, "failureRate": 0.05}.
//
// Fails (exit 1) with probability failureRate before doing anything, as the seed did; otherwise
// waits durationMs, reporting progress 25/50/75/100, and returns a result.

const emit = (event) => process.stdout.write(JSON.stringify(event) + "\n");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function number(payload, key, fallback, lo, hi) {
  const value = key in payload ? payload[key] : fallback;
  if (typeof value !== "number" || !(value >= lo && value <= hi)) {
    process.stderr.write(`payload.${key} must be a number between ${lo} and ${hi}\n`);
    process.exit(2);
  }
  return value;
}

async function main(envelope) {
  const payload = envelope.payload && typeof envelope.payload === "object" ? envelope.payload : {};
  const durationMs = number(payload, "durationMs", 1000 + Math.random() * 2000, 0, 3600000);
  const failureRate = number(payload, "failureRate", 0.05, 0, 1);
  const started = process.hrtime.bigint();
  emit({ log: `node simulate: ${Math.round(durationMs)} ms, failure rate ${failureRate}` });
  if (Math.random() < failureRate) {
    process.stderr.write("Simulated node bot execution error\n");
    process.exit(1);
  }
  for (const percent of [25, 50, 75, 100]) {
    await sleep(durationMs / 4);
    emit({ progress: percent });
  }
  emit({
    result: {
      botType: envelope.botType || "node",
      bot: "simulate",
      processed: true,
      language: "Node.js",
      version: process.versions.node,
      input: payload,
      attempt: envelope.attempt,
      executionTimeMs: Number(process.hrtime.bigint() - started) / 1e6,
      processedAt: new Date().toISOString(),
    },
  });
}

const chunks = [];
process.stdin.on("data", (chunk) => chunks.push(chunk));
process.stdin.on("end", () => main(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
