// Containment probe (see ../python/escape.py): a setsid grandchild and a double-forked daemon.
const { execFileSync } = require("child_process");

const ESCAPE =
  'setsid sleep "$1" & (sleep "$1" &); ' +
  'until [ "$(pgrep -cxf "sleep $1")" -ge 2 ]; do sleep 0.01; done';

let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const payload = JSON.parse(input).payload;
  execFileSync("sh", ["-c", ESCAPE, "escape", payload.sleep], { stdio: "ignore" });
  console.log(JSON.stringify({ log: "daemons running" }));
  setTimeout(() => {
    console.log(JSON.stringify({ result: { daemons: 2 } }));
  }, (payload.holdS || 0) * 1000);
});
