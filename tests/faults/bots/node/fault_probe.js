// Fault-suite probe (see ../python/fault_probe.py for the log format).
const fs = require("fs");
const start = process.hrtime.bigint();
// The serve replica that started this bot: the first ancestor that is not botsys-launch. Pids
// are the machine's (/proc/self), not the PID namespace's (process.pid is 2 there).
const ppidOf = (pid) => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1];
};
function serverPid() {
  let pid = ppidOf("self");
  while (fs.readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("botsys-launch")) pid = ppidOf(pid);
  return Number(pid);
}
const pid = Number(fs.readlinkSync("/proc/self"));
const server = serverPid();
const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  const env = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const p = env.payload || {};
  const head = `node ${env.jobId} ${env.attempt}`;
  fs.appendFileSync(p.log, `S ${head} ${start} ${pid} ${server}\n`);
  setTimeout(() => {
    const end = process.hrtime.bigint();
    fs.appendFileSync(p.log, `E ${head} ${start} ${end} ${pid} ${server}\n`);
    process.stdout.write(JSON.stringify({ result: { pid } }) + "\n");
  }, p.sleepMs || 0);
});
