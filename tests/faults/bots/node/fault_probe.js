// Fault-suite probe (see ../python/fault_probe.py for the log format).
const fs = require("fs");
const start = process.hrtime.bigint();
const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  const env = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const p = env.payload || {};
  const head = `node ${env.jobId} ${env.attempt}`;
  fs.appendFileSync(p.log, `S ${head} ${start} ${process.pid} ${process.ppid}\n`);
  setTimeout(() => {
    const end = process.hrtime.bigint();
    fs.appendFileSync(p.log, `E ${head} ${start} ${end} ${process.pid} ${process.ppid}\n`);
    process.stdout.write(JSON.stringify({ result: { pid: process.pid } }) + "\n");
  }, p.sleepMs || 0);
});
