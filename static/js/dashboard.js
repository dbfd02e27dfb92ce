// Live updates for the establishment dashboard. The server sends a full snapshot on
// every (re)connect, then one message per change; all text goes in with textContent.
// A live tile links to the call's page and (officers) has a "Watch" toggle: a small,
// muted view of both sides through a monitor peer, at most WATCH_MAX at a time.
import { MonitorPeer } from "./monitor-peer.js";

// Words from Django's JavaScript catalogue (jsi18n, in the page's language), looked up
// when they are shown: English if the catalogue has not loaded, and the page still works.
function gettext(text) {
  return window.gettext ? window.gettext(text) : text;
}
function ngettext(singular, plural, count) {
  if (window.ngettext) return window.ngettext(singular, plural, count);
  return count === 1 ? singular : plural;
}
function interpolate(format, values) {
  return format.replace(/%\((\w+)\)s/g, (_, name) => String(values[name]));
}

const grid = document.getElementById("call-grid");
const statusLine = document.getElementById("connection-status");
const alertsList = document.getElementById("alerts");
const canControl = grid.dataset.canControl === "true";
const tiles = new Map(); // booking reference -> data
const watches = new Map(); // call id -> { peer, box }
window.pvWatches = watches; // for tests and troubleshooting (getStats)
const WATCH_MAX = Number(grid.dataset.watchMax || 2);
const iceServers = JSON.parse(document.getElementById("ice-servers").textContent || "[]");
let socket = null;
let retry = 0;
let heartbeatTimer = null;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function timeLeft(endsAt) {
  if (!endsAt) return "";
  const seconds = Math.max(0, Math.round((Date.parse(endsAt) - Date.now()) / 1000));
  const m = Math.floor(seconds / 60);
  const s = String(seconds % 60).padStart(2, "0");
  return interpolate(gettext("%(time)s left"), { time: `${m}:${s}` });
}

function renderTile(data) {
  const li = el("li", `tile tile-${data.column}`);
  li.dataset.booking = data.booking;
  const time = el("p", "tile-time");
  time.append(el("strong", "", data.starts_label), ` · ${data.terminal}`);
  const who = el("p", "tile-who", data.prisoner);
  who.append(el("br"), el("span", "muted", interpolate(gettext("with %(visitor)s"), { visitor: data.visitor })));
  const status = el("p", "tile-status");
  const tag = el("span", data.pause_reason ? "tag tag-warn" : "tag", data.status_label || data.status);
  tag.dataset.status = data.status;
  status.append(tag);
  if (data.is_test) status.append(" ", el("span", "tag", gettext("test call")));
  if (data.column === "live" || data.column === "paused") {
    const left = el("span", "time-left", timeLeft(data.ends_at));
    left.dataset.endsAt = data.ends_at || "";
    status.append(" ", left);
  }
  li.append(time, who, status);
  if (data.call) {
    li.dataset.call = data.call;
    const actions = el("p", "tile-actions");
    const open = el("a", "tile-open", gettext("Open call"));
    open.href = `${grid.dataset.callsUrl}${data.call}/`;
    open.append(el("span", "visually-hidden", ` ${interpolate(gettext("of %(prisoner)s"), { prisoner: data.prisoner })}`));
    actions.append(open);
    const watchable = data.column === "live" || data.column === "paused";
    if (canControl && watchable) {
      const watching = watches.has(data.call);
      const button = el("button", "button button-small", watching ? gettext("Stop watching") : gettext("Watch"));
      button.type = "button";
      button.setAttribute("aria-pressed", String(watching));
      button.addEventListener("click", () => toggleWatch(data.call));
      actions.append(" ", button);
    }
    li.append(actions);
    const watch = watches.get(data.call);
    if (watch && watchable) li.append(watch.box);
  }
  return li;
}

function stopWatch(callId) {
  const watch = watches.get(callId);
  if (!watch) return;
  watch.peer.stop();
  watch.box.remove();
  watches.delete(callId);
}

function toggleWatch(callId) {
  if (watches.has(callId)) {
    stopWatch(callId);
  } else {
    if (watches.size >= WATCH_MAX) stopWatch(watches.keys().next().value); // oldest first
    const box = el("div", "tile-videos");
    const videos = {};
    const labels = { family: gettext("Video of the family"), prisoner: gettext("Video of the prisoner") };
    for (const side of ["family", "prisoner"]) {
      const video = el("video");
      video.muted = true;
      video.autoplay = true;
      video.playsInline = true;
      video.setAttribute("aria-label", labels[side]);
      videos[side] = video;
      box.append(video);
    }
    const peer = new MonitorPeer(`/ws/calls/${callId}/`, {
      onMedia(side, stream) { videos[side].srcObject = stream; videos[side].play().catch(() => {}); },
      onClosed(code, final) { if (final) stopWatch(callId); },
    }, { iceServers });
    watches.set(callId, { peer, box });
    peer.start();
  }
  renderGrid();
}

function renderGrid() {
  const byColumn = {};
  for (const list of grid.querySelectorAll("ul.tiles")) {
    byColumn[list.dataset.column] = list;
    list.replaceChildren();
  }
  const ordered = [...tiles.values()].sort((a, b) => a.starts_at.localeCompare(b.starts_at));
  for (const data of ordered) {
    const list = byColumn[data.column];
    if (list) list.append(renderTile(data));
  }
  for (const counter of grid.querySelectorAll("[data-count]")) {
    counter.textContent = byColumn[counter.dataset.count].children.length;
  }
  for (const [callId, watch] of watches) {
    const data = [...tiles.values()].find((t) => t.call === callId);
    if (!data || (data.column !== "live" && data.column !== "paused")) stopWatch(callId);
    else for (const video of watch.box.querySelectorAll("video")) video.play().catch(() => {});
  }
}

const openAlerts = new Map(); // alert id -> data (unacknowledged only)

function renderAlert(alert) {
  if (alert.acknowledged) openAlerts.delete(alert.id);
  else openAlerts.set(alert.id, alert);
}

// Alerts grouped per call, the call with the newest alert first, newest first within
// (the same order as the page the server renders).
function renderAlerts() {
  const newestFirst = [...openAlerts.values()].sort(
    (a, b) => b.created_at.localeCompare(a.created_at) || b.id - a.id);
  const groups = new Map();
  for (const alert of newestFirst) {
    if (!groups.has(alert.call)) groups.set(alert.call, []);
    groups.get(alert.call).push(alert);
  }
  const items = [];
  for (const [callId, alerts] of groups) {
    const first = alerts[0];
    const group = el("li", "alert-group");
    group.dataset.alertCall = callId;
    const heading = el("h3", "alert-call");
    const link = el("a", "", first.call_label || gettext("Open call"));
    link.href = first.call_url || `${grid.dataset.callsUrl}${callId}/`;
    heading.append(link);
    if (first.call_ended) heading.append(" ", el("span", "tag", gettext("call ended")));
    const list = el("ul", "alert-list");
    for (const alert of alerts) {
      const li = el("li", "alert-item");
      li.dataset.alert = alert.id;
      li.append(el("strong", "", alert.label), ` ${interpolate(gettext("at %(time)s"), { time: alert.time_label })} `);
      if (alert.snapshot_url) {
        const img = el("img", "alert-snapshot");
        img.src = alert.snapshot_url;
        img.alt = gettext("Snapshot of the unapproved face");
        li.append(img);
      }
      if (canControl) {
        const button = el("button", "button button-small", gettext("Acknowledge"));
        button.type = "button";
        button.addEventListener("click", () => send({ type: "ack", alert: alert.id }));
        li.append(button);
      }
      list.append(li);
    }
    group.append(heading, list);
    if (canControl && (alerts.length > 1 || first.call_ended)) {
      const all = el("button", "button button-secondary button-small",
        interpolate(ngettext("Acknowledge this call's alert", "Acknowledge all %(counter)s alerts of this call", alerts.length),
          { counter: alerts.length }));
      all.type = "button";
      all.addEventListener("click", () => { for (const a of alerts) send({ type: "ack", alert: a.id }); });
      group.append(all);
    }
    items.push(group);
  }
  if (!items.length) {
    const none = el("li", "muted", gettext("No alerts."));
    none.dataset.empty = "";
    items.push(none);
  }
  alertsList.replaceChildren(...items);
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function onMessage(event) {
  const message = JSON.parse(event.data);
  if (message.type === "snapshot") {
    tiles.clear();
    for (const data of message.calls) tiles.set(data.booking, data);
    renderGrid();
    openAlerts.clear();
    for (const alert of message.alerts) renderAlert(alert);
    renderAlerts();
  } else if (message.type === "call") {
    tiles.set(message.call.booking, message.call);
    renderGrid();
    if (message.call.column === "ended") {
      for (const alert of openAlerts.values()) if (alert.call === message.call.call) alert.call_ended = true;
      renderAlerts();
    }
  } else if (message.type === "alert") {
    renderAlert(message.alert);
    renderAlerts();
  }
  document.body.dataset.lastUpdate = String(Date.now());
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}${grid.dataset.socket}`);
  socket.addEventListener("open", () => {
    retry = 0;
    statusLine.textContent = gettext("Live updates connected");
    statusLine.className = "connection-status ok";
    clearInterval(heartbeatTimer);
    heartbeatTimer = setInterval(() => send({ type: "heartbeat" }), 5000);
  });
  socket.addEventListener("message", onMessage);
  socket.addEventListener("close", (event) => {
    clearInterval(heartbeatTimer);
    if (event.code === 4401 || event.code === 4403) {
      statusLine.textContent = gettext("You are no longer allowed to see this dashboard. Sign in again.");
      statusLine.className = "connection-status error";
      return;
    }
    retry = Math.min(retry + 1, 6);
    const delay = 500 * 2 ** (retry - 1);
    statusLine.textContent = gettext("Connection lost – reconnecting…");
    statusLine.className = "connection-status error";
    setTimeout(connect, delay);
  });
}

setInterval(() => {
  for (const span of grid.querySelectorAll(".time-left")) span.textContent = timeLeft(span.dataset.endsAt);
}, 1000);
connect();
