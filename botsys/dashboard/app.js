// botsys queue dashboard: plain JS, no build step. Everything comes from the public API (through
// common.js, with the key the user typed), so the page can do exactly what that key may do.
"use strict";

// STATES comes from states.js, which the server generates from its enums (botsys/states.py).
const TERMINAL = STATES.terminal;
const RETRYABLE = STATES.retryable; // a cancelled job's payload is freed at cancel
const TICK_MS = 1000; // detail and log tail; the overview and the list refresh every 2 ticks
const PAGE_SIZE = 25;

const ui = {
  filters: { botType: "", state: "", q: "" },
  cursor: null, // nextCursor of the last page shown
  pages: 0, // pages shown: only the first page is refreshed live
  jobs: [],
  detailId: null,
  detail: null,
  forceDetail: false,
  detailSig: "",
  tick: 0,
  busy: {},
  endpointsDeniedTo: undefined, // the key GET /endpoints refused (403)
};

// -- page helpers ------------------------------------------------------------------------

function badge(state) {
  return el("span", { class: "badge s-" + state, dataset: { state }, text: state.replace("_", " ") });
}

function progressBar(pct, state) {
  const p = Math.max(0, Math.min(100, Number(pct) || 0));
  const fill = el("span");
  fill.style.width = p + "%"; // CSSOM, not a style attribute: the CSP forbids inline styles
  return el(
    "div",
    { class: "bar s-" + (state || ""), role: "progressbar", "aria-valuenow": p, title: p + "%" },
    fill,
  );
}

function ago(iso) {
  if (!iso) return "–";
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return Math.max(s, 0) + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return new Date(iso).toLocaleString();
}

function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
  return Math.floor(ms / 60000) + " min " + Math.round((ms % 60000) / 1000) + " s";
}

function pretty(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

// -- overview ----------------------------------------------------------------------------

const COUNT_COLUMNS = { waiting: "queued", delayed: "delayed" }; // /stats count → its state
const DONE_COLUMNS = STATES.terminal;
const stateLabel = (state) => state.replace("_", " "); // timed_out → timed out

async function refreshStats() {
  const stats = await api("GET", "/stats");
  renderQueues(stats.botTypes);
  for (const [k, v] of Object.entries(stats.webhooks)) {
    const b = document.querySelector(`#webhooks [data-key="${k}"] b`);
    if (b) b.textContent = v;
  }
  $("#stats-age").textContent = "updated " + new Date().toLocaleTimeString();
  fillTypeFilter(Object.keys(stats.botTypes));
}

// A count that lists its jobs when clicked.
function countLink(type, state, text, extra) {
  return el("a", {
    href: "#",
    class: "count " + (extra || ""),
    title: `show ${state} ${type} jobs`,
    onclick: (ev) => {
      ev.preventDefault();
      setFilters({ botType: type, state, q: "" });
    },
    text,
  });
}

function queueRow(type) {
  const limit = el("input", {
    type: "number",
    min: 0,
    max: 100000,
    class: "limit-input",
    "aria-label": type + " limit",
  });
  const setLimit = el("button", { type: "button", class: "small", text: "Set" });
  const pause = el("button", { type: "button", class: "small ghost pause" });
  const submit = () => {
    const n = Number(limit.value);
    if (!Number.isInteger(n) || n < 0) return toast("the limit must be a whole number ≥ 0", "error");
    act(`${type}: limit ${n}`, () => api("PATCH", "/queues/" + enc(type), { limit: n })).then(
      () => delete limit.dataset.dirty,
    );
  };
  setLimit.addEventListener("click", submit);
  limit.addEventListener("input", () => (limit.dataset.dirty = "1"));
  limit.addEventListener("keydown", (ev) => ev.key === "Enter" && submit());
  pause.addEventListener("click", () => {
    const paused = pause.dataset.paused !== "1";
    act(`${type}: ${paused ? "paused" : "resumed"}`, () =>
      api("PATCH", "/queues/" + enc(type), { paused }),
    );
  });
  const running = el("td", { class: "running", dataset: { key: "running" } });
  return el(
    "tr",
    { dataset: { type } },
    el("th", { scope: "row" }, el("span", { class: "type-name", text: type }), " "),
    el("td", { class: "num", dataset: { key: "waiting" } }),
    el("td", { class: "num", dataset: { key: "delayed" } }),
    running,
    ...DONE_COLUMNS.map((k) => el("td", { class: "num", dataset: { key: k } })),
    el("td", { class: "controls" }, limit, setLimit, pause),
  );
}

function renderQueues(types) {
  const body = $("#queues tbody");
  for (const [type, s] of Object.entries(types)) {
    let row = body.querySelector(`tr[data-type="${CSS.escape(type)}"]`);
    if (!row) body.append((row = queueRow(type)));
    const cell = (k) => row.querySelector(`td[data-key="${k}"]`);
    for (const [k, state] of Object.entries(COUNT_COLUMNS)) cell(k).replaceChildren(countLink(type, state, s[k]));
    for (const k of DONE_COLUMNS) {
      const alarming = s[k] && k !== "succeeded" ? "warn" : "";
      cell(k).replaceChildren(countLink(type, k, s[k], alarming));
    }
    const pct = s.limit ? (100 * s.running) / s.limit : s.running ? 100 : 0;
    cell("running").replaceChildren(
      countLink(type, "running", `${s.running} / ${s.limit}`),
      progressBar(pct, "running"),
    );
    const name = row.querySelector("th");
    name.querySelector(".badge")?.remove();
    if (s.paused) name.append(badge("paused"));
    const limit = row.querySelector(".limit-input");
    if (document.activeElement !== limit && !limit.dataset.dirty) limit.value = s.limit;
    const pause = row.querySelector(".pause");
    pause.dataset.paused = s.paused ? "1" : "0";
    pause.textContent = s.paused ? "Resume" : "Pause";
  }
}

// The parts of the page that list states, built from STATES once at start.
function fillStateLists() {
  const limitHead = $("#limit-head");
  for (const s of DONE_COLUMNS) {
    const text = stateLabel(s);
    limitHead.before(el("th", { class: "num", text: text[0].toUpperCase() + text.slice(1) }));
  }
  $("#f-state").append(...STATES.job.map((s) => el("option", { value: s, text: stateLabel(s) })));
  $("#dlv-state").append(...STATES.delivery.map((s) => el("option", { value: s, text: s })));
}

function fillTypeFilter(types) {
  const select = $("#f-type");
  if (select.options.length > 1) return;
  for (const t of types) select.append(el("option", { value: t, text: t }));
  select.value = ui.filters.botType;
}

// -- job list ----------------------------------------------------------------------------

function setFilters(f) {
  ui.filters = { ...ui.filters, ...f };
  $("#f-type").value = ui.filters.botType;
  $("#f-state").value = ui.filters.state;
  $("#f-q").value = ui.filters.q;
  loadJobs(false);
  $("#jobs-title").scrollIntoView({ behavior: "smooth", block: "start" });
}

function jobsPath(cursor) {
  const p = new URLSearchParams({ limit: PAGE_SIZE });
  for (const [k, v] of Object.entries(ui.filters)) if (v) p.set(k, v);
  if (cursor) p.set("cursor", cursor);
  return "/jobs?" + p;
}

// append=false reloads the first page (and is what the live refresh does).
async function loadJobs(append) {
  const filters = JSON.stringify(ui.filters);
  const page = await api("GET", jobsPath(append ? ui.cursor : null)).catch((err) => {
    if (err.status !== 401 && err.status !== 403) toast("jobs: " + err.message, "error");
    return null;
  });
  if (!page || filters !== JSON.stringify(ui.filters)) return; // filters changed meanwhile
  ui.jobs = append ? ui.jobs.concat(page.jobs) : page.jobs;
  ui.pages = append ? ui.pages + 1 : 1;
  ui.cursor = page.nextCursor;
  renderJobs();
}

function renderJobs() {
  const rows = ui.jobs.map((j) =>
    el(
      "tr",
      {
        class: j.jobId === ui.detailId ? "selected" : "",
        dataset: { jobId: j.jobId },
        tabindex: 0,
        onclick: () => openJob(j.jobId),
        onkeydown: (ev) => ev.key === "Enter" && openJob(j.jobId),
      },
      el("td", { class: "mono id", title: j.jobId, text: j.jobId }),
      el("td", {}, el("span", { class: "type-name", text: j.botType }), " ", j.bot),
      el("td", {}, badge(j.state)),
      el("td", {}, progressBar(j.progress, j.state)),
      el("td", { title: j.createdAt || "", dataset: { at: j.createdAt || "" }, text: ago(j.createdAt) }),
      el("td", { class: "num", text: duration(j.durationMs) }),
      el("td", { class: "num", text: `${j.attempt}/${j.maxAttempts}` }),
    ),
  );
  $("#job-list tbody").replaceChildren(...rows);
  $("#jobs-empty").hidden = ui.jobs.length > 0;
  $("#more").hidden = !ui.cursor;
}

function setupFilters() {
  let timer = null;
  const apply = () => {
    ui.filters = { botType: $("#f-type").value, state: $("#f-state").value, q: $("#f-q").value.trim() };
    loadJobs(false);
  };
  $("#filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    apply();
  });
  $("#f-type").addEventListener("change", apply);
  $("#f-state").addEventListener("change", apply);
  $("#f-q").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(apply, 300);
  });
  $("#more").addEventListener("click", () => loadJobs(true));
  $("#dlv-state").addEventListener("change", loadDeliveries);
  $("#dlv-filters").addEventListener("submit", (ev) => ev.preventDefault());
}

// -- deliveries (jobs' webhooks and ad-hoc POST /deliver ones) ---------------------------

const DELIVERY_PAGE = 25;

async function loadDeliveries() {
  const state = $("#dlv-state").value;
  const p = new URLSearchParams({ limit: DELIVERY_PAGE });
  if (state) p.set("state", state);
  const page = await api("GET", "/deliveries?" + p).catch((err) => {
    if (err.status !== 401 && err.status !== 403) toast("deliveries: " + err.message, "error");
    return null;
  });
  if (!page || state !== $("#dlv-state").value) return; // the filter changed meanwhile
  renderDeliveries(page.deliveries);
}

function renderDeliveries(list) {
  const rows = list.map((d) => {
    const redeliver = () =>
      act("redelivery queued", () => api("POST", "/deliveries/" + enc(d.deliveryId) + "/redeliver"));
    // a job's webhook opens its job; an ad-hoc delivery names its event type
    const source = d.jobId
      ? el("a", { href: "#", class: "mono", text: d.jobId, onclick: (ev) => (ev.preventDefault(), openJob(d.jobId)) })
      : el("span", { class: "muted", text: "ad hoc" + (d.eventType ? " · " + d.eventType : "") });
    return el(
      "tr",
      { dataset: { deliveryId: d.deliveryId } },
      el("td", { class: "mono id", title: d.deliveryId, text: d.deliveryId }),
      el("td", {}, source),
      el("td", { class: "mono url", title: d.url, text: d.url }),
      el("td", {}, badge(d.state === "dead" ? "failed" : d.state)),
      el("td", { title: d.createdAt || "", dataset: { at: d.createdAt || "" }, text: ago(d.createdAt) }),
      el("td", { class: "num", text: `${d.attempts}/${d.maxAttempts}` }),
      el("td", { class: "num status", text: d.lastStatus ?? "–" }),
      el(
        "td",
        {},
        d.state === "pending"
          ? null
          : el("button", { type: "button", class: "small redeliver", text: "Redeliver", onclick: redeliver }),
      ),
    );
  });
  $("#delivery-list tbody").replaceChildren(...rows);
  $("#deliveries-empty").hidden = list.length > 0;
}

// -- endpoints (admin): subscriptions, disabled or not, the cluster's circuit -------------

async function loadEndpoints() {
  const key = sessionStorage.getItem(KEY_STORE);
  if (ui.endpointsDeniedTo === key) return; // a user key: not asked again until it changes
  let page;
  try {
    page = await api("GET", "/endpoints", undefined, undefined, { quietForbidden: true });
  } catch (err) {
    const denied = err.status === 401 || err.status === 403;
    if (err.status === 403) ui.endpointsDeniedTo = key;
    if (!denied) toast("endpoints: " + err.message, "error");
    $("#endpoints-denied").hidden = !denied;
    return;
  }
  ui.endpointsDeniedTo = undefined;
  $("#endpoints-denied").hidden = true;
  renderEndpoints(page.endpoints);
}

function renderEndpoints(list) {
  const rows = list.map((e) => {
    const toggle = () =>
      act(e.disabled ? "endpoint enabled" : "endpoint disabled", () =>
        api("PATCH", "/endpoints/" + enc(e.endpointId), { disabled: !e.disabled }),
      );
    const state = e.disabled
      ? el("span", { class: "badge s-disabled", title: e.disabledReason || "", text: "disabled" })
      : badge("active");
    return el(
      "tr",
      { dataset: { endpointId: e.endpointId } },
      el("td", { class: "mono id", title: e.description || e.endpointId, text: e.endpointId }),
      el("td", { class: "mono url", title: e.url, text: e.url }),
      el("td", { class: "events", text: e.eventTypes.join(", ") }),
      el(
        "td",
        { class: "state" },
        state,
        e.disabledAt ? el("span", { class: "muted small", text: " " + ago(e.disabledAt) }) : null,
      ),
      el("td", { class: "breaker" }, e.breaker ? badge(e.breaker) : el("span", { class: "muted", text: "–" })),
      el(
        "td",
        {},
        el("button", { type: "button", class: "small toggle", text: e.disabled ? "Enable" : "Disable", onclick: toggle }),
      ),
    );
  });
  $("#endpoint-list tbody").replaceChildren(...rows);
  $("#endpoints-empty").hidden = list.length > 0;
}

// -- job detail --------------------------------------------------------------------------

function openJob(id) {
  ui.detailId = id;
  ui.detail = null;
  ui.detailSig = "";
  if (location.hash !== "#job=" + enc(id)) history.replaceState(null, "", "#job=" + enc(id));
  $("#d-title").textContent = "Job";
  $("#d-body").replaceChildren(el("p", { class: "muted", text: "loading " + id + "…" }));
  $("#detail").hidden = false;
  document.body.classList.add("with-detail");
  renderJobs();
  refreshDetail(true);
}

function closeJob() {
  ui.detailId = null;
  $("#detail").hidden = true;
  document.body.classList.remove("with-detail");
  history.replaceState(null, "", location.pathname + location.search);
  renderJobs();
}

async function refreshDetail(force) {
  const id = ui.detailId;
  if (!id) return;
  const old = ui.detail;
  // a finished job whose deliveries are settled does not change: stop polling it
  force = force || ui.forceDetail;
  ui.forceDetail = false;
  const settled =
    old && TERMINAL.includes(old.job.state) && !old.deliveries.some((d) => d.state === "pending");
  if (settled && !force) return;
  try {
    const [job, logs, list] = await Promise.all([
      api("GET", "/job/" + enc(id)),
      api("GET", "/job/" + enc(id) + "/logs?tail=200"),
      api("GET", "/deliveries?jobId=" + enc(id)),
    ]);
    // each delivery with every attempt (status code, error, duration)
    const deliveries = await Promise.all(
      list.deliveries.map((d) => api("GET", "/deliveries/" + enc(d.deliveryId))),
    );
    if (ui.detailId !== id) return;
    ui.detail = { job, logs: logs.lines, deliveries };
    // re-render only on a change: a rebuilt panel would lose the reader's selection and focus
    const sig = JSON.stringify(ui.detail);
    if (sig === ui.detailSig && !force) return;
    ui.detailSig = sig;
    renderDetail();
  } catch (err) {
    if (ui.detailId !== id || err.status === 401 || err.status === 403) return;
    $("#d-body").replaceChildren(el("p", { class: "error-box", text: err.message }));
  }
}

function renderDetail() {
  const { job, logs, deliveries } = ui.detail;
  const ended = TERMINAL.includes(job.state);
  $("#d-title").replaceChildren(el("span", { class: "mono", text: job.jobId }));
  // keep following the log tail unless the reader scrolled up in it
  const old = $("#d-logs");
  const following = !old || old.scrollTop + old.clientHeight >= old.scrollHeight - 8;
  const body = [
    el(
      "div",
      { class: "d-state" },
      badge(job.state),
      progressBar(job.progress, job.state),
      el("span", { class: "muted", text: (job.progress || 0) + "%" }),
      jobActions(job),
    ),
    el(
      "dl",
      { class: "meta" },
      meta("bot", job.botType + " / " + job.bot),
      meta("priority", job.priority ?? "–"),
      meta("attempt", `${job.attempt} of ${job.maxAttempts}`),
      meta("duration", duration(job.durationMs)),
      meta("replica", job.replica || "–"),
      job.group ? meta("group", `${job.group.groupId} · ${job.group.rule} → ${job.group.member}`) : null,
    ),
    section("Timeline", timeline(job)),
    section("Payload", el("pre", { class: "json", id: "d-payload", text: pretty(job.payload ?? {}) })),
  ];
  if (job.error) {
    body.push(section("Error", el("pre", { class: "error-box", id: "d-error", text: job.error })));
  }
  if (job.result !== null && job.result !== undefined) {
    body.push(section("Result", el("pre", { class: "json", id: "d-result", text: pretty(job.result) })));
  }
  const noOutput = ended ? "(no output)" : "(no output yet)";
  body.push(
    section(
      ended ? "Logs" : "Logs (live)",
      el("pre", { class: "logs", id: "d-logs", text: logs.join("\n") || noOutput }),
    ),
    section(
      "Webhook",
      deliveries.length
        ? deliveries.map(renderDelivery)
        : el("p", { class: "muted", text: job.webhook ? "not sent yet" : "no webhook URL" }),
    ),
  );
  $("#d-body").replaceChildren(...body.flat(2));
  const logsNode = $("#d-logs");
  if (following) logsNode.scrollTop = logsNode.scrollHeight;
}

function jobActions(job) {
  const actions = el("div", { class: "actions" });
  const path = "/job/" + enc(job.jobId);
  if (!TERMINAL.includes(job.state)) {
    const cancel = () => {
      if (confirm("Cancel " + job.jobId + "?")) act("cancel requested", () => api("DELETE", path));
    };
    const text = job.state === "running" ? "Cancel (kill the bot)" : "Cancel";
    const attrs = { type: "button", class: "danger", id: "cancel-job", text, onclick: cancel };
    actions.append(el("button", attrs));
  }
  if (RETRYABLE.includes(job.state)) {
    const retry = () => act("queued again", () => api("POST", path + "/retry"));
    actions.append(el("button", { type: "button", id: "retry-job", text: "Retry", onclick: retry }));
  }
  return actions;
}

function timeline(job) {
  const times = [
    ["created", job.createdAt],
    ["run at", job.runAt],
    ["started", job.startedAt],
    ["finished", job.finishedAt],
  ].filter(([, t]) => t);
  return el(
    "ol",
    { class: "timeline" },
    times.map(([label, t]) =>
      el(
        "li",
        {},
        el("b", { text: label }),
        " ",
        el("time", { datetime: t, title: t, dataset: { at: t }, text: ago(t) }),
        el("span", { class: "muted mono", text: " " + t }),
      ),
    ),
  );
}

function section(title, ...content) {
  return [el("h3", { text: title }), ...content];
}

// "3 s ago" texts age without a re-render
function refreshAges() {
  for (const node of document.querySelectorAll("[data-at]")) {
    if (node.dataset.at) node.textContent = ago(node.dataset.at);
  }
}

function meta(label, value) {
  return [el("dt", { text: label }), el("dd", { text: String(value) })];
}

function renderDelivery(d) {
  const redeliver = () =>
    act("redelivery queued", () => api("POST", "/deliveries/" + enc(d.deliveryId) + "/redeliver"));
  const head = el(
    "div",
    { class: "delivery-head" },
    badge(d.state === "dead" ? "failed" : d.state),
    el("span", { class: "mono url", text: d.url }),
    el("span", { class: "muted", text: `${d.attempts}/${d.maxAttempts} attempts` }),
    d.state === "pending"
      ? null
      : el("button", { type: "button", class: "small redeliver", text: "Redeliver", onclick: redeliver }),
  );
  const next =
    d.state === "pending" && d.nextAttemptAt
      ? el("p", { class: "muted small", text: "next attempt " + d.nextAttemptAt })
      : null;
  const rows = d.history.map((a) =>
    el(
      "tr",
      { class: a.outcome === "delivered" ? "" : "attempt-bad" },
      el("td", { class: "num", text: a.attempt }),
      el("td", { title: a.at || "", dataset: { at: a.at || "" }, text: ago(a.at) }),
      el("td", { class: "num status", text: a.statusCode ?? "–" }),
      el("td", { class: "num", text: duration(a.durationMs) }),
      el("td", { text: a.outcome || "" }),
      el("td", { class: "err", text: a.error || "" }),
    ),
  );
  const none = el("tr", {}, el("td", { colspan: 6, class: "muted", text: "no attempt yet" }));
  const headings = ["#", "at", "status", "took", "outcome", "error"].map((h) => el("th", { text: h }));
  const table = el(
    "table",
    { class: "grid attempts" },
    el("thead", {}, el("tr", {}, headings)),
    el("tbody", {}, rows.length ? rows : none),
  );
  return el("div", { class: "delivery", dataset: { deliveryId: d.deliveryId } }, head, next, table);
}

// -- the loop ----------------------------------------------------------------------------

async function once(name, fn) {
  if (ui.busy[name]) return; // a slow answer never stacks requests
  ui.busy[name] = true;
  try {
    await fn();
  } finally {
    ui.busy[name] = false;
  }
}

async function refreshHealth() {
  try {
    const h = await api("GET", "/health");
    $("#health").textContent = `${h.replica} · v${h.version} · redis ${h.redis}`;
    $("#health").className = "health " + (h.status === "ok" ? "ok" : "bad");
  } catch (err) {
    $("#health").textContent = err.status ? "degraded: " + err.message : err.message;
    $("#health").className = "health bad";
  }
}

async function refreshAll() {
  showKeyState();
  await Promise.all([
    once("stats", () => refreshStats().then(() => $("#live").classList.remove("stale"))).catch((err) => {
      $("#live").classList.add("stale");
      if (err.status !== 401 && err.status !== 403) toast("stats: " + err.message, "error");
    }),
    once("jobs", () => (ui.pages <= 1 ? loadJobs(false) : null)),
    once("deliveries", loadDeliveries),
    once("endpoints", loadEndpoints),
    once("detail", () => refreshDetail(false)),
  ]);
}

let soon = null;
function refreshSoon() {
  clearTimeout(soon);
  soon = setTimeout(() => {
    ui.forceDetail = true; // an action changed the job: read it again even if it had ended
    refreshAll();
  }, 250);
}

function loop() {
  ui.tick += 1;
  refreshAges();
  const paused = $("#key-dialog").open || document.hidden;
  if (!paused) {
    if (ui.tick % 2 === 0) refreshAll();
    else once("detail", () => refreshDetail(false));
    if (ui.tick % 10 === 0) refreshHealth();
  }
  setTimeout(loop, TICK_MS);
}

function start() {
  page.refresh = refreshAll;
  page.refreshSoon = refreshSoon;
  fillStateLists();
  setupKeyDialog();
  setupFilters();
  $("#d-close").addEventListener("click", closeJob);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && ui.detailId && !$("#key-dialog").open) closeJob();
  });
  const m = location.hash.match(/^#job=(.+)$/);
  if (m) openJob(decodeURIComponent(m[1]));
  refreshHealth();
  refreshAll().then(() => document.body.setAttribute("data-ready", "1"));
  setTimeout(loop, TICK_MS);
}

start();
