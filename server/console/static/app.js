// The Canopy console: a page over canopyd's HTTP/JSON API, served beside
// it. It reads the tree a page of children at a time (ListFolders with
// counts), follows Watch to stay current, and asks the server for
// everything it shows about access (EffectiveAccess, Explain, History,
// dry-run Writes): it decides nothing itself, and reads no more than it
// shows, whatever the size of the organisation. Writes are offered only
// when the caller's token may write.
"use strict";

// kids caches the children of each folder read ("" above the roots):
// folders, their counts, and the next page's token. open holds the
// folders drawn open.
const state = { kids: new Map(), open: new Set([""]), revision: 0, caller: null };
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
  for (const c of children.flat(Infinity)) {
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

// load reads the server's status: the revision, the counts, the caller.
async function load() {
  const st = await api("GET", "/v1/status");
  state.caller = st.caller;
  state.revision = Number(st.revision);
  $("caller").textContent = st.caller ? st.caller.name + " (" + st.caller.scopes.join(", ") + ")" : "";
  $("status").textContent = `revision ${st.revision} · ${st.folders} folders · ${st.users} users · ${st.grants} grants · ${st.locks} locks`;
}

// fetchKids reads (another page of) folder parent's children.
async function fetchKids(parent, more) {
  const have = more ? state.kids.get(parent) : { folders: [], counts: [], next: "" };
  const q = new URLSearchParams({ parent, with_counts: "true", page_size: "200" });
  if (more) q.set("page_token", have.next);
  const r = await api("GET", "/v1/folders?" + q);
  const got = { folders: have.folders.concat(r.folders), counts: have.counts.concat(r.counts), next: r.next_page_token };
  state.kids.set(parent, got);
  return got;
}

const kids = async (parent) => state.kids.get(parent) || fetchKids(parent, false);
const refText = (r) => (r && r.id ? (r.kind === "OBJECT_KIND_USER" ? "user/" : "folder/") + r.id : "capabilities");
const refLink = (r) => (r && r.id ? el("a", { href: "#/" + refText(r) }, refText(r)) : "capabilities");
const folderRef = (id) => "target.kind=OBJECT_KIND_FOLDER&target.id=" + encodeURIComponent(id);

// countText says what is placed at a folder.
function countText(c) {
  const parts = [];
  const n = (k, one, many) => { const v = Number(c[k] || 0); if (v) parts.push(v + " " + (v === 1 ? one : many)); };
  n("users", "user", "users");
  n("members", "extra member", "extra members");
  n("grants", "grant", "grants");
  n("locks", "lock", "locks");
  return parts.join(", ");
}

// openFirst opens the tree's top levels while it stays small, so a small
// organisation is seen whole at once and a large one costs a few pages.
async function openFirst() {
  let level = [""], shown = 0;
  for (let depth = 0; depth < 4 && level.length && shown < 120; depth++) {
    const next = [];
    for (const p of level) {
      const k = await kids(p);
      state.open.add(p);
      shown += k.folders.length;
      k.folders.forEach((f, i) => { if (Number(k.counts[i].children) > 0) next.push(f.id); });
    }
    level = next;
  }
}

// tree draws the open folders below parent from what has been read;
// marks, when given, says what each folder is drawn with (access reached,
// locks), and keep which to draw.
function tree(parent, marks, keep) {
  const k = state.kids.get(parent);
  const ul = el("ul", { class: parent ? "tree" : "tree root" });
  if (!k) return ul;
  k.folders.forEach((f, i) => {
    if (keep && !keep.has(f.id)) return;
    const c = k.counts[i] || {};
    const mark = marks && marks.get(f.id);
    const opened = state.open.has(f.id);
    const toggle = Number(c.children) > 0 ? el("button", { class: "toggle", "aria-label": (opened ? "close " : "open ") + f.id, onclick: () => toggleOpen(f.id) }, opened ? "▾" : "▸") : el("span", { class: "toggle" }, "·");
    const node = el("div", { class: "node" + (mark && mark.reached ? " reached" : "") + (mark && mark.locked ? " locked" : ""), "data-folder": f.id },
      toggle, el("a", { href: "#/folder/" + f.id }, f.name || f.id),
      f.name ? el("span", { class: "muted" }, f.id) : null,
      el("span", { class: "counts" }, countText(c)),
      mark && mark.reached ? el("span", { class: "badge" }, mark.reached) : null,
      mark && mark.locked ? el("span", { class: "badge deny" }, "locked: " + mark.locked) : null);
    ul.append(el("li", {}, node, opened ? tree(f.id, marks, keep) : null));
  });
  if (k.next && !keep) ul.append(el("li", {}, el("button", { onclick: async () => { await fetchKids(parent, true); drawTree(); } }, "more…")));
  return ul;
}

async function toggleOpen(id) {
  if (state.open.has(id)) state.open.delete(id);
  else {
    await kids(id);
    state.open.add(id);
  }
  drawTree();
}

// drawTree draws the navigation tree; a search looks the text up as a
// folder id and a user id, and filters the folders read so far.
let draws = 0; // as routes, for the tree

async function drawTree() {
  const seq = ++draws;
  const q = $("search").value.trim();
  if (!q) {
    $("tree").replaceChildren(tree("", null, null));
    return;
  }
  const keep = new Set();
  for (const [, k] of state.kids) for (const f of k.folders) if (f.id.toLowerCase().includes(q.toLowerCase()) || (f.name || "").toLowerCase().includes(q.toLowerCase())) keep.add(f.id);
  const hits = [];
  const [folder, user] = await Promise.all([api("GET", "/v1/folders/" + encodeURIComponent(q)).catch(() => null), api("GET", "/v1/users/" + encodeURIComponent(q)).catch(() => null)]);
  if (folder) hits.push(el("div", {}, "folder ", el("a", { href: "#/folder/" + folder.folder.id }, folder.folder.id)));
  if (user) hits.push(el("div", {}, "user ", el("a", { href: "#/user/" + user.user.id }, user.user.id), " ", el("span", { class: "muted" }, "in " + user.user.home)));
  // Keep the way down to each folder found, as far as it has been read.
  const parentOf = new Map();
  for (const [p, k] of state.kids) for (const f of k.folders) parentOf.set(f.id, p);
  for (const id of [...keep]) for (let x = parentOf.get(id); x; x = parentOf.get(x)) keep.add(x);
  if (seq === draws) $("tree").replaceChildren(...(hits.length ? [el("h3", {}, "Found"), ...hits] : []), tree("", null, keep));
}

// stateWord writes a user state as its word: USER_STATE_ACTIVE is "active".
const stateWord = (st) => (st || "").replace("USER_STATE_", "").toLowerCase();

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
    op === "set_user_state" ? ` ${stateWord(v.state)}` :
    op === "add_extra_group" || op === "remove_extra_group" ? ` ${v.folder}` :
    op === "add_lock" ? ` denies ${(v.rights || []).length ? v.rights.join(",") : "edit"} on ${refText(v.target)}` : "";
  return op.replaceAll("_", " ") + " " + id + extra;
}

// historyTable draws entries of the audit trail, newest first.
const historyTable = (entries) => table(["revision", "time", "actor", "for", "change"], entries.map((e) =>
  [e.revision, e.commit_time.replace(/\.\d+Z$/, "Z"), e.actor, e.acted_for || "", change(e.mutation)]));

async function historyOf(object, limit) {
  const r = await api("GET", "/v1/history?page_size=" + (limit || 20) + "&object=" + encodeURIComponent(object));
  return historyTable(r.entries);
}

async function folderPage(id) {
  let f;
  try {
    f = (await api("GET", "/v1/folders/" + encodeURIComponent(id))).folder;
  } catch (e) {
    return el("p", {}, e.message + ". Its ", el("a", { href: "#/history?object=folder/" + id }, "history"), " may remain.");
  }
  const enc = encodeURIComponent(id);
  const [users, grantsOn, held, locks] = await Promise.all([
    api("GET", "/v1/users?page_size=100&folder=" + enc),
    api("GET", "/v1/grants?page_size=100&" + folderRef(id)),
    api("GET", "/v1/grants?page_size=100&holder.kind=OBJECT_KIND_FOLDER&holder.id=" + enc),
    api("GET", "/v1/locks?page_size=100&" + folderRef(id)),
  ]);
  const removal = el("div", {});
  // listed draws one list of the page (a page of r's items), or "none".
  const listed = (title, r, items, head, row) => [el("h3", {}, title),
    items.length ? table(head, items.map(row)) : el("p", { class: "muted" }, "none"),
    r.next_page_token ? el("p", { class: "muted" }, "the first 100; more in canopy or the API") : null];
  return el("div", {},
    el("h2", {}, f.name || f.id, " ", el("span", { class: "muted" }, "folder/" + f.id)),
    el("p", {}, f.parent ? ["in ", el("a", { href: "#/folder/" + f.parent }, f.parent)] : "an organisation"),
    listed("Users here", users, users.users, ["user", "class", "state", "placed"], (u) => [el("a", { href: "#/user/" + u.id }, u.id), u["class"], stateWord(u.state), u.home === id ? "home" : "extra group"]),
    listed("Grants on this subtree", grantsOn, grantsOn.grants, ["grant", "holder", "rights"], (g) => [g.id, refLink(g.holder), g.rights.join(", ")]),
    listed("Grants its members hold", held, held.grants, ["grant", "on", "rights"], (g) => [g.id, refLink(g.target), g.rights.join(", ")]),
    listed("Locks", locks, locks.locks, ["lock", "denies", "reason"], (l) => [[l.id, canWrite() ? [" ", removeButton("remove_lock", l.id, removal)] : null], l.rights.join(", "), l.reason]),
    removal,
    canWrite() ? addForm(id) : null,
    canWrite() ? lockForm(id) : null,
    el("h3", {}, "Audit trail"), await historyOf("folder/" + id));
}

// pathTo reads the folders from a root down to id, caching what it reads
// as children of their parents, and returns their ids.
async function pathTo(id) {
  const path = [];
  for (let x = id; x;) {
    const f = (await api("GET", "/v1/folders/" + encodeURIComponent(x))).folder;
    path.unshift(f.id);
    x = f.parent;
  }
  for (const p of ["", ...path.slice(0, -1)]) await kids(p);
  return path;
}

async function userPage(id) {
  const acc = await api("GET", "/v1/users/" + encodeURIComponent(id) + "/access");
  const u = acc.user;
  // The access drawn over the tree: the way down to each grant's target
  // subtree, marked with its rights, and to what a lock takes back.
  const marks = new Map(), keep = new Set();
  const mark = async (fid, key, text) => {
    for (const x of await pathTo(fid)) keep.add(x);
    const m = marks.get(fid) || {};
    m[key] = m[key] ? m[key] + "; " + text : text;
    marks.set(fid, m);
  };
  const reachedUsers = [];
  for (const e of acc.entries) {
    const t = e.grant.target;
    if (t && t.kind === "OBJECT_KIND_FOLDER") await mark(t.id, "reached", e.rights.join(",") + " and below");
    if (t && t.kind === "OBJECT_KIND_USER") reachedUsers.push([el("a", { href: "#/user/" + t.id }, t.id), e.rights.join(", ")]);
    for (const l of e.locks || []) if (l.target.kind === "OBJECT_KIND_FOLDER") await mark(l.target.id, "locked", l.rights.join(","));
  }
  const drawn = new Set(state.open);
  for (const x of keep) state.open.add(x);
  const picture = keep.size ? tree("", marks, keep) : el("p", { class: "muted" }, "no folder is reached");
  state.open = drawn;
  const active = u.state === "USER_STATE_ACTIVE";
  const removal = el("div", {});
  return el("div", {},
    el("h2", {}, u.name || u.id, " ", el("span", { class: "muted" }, "user/" + u.id)),
    el("p", {}, u["class"], " · ", el("span", { class: "verdict " + (active ? "yes" : "no") }, stateWord(u.state)),
      u.active_until ? " until " + u.active_until : "", " · home ", el("a", { href: "#/folder/" + u.home }, u.home),
      (u.extra_groups || []).length ? [" · extra groups ", ...u.extra_groups.map((g) => el("a", { href: "#/folder/" + g }, g + " "))] : ""),
    active ? null : el("p", { class: "verdict no" }, "Not active: allowed nothing until enabled."),
    el("h3", {}, "Effective access"),
    acc.entries.length ? table(["grant", "rights", "on", "via", "locked by"], acc.entries.map((e) =>
      [[e.grant.id + (e.grant.starts_at && !e.grant.started ? " (starts " + e.grant.starts_at + ")" : ""), canWrite() ? [" ", removeButton("remove_grant", e.grant.id, removal)] : null],
        e.rights.join(", "), refLink(e.grant.target), e.via.join(" › "), (e.locks || []).map((l) => l.id).join(", ")])) : el("p", { class: "muted" }, "no grants reach this user"),
    removal,
    el("p", { class: "muted" }, "self rights: " + (acc.self_rights || []).join(", ")),
    el("h3", {}, "Drawn over the tree"), picture,
    reachedUsers.length ? [el("h3", {}, "Users reached one by one"), table(["user", "rights"], reachedUsers)] : null,
    explainForm({ user: id }),
    canWrite() ? previewForm(id) : null,
    canWrite() ? stateForm(u) : null,
    el("h3", {}, "Audit trail"), await historyOf("user/" + id));
}

// offer previews batch in out (a dry run: what it would do to access),
// then offers to commit it with a button: id and label name the button,
// done says what was done.
async function offer(out, batch, id, label, done) {
  try {
    const r = await api("POST", "/v1/write", { ...batch, dry_run: true });
    out.replaceChildren(await previewView(r.preview), el("button", { type: "button", id, onclick: async () => {
      try {
        const w = await api("POST", "/v1/write", batch);
        out.replaceChildren(el("p", { class: "verdict yes" }, done + " at revision " + w.revision + "."));
      } catch (e) { showError(e); }
    } }, label));
  } catch (e) { out.replaceChildren(el("p", { class: "verdict no" }, "Refused: " + e.message)); }
}

// previewForm offers a grant to user id: previewed (a dry run) before it
// is given.
function previewForm(id) {
  const out = el("div", {});
  const target = el("input", { name: "target", "aria-label": "target folder", placeholder: "folder id", size: 14 });
  const rights = el("input", { name: "rights", value: "read", "aria-label": "rights", size: 24 });
  const gid = el("input", { name: "grant", value: id + "-grant", "aria-label": "grant id", size: 14 });
  const batch = () => ({ mutations: [{ add_grant: { id: gid.value.trim(), holder: { kind: "OBJECT_KIND_USER", id }, target: { kind: "OBJECT_KIND_FOLDER", id: target.value }, rights: list(rights.value) } }] });
  const preview = (ev) => { ev.preventDefault(); offer(out, batch(), "commit-grant", "Give this grant", "Granted"); };
  return el("div", {}, el("h3", {}, "Preview a grant"),
    el("form", { class: "row", id: "preview-form", onsubmit: preview }, gid, " gives ", rights, " on ", target, el("button", {}, "Preview")), out);
}

// stateForm offers to disable an active user, or to enable one that is
// not, previewed first.
function stateForm(u) {
  const out = el("div", {});
  const active = u.state === "USER_STATE_ACTIVE";
  const to = active ? "USER_STATE_DISABLED" : "USER_STATE_ACTIVE";
  const word = active ? "Disable" : "Enable";
  const batch = { mutations: [{ set_user_state: { id: u.id, state: to } }] };
  return el("div", {}, el("h3", {}, "Account"),
    el("form", { class: "row", id: "state-form", onsubmit: (ev) => { ev.preventDefault(); offer(out, batch, "commit-state", word + " " + u.id, word + "d"); } },
      el("button", {}, "Preview: " + word.toLowerCase() + " this account")), out);
}

// lockForm offers a lock on folder id (what it denies: edit when left
// empty), previewed before it is added.
function lockForm(id) {
  const out = el("div", {});
  const lid = el("input", { name: "lock", value: id + "-lock", "aria-label": "lock id", size: 14 });
  const rights = el("input", { name: "rights", placeholder: "edit", "aria-label": "rights denied", size: 16 });
  const reason = el("input", { name: "reason", placeholder: "reason", "aria-label": "reason", size: 20 });
  const batch = () => ({ mutations: [{ add_lock: { id: lid.value.trim(), target: { kind: "OBJECT_KIND_FOLDER", id }, rights: list(rights.value), reason: reason.value } }] });
  const preview = (ev) => { ev.preventDefault(); offer(out, batch(), "commit-lock", "Add this lock", "Locked"); };
  return el("div", {}, el("h3", {}, "Lock this subtree"),
    el("form", { class: "row", id: "lock-form", onsubmit: preview }, lid, " denies ", rights, " because ", reason, el("button", {}, "Preview")), out);
}

// addForm offers a new subfolder or a new user (homed) in folder id,
// previewed before it is created: a new user may at once be reached by
// the grants their folders hold.
function addForm(id) {
  const out = el("div", {});
  const kind = el("select", { name: "kind", "aria-label": "what to add" }, el("option", { value: "folder" }, "folder"), el("option", { value: "user" }, "user"));
  const nid = el("input", { name: "id", placeholder: "id", "aria-label": "new id", size: 12 });
  const name = el("input", { name: "name", placeholder: "name", "aria-label": "name", size: 16 });
  const cls = el("input", { name: "class", placeholder: "class (a user's)", "aria-label": "class", size: 12 });
  const batch = () => kind.value === "folder" ?
    { mutations: [{ create_folder: { id: nid.value.trim(), name: name.value, parent: id } }] } :
    { mutations: [{ create_user: { id: nid.value.trim(), name: name.value, class: cls.value.trim(), home: id } }] };
  const preview = (ev) => { ev.preventDefault(); offer(out, batch(), "commit-add", "Create " + kind.value + " " + nid.value.trim(), "Created"); };
  return el("div", {}, el("h3", {}, "Add here"),
    el("form", { class: "row", id: "add-form", onsubmit: preview }, kind, nid, name, cls, el("button", {}, "Preview")), out);
}

// removeButton offers to remove a grant or a lock (op remove_grant or
// remove_lock), previewed first in out.
function removeButton(op, id, out) {
  return el("button", { type: "button", class: "remove", "data-remove": id, onclick: () => offer(out, { mutations: [{ [op]: { id } }] }, "commit-remove", "Remove " + id, "Removed") }, "remove…");
}

// list reads a comma-separated list.
const list = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);

// previewView shows what a write would change: per right, and per user,
// each region with (the first hundred of) the users it holds.
async function previewView(p) {
  const region = async (a, verb) => {
    let who = [];
    if (a.on && a.on.kind === "OBJECT_KIND_FOLDER") {
      const r = await api("GET", "/v1/users?subtree=true&page_size=100&folder=" + encodeURIComponent(a.on.id));
      who = r.users.map((u) => u.id).filter((m) => !(a.except || []).some((x) => x.id === m));
    }
    return el("div", {}, a.rights.join(","), " on ", refLink(a.on), who.length ? el("span", { class: "muted" }, " — " + verb + " " + who.join(", ")) : null);
  };
  const regions = (list, verb) => Promise.all((list || []).map((a) => region(a, verb)));
  const rows = await Promise.all((p.changes || []).map(async (c) => [c.user, await regions(c.gained, "would see"), await regions(c.lost, "would no longer see")]));
  return el("div", { id: "preview" },
    el("p", {}, p.users_affected + (p.users_affected === "1" ? " user" : " users") + " would change, against revision " + p.revision + "."),
    table(["right", "records gained", "lost"], (p.totals || []).map((t) => [t.right, t.gained, t.lost])),
    table(["user", "gains", "loses"], rows));
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
  const pending = !r.allowed && r.reason === "REASON_NO_GRANT" && r.grant;
  if (r.grant) chain.append(arrow(), box("grant " + r.grant.id, r.grant.rights.join(", ") + (r.grant.expired ? " (expired)" : "") + (pending ? " (from " + r.grant.starts_at + ")" : ""), !r.allowed && !r.lock));
  for (const t of r.target_path || []) chain.append(arrow(), box(t, "contains"));
  if (r.lock) {
    for (const t of r.lock_path || []) chain.append(arrow(), box(t, "under the lock"));
    chain.append(arrow(), box("lock " + r.lock.id, "denies " + r.lock.rights.join(", ") + (r.lock.reason ? ": " + r.lock.reason : ""), true));
  }
  chain.append(arrow(), box(resource ? v.resource : "capability", "", !r.allowed));
  page.append(el("p", { class: "verdict " + (r.allowed ? "yes" : "no"), id: "verdict" }, (r.allowed ? "ALLOWED" : "DENIED: " + reason) + " (revision " + r.revision + ")"), chain);
  if (r.lock) page.append(el("p", { class: "muted" }, "A lock wins over every grant; removing it is an ordinary write."));
  if (pending) page.append(el("p", { class: "muted", id: "pending" }, "The grant will allow it from " + r.grant.starts_at + "; until then it gives nothing."));
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
  page.append(historyTable(r.entries));
  return page;
}

// routes counts the pages asked for: a page that was slower to build than
// a later one is dropped, not drawn over it.
let routes = 0;

async function route() {
  const seq = ++routes;
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  let page;
  try {
    if (parts[0] === "folder" && parts[1]) page = await folderPage(decodeURIComponent(parts.slice(1).join("/")));
    else if (parts[0] === "user" && parts[1]) page = await userPage(decodeURIComponent(parts.slice(1).join("/")));
    else if (parts[0] === "explain") page = await explainPage(params);
    else if (parts[0] === "history") page = await historyPage(params);
    else page = el("div", {}, el("h2", {}, "Organisations"), tree("", null, null), el("p", { class: "muted" }, "Open a folder with ▸; search finds a folder or a user by id."));
  } catch (e) {
    page = el("p", { class: "verdict no" }, e.message);
  }
  if (seq === routes) $("detail").replaceChildren(page);
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
          const open = [...state.kids.keys()].filter((p) => state.open.has(p));
          state.kids.clear();
          for (const p of open) await kids(p);
          await drawTree();
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
  let typing;
  $("search").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(drawTree, 150); });
  window.addEventListener("hashchange", route);
  try {
    await load();
    await openFirst();
  } catch (e) {
    $("status").textContent = "not connected";
    showError(e);
    return;
  }
  await drawTree();
  await route();
  document.body.dataset.ready = "1";
  follow();
}

start();
