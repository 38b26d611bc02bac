// The Canopy console: a page over canopyd's HTTP/JSON API, served beside
// it. It reads the organisation once (Export), follows Watch to stay
// current, and asks the server for everything it shows about access
// (EffectiveAccess, Explain, History, dry-run Writes): it decides nothing
// itself. Writes are offered only when the caller's token may write.
"use strict";

const state = { folders: new Map(), users: new Map(), grants: new Map(), locks: new Map(), revision: 0, caller: null };
const $ = (id) => document.getElementById(id);

// el builds an element: attributes, then children (strings become text,
// never markup).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const t = sessionStorage.getItem("canopy-token");
  if (t) h.Authorization = "Bearer " + t;
  return h;
}

// api calls the HTTP/JSON API and returns its JSON, or throws the
// server's message.
async function api(method, path, body) {
  const r = await fetch(path, { method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body) });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(j.message || r.status + " " + r.statusText);
  return j;
}

// lines yields the JSON objects of a streamed answer, one a line.
async function* lines(path, signal) {
  const r = await fetch(path, { headers: headers(), signal });
  if (!r.ok) {
    const j = await r.json().catch(() => ({}));
    throw new Error(j.message || r.status + " " + r.statusText);
  }
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line) continue;
      const m = JSON.parse(line);
      if (m.error) throw new Error(m.error.message);
      yield m.result;
    }
  }
}

function showError(err) {
  const e = $("error");
  e.textContent = String(err && err.message ? err.message : err);
  e.hidden = false;
  setTimeout(() => { e.hidden = true; }, 8000);
}

const canWrite = () => !!state.caller && state.caller.scopes.some((s) => s === "write" || s === "admin");

// load reads the whole organisation the token may see, as an export.
async function load() {
  const st = await api("GET", "/v1/status");
  state.caller = st.caller;
  $("caller").textContent = st.caller ? st.caller.name + " (" + st.caller.scopes.join(", ") + ")" : "";
  const next = { folders: new Map(), users: new Map(), grants: new Map(), locks: new Map() };
  let rev = 0;
  for await (const chunk of lines("/v1/export")) {
    rev = Number(chunk.revision);
    for (const m of chunk.mutations) {
      if (m.create_folder) next.folders.set(m.create_folder.id, { ...m.create_folder, rule: null });
      else if (m.set_placement_rule) (next.folders.get(m.set_placement_rule.folder) || {}).rule = m.set_placement_rule.classes;
      else if (m.create_user) next.users.set(m.create_user.id, m.create_user);
      else if (m.add_grant) next.grants.set(m.add_grant.id, m.add_grant);
      else if (m.add_lock) next.locks.set(m.add_lock.id, m.add_lock);
    }
  }
  Object.assign(state, next, { revision: rev });
  $("status").textContent = `revision ${rev} · ${state.folders.size} folders · ${state.users.size} users · ${state.grants.size} grants · ${state.locks.size} locks`;
}

const children = (id) => [...state.folders.values()].filter((f) => (f.parent || "") === id).sort((a, b) => a.id.localeCompare(b.id));
const refText = (r) => (r && r.id ? (r.kind === "OBJECT_KIND_USER" ? "user/" : "folder/") + r.id : "capabilities");
const refLink = (r) => (r && r.id ? el("a", { href: "#/" + refText(r) }, refText(r)) : "capabilities");
const on = (r, kind, id) => r && r.id === id && r.kind === kind;

// below reports whether folder f is id or under it.
function below(f, id) {
  for (let x = f; x; x = state.folders.get(x).parent || "") {
    if (x === id) return true;
    if (!state.folders.has(x)) return false;
  }
  return false;
}

// members returns the users placed in folder id's subtree (home or extra
// group), ids sorted.
function members(id) {
  return [...state.users.values()].filter((u) => below(u.home, id) || (u.extra_groups || []).some((e) => below(e, id))).map((u) => u.id).sort();
}

function counts(id) {
  const users = [...state.users.values()].filter((u) => u.home === id).length;
  const grants = [...state.grants.values()].filter((g) => on(g.target, "OBJECT_KIND_FOLDER", id)).length;
  const locks = [...state.locks.values()].filter((l) => on(l.target, "OBJECT_KIND_FOLDER", id)).length;
  const parts = [];
  if (users) parts.push(users + (users === 1 ? " user" : " users"));
  if (grants) parts.push(grants + (grants === 1 ? " grant" : " grants"));
  if (locks) parts.push(locks + (locks === 1 ? " lock" : " locks"));
  return parts.join(", ");
}

// tree draws the folders below parent; marks, when given, says what each
// folder is drawn with (access reached, locks), and keep which to draw.
function tree(parent, marks, keep) {
  const ul = el("ul", { class: parent ? "tree" : "tree root" });
  for (const f of children(parent)) {
    if (keep && !keep.has(f.id)) continue;
    const mark = marks && marks.get(f.id);
    const node = el("div", { class: "node" + (mark && mark.reached ? " reached" : "") + (mark && mark.locked ? " locked" : ""), "data-folder": f.id },
      el("a", { href: "#/folder/" + f.id }, f.name || f.id),
      f.name ? el("span", { class: "muted" }, f.id) : null,
      el("span", { class: "counts" }, counts(f.id)),
      mark && mark.reached ? el("span", { class: "badge" }, mark.reached) : null,
      mark && mark.locked ? el("span", { class: "badge deny" }, "locked: " + mark.locked) : null);
    ul.append(el("li", {}, node, tree(f.id, marks, keep)));
  }
  return ul;
}

function drawTree() {
  const q = $("search").value.trim().toLowerCase();
  let keep = null;
  const found = [];
  if (q) {
    keep = new Set();
    const add = (id) => { for (let x = id; x && !keep.has(x); x = (state.folders.get(x) || {}).parent) keep.add(x); };
    for (const f of state.folders.values()) if (f.id.toLowerCase().includes(q) || (f.name || "").toLowerCase().includes(q)) add(f.id);
    for (const u of state.users.values()) if (u.id.toLowerCase().includes(q) || (u.name || "").toLowerCase().includes(q)) { found.push(u); add(u.home); }
  }
  $("tree").replaceChildren(tree("", null, keep),
    ...(found.length ? [el("div", {}, el("h3", {}, "Users"), ...found.map((u) => el("div", {}, el("a", { href: "#/user/" + u.id }, u.id), " ", el("span", { class: "muted" }, "in " + u.home))))] : []));
}

function table(head, rows) {
  return el("table", {}, el("tr", {}, head.map((h) => el("th", {}, h))), rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c)))));
}

// change describes a mutation in a few words.
function change(m) {
  const op = Object.keys(m)[0];
  const v = m[op] || {};
  const id = v.id || v.name || v.folder || v.user || "";
  const extra = op === "add_grant" ? ` ${(v.rights || []).join(",")} for ${refText(v.holder)} on ${refText(v.target)}` :
    op === "move_folder" || op === "move_user" ? ` to ${v.to}` :
    op === "set_user_state" ? ` ${(v.state || "").replace("USER_STATE_", "").toLowerCase()}` :
    op === "add_extra_group" || op === "remove_extra_group" ? ` ${v.folder}` : "";
  return op.replaceAll("_", " ") + " " + id + extra;
}

async function historyOf(object, limit) {
  const r = await api("GET", "/v1/history?page_size=" + (limit || 20) + "&object=" + encodeURIComponent(object));
  return table(["revision", "time", "actor", "for", "change"], r.entries.map((e) =>
    [e.revision, e.commit_time.replace(/\.\d+Z$/, "Z"), e.actor, e.acted_for || "", change(e.mutation)]));
}

async function folderPage(id) {
  const f = state.folders.get(id);
  if (!f) return el("p", {}, "No folder " + id + " (deleted, or outside your organisations); its ", el("a", { href: "#/history?object=folder/" + id }, "history"), " may remain.");
  const here = [...state.users.values()].filter((u) => u.home === id || (u.extra_groups || []).includes(id));
  const grantsOn = [...state.grants.values()].filter((g) => on(g.target, "OBJECT_KIND_FOLDER", id));
  const held = [...state.grants.values()].filter((g) => on(g.holder, "OBJECT_KIND_FOLDER", id));
  const locks = [...state.locks.values()].filter((l) => on(l.target, "OBJECT_KIND_FOLDER", id));
  return el("div", {},
    el("h2", {}, f.name || f.id, " ", el("span", { class: "muted" }, "folder/" + f.id)),
    el("p", {}, f.parent ? ["in ", el("a", { href: "#/folder/" + f.parent }, f.parent)] : "an organisation", f.rule ? " · admits " + f.rule.join(", ") : ""),
    el("h3", {}, "Users here"), here.length ? table(["user", "class", "state", "placed"], here.map((u) => [el("a", { href: "#/user/" + u.id }, u.id), u["class"], u.state.replace("USER_STATE_", "").toLowerCase(), u.home === id ? "home" : "extra group"])) : el("p", { class: "muted" }, "none"),
    el("h3", {}, "Grants on this subtree"), grantsOn.length ? table(["grant", "holder", "rights"], grantsOn.map((g) => [g.id, refLink(g.holder), g.rights.join(", ")])) : el("p", { class: "muted" }, "none"),
    el("h3", {}, "Grants its members hold"), held.length ? table(["grant", "on", "rights"], held.map((g) => [g.id, refLink(g.target), g.rights.join(", ")])) : el("p", { class: "muted" }, "none"),
    el("h3", {}, "Locks"), locks.length ? table(["lock", "denies", "reason"], locks.map((l) => [l.id, l.rights.join(", "), l.reason])) : el("p", { class: "muted" }, "none"),
    el("h3", {}, "Audit trail"), await historyOf("folder/" + id));
}

async function userPage(id) {
  const acc = await api("GET", "/v1/users/" + encodeURIComponent(id) + "/access");
  const u = acc.user;
  // The access drawn over the tree: each grant's target subtree with its
  // rights, and what a lock takes back.
  const marks = new Map();
  const mark = (fid, key, text) => {
    const m = marks.get(fid) || {};
    m[key] = m[key] ? m[key] + "; " + text : text;
    marks.set(fid, m);
  };
  const reachedUsers = [];
  for (const e of acc.entries) {
    const t = e.grant.target;
    if (t && t.kind === "OBJECT_KIND_FOLDER") for (const f of state.folders.values()) if (below(f.id, t.id)) mark(f.id, "reached", e.rights.join(","));
    if (t && t.kind === "OBJECT_KIND_USER") reachedUsers.push([el("a", { href: "#/user/" + t.id }, t.id), e.rights.join(", ")]);
    for (const l of e.locks || []) if (l.target.kind === "OBJECT_KIND_FOLDER") mark(l.target.id, "locked", l.rights.join(","));
  }
  const active = u.state === "USER_STATE_ACTIVE";
  return el("div", {},
    el("h2", {}, u.name || u.id, " ", el("span", { class: "muted" }, "user/" + u.id)),
    el("p", {}, u["class"], " · ", el("span", { class: "verdict " + (active ? "yes" : "no") }, u.state.replace("USER_STATE_", "").toLowerCase()),
      u.active_until ? " until " + u.active_until : "", " · home ", el("a", { href: "#/folder/" + u.home }, u.home),
      (u.extra_groups || []).length ? [" · extra groups ", ...u.extra_groups.map((g) => el("a", { href: "#/folder/" + g }, g + " "))] : ""),
    active ? null : el("p", { class: "verdict no" }, "Not active: allowed nothing until enabled."),
    el("h3", {}, "Effective access"),
    acc.entries.length ? table(["grant", "rights", "on", "via", "locked by"], acc.entries.map((e) =>
      [e.grant.id + (e.grant.starts_at && !e.grant.started ? " (starts " + e.grant.starts_at + ")" : ""), e.rights.join(", "), refLink(e.grant.target), e.via.join(" › "), (e.locks || []).map((l) => l.id).join(", ")])) : el("p", { class: "muted" }, "no grants reach this user"),
    el("p", { class: "muted" }, "self rights: " + (acc.self_rights || []).join(", ")),
    el("h3", {}, "Drawn over the tree"), tree("", marks, null),
    reachedUsers.length ? [el("h3", {}, "Users reached one by one"), table(["user", "rights"], reachedUsers)] : null,
    explainForm({ user: id }),
    canWrite() ? previewForm(id) : null,
    el("h3", {}, "Audit trail"), await historyOf("user/" + id));
}

// previewForm offers a grant to user id: previewed (a dry run) before it
// is given.
function previewForm(id) {
  const out = el("div", {});
  const folders = [...state.folders.keys()].sort();
  const target = el("select", { name: "target", "aria-label": "target folder" }, folders.map((f) => el("option", { value: f }, f)));
  const rights = el("input", { name: "rights", value: "read", "aria-label": "rights", size: 24 });
  const gid = el("input", { name: "grant", value: id + "-grant", "aria-label": "grant id", size: 14 });
  const batch = () => ({ mutations: [{ add_grant: { id: gid.value.trim(), holder: { kind: "OBJECT_KIND_USER", id }, target: { kind: "OBJECT_KIND_FOLDER", id: target.value }, rights: rights.value.split(",").map((s) => s.trim()).filter(Boolean) } }] });
  const preview = async (ev) => {
    ev.preventDefault();
    try {
      const r = await api("POST", "/v1/write", { ...batch(), dry_run: true });
      out.replaceChildren(previewView(r.preview), el("button", { type: "button", id: "commit-grant", onclick: async () => {
        try {
          const w = await api("POST", "/v1/write", batch());
          out.replaceChildren(el("p", { class: "verdict yes" }, "Granted at revision " + w.revision + "."));
        } catch (e) { showError(e); }
      } }, "Give this grant"));
    } catch (e) { out.replaceChildren(el("p", { class: "verdict no" }, "Refused: " + e.message)); }
  };
  return el("div", {}, el("h3", {}, "Preview a grant"),
    el("form", { class: "row", id: "preview-form", onsubmit: preview }, gid, " gives ", rights, " on ", target, el("button", {}, "Preview")), out);
}

// previewView shows what a write would change: per right, and per user,
// each region with the users it holds.
function previewView(p) {
  const region = (a) => {
    const who = a.on && a.on.kind === "OBJECT_KIND_FOLDER" ? members(a.on.id).filter((m) => !(a.except || []).some((x) => x.id === m)) : [];
    return el("div", {}, a.rights.join(","), " on ", refLink(a.on), who.length ? el("span", { class: "muted" }, " — would see " + who.join(", ")) : null);
  };
  return el("div", { id: "preview" },
    el("p", {}, p.users_affected + (p.users_affected === "1" ? " user" : " users") + " would change, against revision " + p.revision + "."),
    table(["right", "records gained", "lost"], (p.totals || []).map((t) => [t.right, t.gained, t.lost])),
    table(["user", "gains", "loses"], (p.changes || []).map((c) => [c.user, (c.gained || []).map(region), (c.lost || []).map(region)])));
}

function explainForm(v) {
  const f = (name, label, value) => el("input", { name, "aria-label": label, placeholder: label, value: value || "", size: 14 });
  const user = f("user", "user", v.user), right = f("right", "right", v.right || "read"), res = f("resource", "resource (user/ID or folder/ID)", v.resource);
  return el("div", {}, el("h3", {}, "Explain a decision"),
    el("form", { class: "row", onsubmit: (ev) => { ev.preventDefault(); location.hash = "#/explain?" + new URLSearchParams({ user: user.value, right: right.value, resource: res.value }); } },
      user, right, res, el("button", {}, "Explain")));
}

// explainPage draws a decision: user, the path up to the holder, the
// grant, the path down from its target to the record; or the lock.
async function explainPage(params) {
  const v = Object.fromEntries(params);
  const page = el("div", {}, el("h2", {}, "Why?"), explainForm(v));
  if (!v.user || !v.right) return page;
  const [kind, rid] = (v.resource || "").split("/");
  const resource = rid ? { kind: kind === "user" ? "OBJECT_KIND_USER" : "OBJECT_KIND_FOLDER", id: rid } : undefined;
  const r = await api("POST", "/v1/explain", { user: v.user, right: v.right, resource });
  const reason = r.reason.replace("REASON_", "").toLowerCase().replaceAll("_", " ");
  const box = (title, sub, deny) => el("div", { class: "box" + (deny ? " deny" : "") }, title, sub ? el("small", {}, sub) : null);
  const arrow = () => el("span", { class: "arrow" }, "→");
  const chain = el("div", { class: "chain", id: "explain-chain" }, box("user " + v.user, "asks " + v.right));
  for (const h of r.holder_path || []) chain.append(arrow(), box(h, "member of"));
  if (r.self) chain.append(arrow(), box("self right", "on the user's own record"));
  if (r.grant) chain.append(arrow(), box("grant " + r.grant.id, r.grant.rights.join(", ") + (r.grant.expired ? " (expired)" : ""), !r.allowed && !r.lock));
  for (const t of r.target_path || []) chain.append(arrow(), box(t, "contains"));
  if (r.lock) {
    for (const t of r.lock_path || []) chain.append(arrow(), box(t, "under the lock"));
    chain.append(arrow(), box("lock " + r.lock.id, "denies " + r.lock.rights.join(", ") + (r.lock.reason ? ": " + r.lock.reason : ""), true));
  }
  chain.append(arrow(), box(resource ? v.resource : "capability", "", !r.allowed));
  page.append(el("p", { class: "verdict " + (r.allowed ? "yes" : "no"), id: "verdict" }, (r.allowed ? "ALLOWED" : "DENIED: " + reason) + " (revision " + r.revision + ")"), chain);
  if (r.lock) page.append(el("p", { class: "muted" }, "A lock wins over every grant; removing it is an ordinary write."));
  return page;
}

async function historyPage(params) {
  const v = Object.fromEntries(params);
  const object = el("input", { name: "object", placeholder: "user/ID, folder/ID, grant/ID…", value: v.object || "", "aria-label": "object", size: 20 });
  const actor = el("input", { name: "actor", placeholder: "actor", value: v.actor || "", "aria-label": "actor", size: 14 });
  const page = el("div", {}, el("h2", {}, "Audit trail"),
    el("form", { class: "row", onsubmit: (ev) => { ev.preventDefault(); location.hash = "#/history?" + new URLSearchParams({ object: object.value, actor: actor.value }); } }, object, actor, el("button", {}, "Show")));
  const q = new URLSearchParams({ page_size: "100" });
  if (v.object) q.set("object", v.object);
  if (v.actor) q.set("actor", v.actor);
  const r = await api("GET", "/v1/history?" + q);
  page.append(table(["revision", "time", "actor", "for", "change"], r.entries.map((e) => [e.revision, e.commit_time.replace(/\.\d+Z$/, "Z"), e.actor, e.acted_for || "", change(e.mutation)])));
  return page;
}

async function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  let page;
  try {
    if (parts[0] === "folder" && parts[1]) page = await folderPage(decodeURIComponent(parts.slice(1).join("/")));
    else if (parts[0] === "user" && parts[1]) page = await userPage(decodeURIComponent(parts.slice(1).join("/")));
    else if (parts[0] === "explain") page = await explainPage(params);
    else if (parts[0] === "history") page = await historyPage(params);
    else page = el("div", {}, el("h2", {}, "Organisations"), tree("", null, null), el("p", { class: "muted" }, "Pick a folder or a user; search finds both."));
  } catch (e) {
    page = el("p", { class: "verdict no" }, e.message);
  }
  $("detail").replaceChildren(page);
}

// follow shows each committed change as it comes (Watch), and reloads
// the organisation after it.
async function follow() {
  for (;;) {
    try {
      for await (const c of lines("/v1/watch?from_revision=" + (state.revision + 1))) {
        for (const m of c.mutations) $("feed").prepend(el("li", {}, el("b", {}, "r" + c.revision), " ", c.actor, c.acted_for ? " for " + c.acted_for : "", ": ", change(m)));
        if (!c.more) {
          await load();
          drawTree();
          if (!location.hash.startsWith("#/explain") && !document.activeElement.closest("form")) route();
        }
      }
    } catch (e) {
      showError("change stream: " + e.message);
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

async function start() {
  $("signin").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("canopy-token", $("token").value);
    location.reload();
  });
  $("search").addEventListener("input", drawTree);
  window.addEventListener("hashchange", route);
  try {
    await load();
  } catch (e) {
    $("status").textContent = "not connected";
    showError(e);
    return;
  }
  drawTree();
  await route();
  document.body.dataset.ready = "1";
  follow();
}

start();
