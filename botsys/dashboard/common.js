// botsys dashboard pages: what every page shares. The API with the key the user typed
// (sessionStorage, this tab only), the key prompt, toasts and a DOM builder. Text from the API
// is user data: it is only ever set with textContent, never as HTML.
"use strict";

const KEY_STORE = "botsys.apiKey";
const $ = (sel) => document.querySelector(sel);
// What the page plugs in: a full refresh (after a key is entered) and a soon one (after an action).
const page = { pending: null, refresh: async () => {}, refreshSoon: () => {} };

// -- API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.body = body;
  }
}

// `extra`: more request headers (If-Match); `opts.quietForbidden`: a 403 asks for no key (a
// panel only an admin sees, polled with a user key).
async function api(method, path, body, extra, opts = {}) {
  const headers = { Accept: "application/json", ...extra };
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers.Authorization = "Bearer " + key;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "the server is unreachable (" + err.message + ")");
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (_) {
    data = text;
  }
  if (!res.ok) {
    // problem+json: `detail` says what is wrong, `errors` names the fields
    const err = new ApiError(res.status, problemText(res, data), data);
    if (res.status === 401 || (res.status === 403 && !opts.quietForbidden)) askForKey(err);
    throw err;
  }
  return data;
}

// "invalid limit — limit: Must be … 100000." from {detail, errors: {field: [msg]}}
function problemText(res, data) {
  const detail = (data && data.detail) || res.status + " " + res.statusText;
  const fields = Object.entries((data && data.errors) || {})
    .map(([name, msgs]) => name + ": " + [].concat(msgs).join(" "))
    .filter((text) => text !== detail); // "field: message" problems say it once
  return fields.length ? detail + " — " + fields.join("; ") : detail;
}

const enc = encodeURIComponent;

// Runs a user action; a refusal for want of a key is re-run after the key prompt.
async function act(label, fn) {
  try {
    const out = await fn();
    toast(label, "ok");
    page.refreshSoon();
    return out;
  } catch (err) {
    if (err.status === 401 || err.status === 403) page.pending = { label, fn };
    else toast(label + " failed: " + err.message, "error");
  }
}

// -- small DOM helpers -------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function toast(message, kind) {
  const node = el("div", { class: "toast " + (kind || ""), role: "status", text: message });
  $("#toasts").append(node);
  setTimeout(() => node.remove(), kind === "error" ? 8000 : 3500);
}

// -- key prompt --------------------------------------------------------------------------

function askForKey(err) {
  const dialog = $("#key-dialog");
  const had = sessionStorage.getItem(KEY_STORE);
  $("#key-reason").textContent =
    err.status === 403
      ? "This action needs an admin key: " + err.message
      : had
        ? "That key was refused: " + err.message
        : "This botsys needs an API key to show its queues.";
  if (!dialog.open) {
    dialog.showModal();
    $("#key-input").value = "";
    $("#key-input").focus();
  }
}

function setupKeyDialog() {
  const dialog = $("#key-dialog");
  $("#key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = $("#key-input").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORE, key);
    dialog.close();
    const pending = page.pending;
    page.pending = null;
    page.refresh().then(() => pending && act(pending.label, pending.fn));
  });
  $("#key-clear").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORE);
    page.pending = null;
    dialog.close();
    page.refresh();
  });
  dialog.addEventListener("cancel", () => (page.pending = null));
  $("#key-button").addEventListener("click", () => {
    $("#key-reason").textContent = sessionStorage.getItem(KEY_STORE)
      ? "A key is set for this tab. Enter another one, or forget it."
      : "No key set. The API is open unless keys are configured.";
    $("#key-input").value = "";
    dialog.showModal();
  });
}

function showKeyState() {
  $("#key-button").textContent = sessionStorage.getItem(KEY_STORE) ? "API key ✓" : "API key";
}
