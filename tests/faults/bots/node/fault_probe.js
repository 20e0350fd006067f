// Fault-suite probe (see ../python/fault_probe.py for the log format).
const fs = require("fs");
const start = process.hrtime.bigint();
// The serve replica that started this bot: the parent, or botsys-launch's parent.
function serverPid() {
  try {
    const comm = fs.readFileSync(`/proc/${process.ppid}/comm`, "utf8");
    if (comm.startsWith("botsys-launch")) {
      const stat = fs.readFileSync(`/proc/${process.ppid}/stat`, "utf8");
      return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    }
  } catch (e) {}
  return process.ppid;
}
const server = serverPid();
const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  const env = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const p = env.payload || {};
  const head = `node ${env.jobId} ${env.attempt}`;
  fs.appendFileSync(p.log, `S ${head} ${start} ${process.pid} ${server}\n`);
  setTimeout(() => {
    const end = process.hrtime.bigint();
    fs.appendFileSync(p.log, `E ${head} ${start} ${end} ${process.pid} ${server}\n`);
    process.stdout.write(JSON.stringify({ result: { pid: process.pid } }) + "\n");
  }, p.sleepMs || 0);
});
