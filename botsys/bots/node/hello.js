// hello: the smallest useful bot — reads the envelope, returns a greeting (used by benchmarks).
//
// Payload: anything (ignored).
// Result: {"hello": "node", "jobId": ...}
const chunks = [];
process.stdin.on("data", (chunk) => chunks.push(chunk));
process.stdin.on("end", () => {
  const envelope = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  process.stdout.write(JSON.stringify({ result: { hello: "node", jobId: envelope.jobId } }) + "\n");
});
