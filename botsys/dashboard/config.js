// botsys types & groups page: list, create, edit and delete bot types and bot groups, with the
// routing rule editor. Everything goes through the admin API (common.js): each write sends the
// version it was read at (If-Match), so a change made meanwhile elsewhere is refused, not lost.
"use strict";

const TYPES = "/admin/config/bot-types";
const GROUPS = "/admin/config/bot-groups";
const OPERATORS = ["EQUALS", "NOT_EQUALS", "GREATER_THAN", "LESS_THAN", "CONTAINS", "REGEX_MATCH", "IN"];

const cfg = {
  types: [],
  groups: [],
  targets: [], // every member a group may list: `type` and `type/bot` (GET /bots)
  editingType: null, // the TypeView being edited, or null for a new type
  editingGroup: null,
};

// -- small helpers -------------------------------------------------------------------------

function button(text, onclick, cls) {
  return el("button", { type: "button", class: "small " + (cls || ""), text, onclick });
}

function select(options, value, attrs) {
  const node = el("select", attrs || {}, options.map((o) => el("option", { value: o, text: o })));
  if (value !== undefined && value !== null) node.value = value;
  return node;
}

function showError(form, err) {
  const box = form.querySelector(".form-error");
  box.textContent = err ? err.message : "";
  box.hidden = !err;
}

// A form's failed save: the problem's fields in the form; a missing key re-runs it after the prompt.
async function save(form, label, fn) {
  showError(form, null);
  try {
    await fn();
    toast(label, "ok");
    form.hidden = true;
    await refresh();
  } catch (err) {
    if (err.status === 401 || err.status === 403) page.pending = { label, fn: () => save(form, label, fn) };
    else showError(form, err);
  }
}

function ifMatch(version) {
  return { "If-Match": '"' + version + '"' };
}

// -- bot types -----------------------------------------------------------------------------

async function loadTypes() {
  try {
    cfg.types = (await api("GET", TYPES)).botTypes;
    $("#types-unavailable").hidden = true;
    $("#type-new").hidden = false;
    $("#types").hidden = false;
  } catch (err) {
    if (err.status !== 404) throw err;
    cfg.types = [];
    $("#types-unavailable").textContent = "This server does not manage bot types at runtime (404).";
    $("#types-unavailable").hidden = false;
    $("#type-new").hidden = true;
    $("#types").hidden = true;
  }
  renderTypes();
}

function cadenceText(c) {
  return c ? `${c.max} / ${c.intervalS} s${c.mode === "reject" ? " (reject)" : ""}` : "–";
}

function renderTypes() {
  const rows = cfg.types.map((t) =>
    el(
      "tr",
      { dataset: { type: t.name } },
      el("th", { scope: "row" }, el("span", { class: "type-name", text: t.name })),
      el("td", { text: t.runtime }),
      el("td", { class: "num", text: t.limit ?? "–" }),
      el("td", { text: cadenceText(t.cadence) }),
      el("td", { class: "num", text: t.defaultPriority ?? "–" }),
      el("td", { class: "num", text: t.retryAttempts ?? "–" }),
      el("td", { class: "num", text: t.timeoutMs ? t.timeoutMs + " ms" : "–" }),
      el("td", { class: "muted", text: t.source || "" }),
      el(
        "td",
        { class: "controls" },
        button("Edit", () => editType(t), "ghost edit"),
        t.source === "runtime" ? null : button("Reset", () => resetType(t), "ghost reset"),
        button("Delete", () => deleteType(t), "danger delete"),
      ),
    ),
  );
  $("#types tbody").replaceChildren(...rows);
}

function editType(t) {
  cfg.editingType = t;
  const form = $("#type-form");
  form.reset();
  showError(form, null);
  $("#type-form-title").textContent = t ? "Edit type " + t.name : "New type";
  const f = form.elements;
  f.name.readOnly = !!t;
  if (t) {
    f.name.value = t.name;
    f.runtime.value = t.runtime || "";
    f.bots.value = (t.bots || []).join(", ");
    f.botsDir.value = t.botsDir || "";
    f.limit.value = t.limit ?? "";
    f.cadenceMax.value = t.cadence ? t.cadence.max : "";
    f.cadenceIntervalS.value = t.cadence ? t.cadence.intervalS : "";
    f.cadenceMode.value = t.cadence ? t.cadence.mode || "queue" : "queue";
    f.defaultPriority.value = t.defaultPriority ?? "";
    f.retryAttempts.value = t.retryAttempts ?? "";
    f.timeoutMs.value = t.timeoutMs ?? "";
    f.description.value = t.description || "";
  }
  form.hidden = false;
  f[t ? "runtime" : "name"].focus();
}

function typeBody(form) {
  const f = form.elements;
  const num = (name) => (f[name].value === "" ? undefined : Number(f[name].value));
  const bots = f.bots.value.split(",").map((b) => b.trim()).filter(Boolean);
  const body = {
    name: f.name.value.trim(),
    runtime: f.runtime.value.trim(),
    bots: bots.length ? bots : null,
    botsDir: f.botsDir.value.trim() || null,
    limit: num("limit"),
    cadence:
      f.cadenceMax.value === ""
        ? null
        : { max: num("cadenceMax"), intervalS: num("cadenceIntervalS"), mode: f.cadenceMode.value },
    defaultPriority: num("defaultPriority"),
    retryAttempts: num("retryAttempts"),
    timeoutMs: num("timeoutMs"),
    description: f.description.value,
  };
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  return body;
}

function submitType(ev) {
  ev.preventDefault();
  const form = $("#type-form");
  const body = typeBody(form);
  const t = cfg.editingType;
  if (t) {
    const path = TYPES + "/" + enc(t.name);
    save(form, "type " + t.name + " saved", () => api("PUT", path, body, ifMatch(t.version)));
  } else {
    save(form, "type " + body.name + " created", () => api("POST", TYPES, body));
  }
}

async function deleteType(t) {
  if (!confirm("Delete bot type " + t.name + "?")) return;
  const path = TYPES + "/" + enc(t.name);
  try {
    await act("type " + t.name + " deleted", async () => {
      try {
        return await api("DELETE", path);
      } catch (err) {
        if (err.status !== 409) throw err;
        const force = confirm(err.message + "\n\nDelete anyway and cancel its queued jobs?");
        if (!force) throw err;
        return api("DELETE", path + "?force=true");
      }
    });
  } finally {
    refresh();
  }
}

function resetType(t) {
  if (!confirm("Reset " + t.name + " to its values in the configuration file?")) return;
  act("type " + t.name + " reset", () => api("POST", TYPES + "/" + enc(t.name) + "/reset")).then(refresh);
}

// -- bot groups ----------------------------------------------------------------------------

async function loadGroups() {
  cfg.groups = (await api("GET", GROUPS)).botGroups;
  renderGroups();
}

async function loadTargets() {
  const { botTypes } = await api("GET", "/bots");
  cfg.targets = botTypes.flatMap((t) => [t.botType, ...t.bots.map((b) => t.botType + "/" + b)]);
}

function ruleText(rule) {
  const weights = (list) => list.map((w) => `${w.member} ${w.weight}`).join(", ");
  switch (rule.type) {
    case "PERCENTAGE_BASED":
      return "weights: " + weights(rule.weights);
    case "A_B_TEST":
      return "A/B: " + weights(rule.variants) + (rule.stickyKey ? ` · sticky on ${rule.stickyKey}` : "");
    case "TIME_BASED":
      return rule.slots.map((s) => `${s.start}–${s.end} ${s.member}`).join(", ") + ` · else ${rule.default}`;
    case "PARAMETER_BASED":
      return `${rule.branches.length} branch(es) · else ${rule.default}`;
    default:
      return "round robin";
  }
}

function renderGroups() {
  const rows = cfg.groups.map((g) =>
    el(
      "tr",
      { dataset: { group: g.groupId } },
      el("th", { scope: "row" }, el("span", { class: "type-name", text: g.groupId }), " ", el("span", { class: "muted", text: g.name === g.groupId ? "" : g.name })),
      el("td", { class: "mono", text: g.members.join(", ") }),
      el("td", { class: "rule-summary" }, el("b", { text: g.rule.type }), " ", ruleText(g.rule)),
      el("td", { class: "num", text: g.version }),
      el(
        "td",
        { class: "controls" },
        button("Edit", () => editGroup(g), "ghost edit"),
        button("Delete", () => deleteGroup(g), "danger delete"),
      ),
    ),
  );
  $("#groups tbody").replaceChildren(...rows);
  $("#groups-empty").hidden = cfg.groups.length > 0;
}

function deleteGroup(g) {
  if (!confirm("Delete bot group " + g.groupId + "?")) return;
  const path = GROUPS + "/" + enc(g.groupId);
  act("group " + g.groupId + " deleted", () => api("DELETE", path, undefined, ifMatch(g.version))).then(
    refresh,
  );
}

function editGroup(g) {
  cfg.editingGroup = g;
  const form = $("#group-form");
  form.reset();
  showError(form, null);
  $("#group-form-title").textContent = g ? "Edit group " + g.groupId : "New group";
  const f = form.elements;
  f.groupId.readOnly = !!g;
  f.groupId.value = g ? g.groupId : "";
  f.name.value = g ? g.name : "";
  f.description.value = g ? g.description : "";
  renderMembers(g ? g.members : []);
  $("#g-rule").value = g ? g.rule.type : "ROUND_ROBIN";
  renderRule(g ? g.rule : { type: "ROUND_ROBIN" });
  form.hidden = false;
  f[g ? "name" : "groupId"].focus();
}

function renderMembers(chosen) {
  const all = [...cfg.targets, ...chosen.filter((m) => !cfg.targets.includes(m))];
  const boxes = all.map((m) =>
    el(
      "label",
      {},
      el("input", {
        type: "checkbox",
        name: "member",
        value: m,
        checked: chosen.includes(m),
        onchange: () => renderRule(collectRule()),
      }),
      " ",
      m,
    ),
  );
  $("#g-members").replaceChildren(el("legend", { text: "Members" }), ...boxes);
}

function chosenMembers() {
  return [...document.querySelectorAll('#g-members input[name="member"]:checked')].map((i) => i.value);
}

// -- the rule editor: one renderer and one reader per rule type ---------------------------

function renderRule(rule) {
  const members = chosenMembers();
  const editor = $("#g-rule-editor");
  const render = RULE_EDITORS[rule.type] || (() => []);
  editor.replaceChildren(...[render(rule, members)].flat(3));
}

function collectRule() {
  const type = $("#g-rule").value;
  return (RULE_READERS[type] || (() => ({ type })))(type);
}

function weightRows(entries, members, key) {
  const weightOf = Object.fromEntries((entries || []).map((e) => [e.member, e.weight]));
  if (!members.length) return el("p", { class: "muted", text: "Choose the members first." });
  return members.map((m) =>
    el(
      "label",
      { class: "rule-row" },
      el("span", { class: "mono", text: m }),
      el("input", { type: "number", min: 0, class: key, dataset: { member: m }, value: weightOf[m] ?? 1, "aria-label": "weight of " + m }),
    ),
  );
}

function readWeights(key) {
  return [...document.querySelectorAll(`#g-rule-editor input.${key}`)].map((i) => ({
    member: i.dataset.member,
    weight: Number(i.value),
  }));
}

function defaultSelect(rule, members) {
  return el("label", { class: "rule-row" }, "Otherwise", select(members, rule.default ?? members[0], { class: "default" }));
}

function slotRow(slot, members) {
  const row = el(
    "div",
    { class: "rule-row slot" },
    select(members, slot.member, { class: "member", "aria-label": "slot member" }),
    "from",
    el("input", { type: "time", class: "start", value: slot.start || "09:00", "aria-label": "start (UTC)" }),
    "to",
    el("input", { type: "time", class: "end", value: slot.end || "17:00", "aria-label": "end (UTC)" }),
    "UTC",
  );
  row.append(button("Remove", () => row.remove(), "ghost"));
  return row;
}

function conditionRow(cond) {
  const row = el(
    "div",
    { class: "rule-row condition" },
    el("input", { class: "field", placeholder: "payload field", value: cond.field || "", "aria-label": "field" }),
    select(OPERATORS, cond.operator || "EQUALS", { class: "operator", "aria-label": "operator" }),
    el("input", {
      class: "value",
      placeholder: 'value (JSON: "eu", 5, ["a","b"])',
      value: cond.value === undefined ? "" : JSON.stringify(cond.value),
      "aria-label": "value",
    }),
  );
  row.append(button("Remove", () => row.remove(), "ghost"));
  return row;
}

function branchBox(branch, members) {
  const conditions = el("div", { class: "conditions" }, (branch.conditions || [{}]).map(conditionRow));
  return el(
    "div",
    { class: "branch" },
    el(
      "div",
      { class: "rule-row" },
      "Send to",
      select(members, branch.member, { class: "member", "aria-label": "branch member" }),
      "when all of",
      button("Remove branch", (ev) => ev.target.closest(".branch").remove(), "ghost"),
    ),
    conditions,
    el("div", {}, button("Add condition", () => conditions.append(conditionRow({})), "ghost add-condition")),
  );
}

// JSON if it parses ("5" → 5, '"eu"' → "eu"), else the text itself (eu → "eu").
function parseValue(text) {
  try {
    return JSON.parse(text);
  } catch (_) {
    return text;
  }
}

const RULE_EDITORS = {
  ROUND_ROBIN: () => el("p", { class: "muted", text: "Each member in turn, across every replica." }),
  PERCENTAGE_BASED: (rule, members) => weightRows(rule.weights, members, "weight"),
  A_B_TEST: (rule, members) => [
    weightRows(rule.variants, members, "weight"),
    el(
      "label",
      { class: "rule-row" },
      "Sticky on payload field",
      el("input", { class: "sticky", placeholder: "e.g. userId (optional)", value: rule.stickyKey || "" }),
    ),
  ],
  TIME_BASED: (rule, members) => {
    const slots = el("div", { class: "slots" }, (rule.slots || []).map((s) => slotRow(s, members)));
    return [
      slots,
      el("div", {}, button("Add slot", () => slots.append(slotRow({}, members)), "ghost add-slot")),
      defaultSelect(rule, members),
    ];
  },
  PARAMETER_BASED: (rule, members) => {
    const branches = el("div", { class: "branches" }, (rule.branches || []).map((b) => branchBox(b, members)));
    return [
      branches,
      el("div", {}, button("Add branch", () => branches.append(branchBox({}, members)), "ghost add-branch")),
      defaultSelect(rule, members),
    ];
  },
};

const editorValue = (sel) => $("#g-rule-editor " + sel)?.value;

const RULE_READERS = {
  PERCENTAGE_BASED: (type) => ({ type, weights: readWeights("weight") }),
  A_B_TEST: (type) => {
    const rule = { type, variants: readWeights("weight") };
    const sticky = (editorValue("input.sticky") || "").trim();
    if (sticky) rule.stickyKey = sticky;
    return rule;
  },
  TIME_BASED: (type) => ({
    type,
    slots: [...document.querySelectorAll("#g-rule-editor .slot")].map((row) => ({
      member: row.querySelector(".member").value,
      start: row.querySelector(".start").value,
      end: row.querySelector(".end").value,
    })),
    default: editorValue("select.default"),
  }),
  PARAMETER_BASED: (type) => ({
    type,
    branches: [...document.querySelectorAll("#g-rule-editor .branch")].map((box) => ({
      member: box.querySelector(".member").value,
      conditions: [...box.querySelectorAll(".condition")].map((row) => ({
        field: row.querySelector(".field").value.trim(),
        operator: row.querySelector(".operator").value,
        value: parseValue(row.querySelector(".value").value),
      })),
    })),
    default: editorValue("select.default"),
  }),
};

function submitGroup(ev) {
  ev.preventDefault();
  const form = $("#group-form");
  const f = form.elements;
  const body = {
    name: f.name.value.trim() || undefined,
    description: f.description.value,
    members: chosenMembers(),
    rule: collectRule(),
  };
  const g = cfg.editingGroup;
  if (g) {
    const path = GROUPS + "/" + enc(g.groupId);
    save(form, "group " + g.groupId + " saved", () => api("PUT", path, body, ifMatch(g.version)));
  } else {
    const id = f.groupId.value.trim();
    save(form, "group " + id + " created", () => api("POST", GROUPS, { groupId: id, ...body }));
  }
}

// -- start ---------------------------------------------------------------------------------

async function refresh() {
  showKeyState();
  const results = await Promise.allSettled([loadTypes(), loadGroups(), loadTargets()]);
  for (const r of results) {
    const err = r.reason;
    if (err && err.status !== 401 && err.status !== 403) toast(err.message, "error");
  }
}

function start() {
  page.refresh = refresh;
  page.refreshSoon = () => setTimeout(refresh, 100);
  setupKeyDialog();
  $("#type-new").addEventListener("click", () => editType(null));
  $("#group-new").addEventListener("click", () => editGroup(null));
  $("#type-form").addEventListener("submit", submitType);
  $("#group-form").addEventListener("submit", submitGroup);
  for (const form of [$("#type-form"), $("#group-form")]) {
    form.querySelector(".cancel").addEventListener("click", () => (form.hidden = true));
  }
  $("#g-rule").addEventListener("change", () => renderRule({ type: $("#g-rule").value }));
  refresh().then(() => document.body.setAttribute("data-ready", "1"));
}

start();
