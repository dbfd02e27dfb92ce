// The officer's page for one call: both sides full size (sound on request), live
// status and time left, and the controls over the signalling socket. Without the
// socket the controls are plain forms that post to the server.
import { MonitorPeer, timeLeft } from "./monitor-peer.js";

// Words from Django's JavaScript catalogue (jsi18n, in the page's language), looked up
// when they are shown: English if the catalogue has not loaded, and the page still works.
function gettext(text) {
  return window.gettext ? window.gettext(text) : text;
}
function interpolate(format, values) {
  return format.replace(/%\((\w+)\)s/g, (_, name) => String(values[name]));
}

const root = document.getElementById("monitor");
const statusEl = document.getElementById("monitor-status");
const leftEl = document.getElementById("monitor-time-left");
const participantsEl = document.getElementById("monitor-participants");
const noticeEl = document.getElementById("monitor-notice");
const mediaStatus = document.getElementById("media-status");
const soundButton = document.getElementById("sound-button");
const videos = { family: document.getElementById("video-family"), prisoner: document.getElementById("video-prisoner") };
const iceServers = JSON.parse(document.getElementById("ice-servers").textContent || "[]");
// Functions, so that the words are looked up when shown (the catalogue is loaded by then).
const END_REASONS = () => ({
  completed: gettext("The call has ended."), time_up: gettext("Time is up: the call has ended."),
  terminated: gettext("The call was ended by staff."),
  revoked: gettext("The call was ended: an approval was withdrawn."),
  failed: gettext("The call could not continue."),
});
const ALERTS = () => ({
  unapproved_face: gettext("an unapproved face is on camera"),
  participant_dropped: gettext("a participant lost connection"),
  face_checks_off: gettext("face checks are off for the family's side (someone was checked by hand)"),
});
const SIDES = () => ({ family: gettext("family's side"), prisoner: gettext("prison laptop's side") });
let state = { status: root.dataset.status, ends_at: root.dataset.endsAt };
let offset = 0;

function notice(text, kind) {
  noticeEl.textContent = text;
  noticeEl.className = `call-alert call-alert-${kind || "info"}`;
  noticeEl.hidden = !text;
}

const eventList = document.getElementById("event-list");
function addEvent(event) {
  if (!eventList || eventList.querySelector(`[data-event="${event.id}"]`)) return;
  const empty = eventList.querySelector("[data-empty]");
  if (empty) empty.remove();
  const li = document.createElement("li");
  li.dataset.event = event.id;
  const time = document.createElement("time");
  time.dateTime = event.created_at;
  time.textContent = event.time_label;
  li.append(time, ` ${event.text}`);
  eventList.prepend(li); // newest first, as the page lists them
}

function render() {
  statusEl.textContent = state.status_label || state.status;
  root.dataset.status = state.status;
  leftEl.textContent = state.status === "live" || state.status === "paused" ? timeLeft(state.ends_at, offset) : "–";
  if (state.participants) {
    participantsEl.textContent = state.participants
      .map((p) => `${p.label || p.role}: ${p.connected ? (p.muted ? gettext("connected, microphone off") : gettext("connected")) : gettext("not connected")}`)
      .join(" · ");
  }
  for (const form of document.querySelectorAll("form[data-control]")) {
    const action = form.dataset.control;
    const usable = state.status !== "ended"
      && !(action === "pause" && state.status !== "live")
      && !(action === "resume" && state.status !== "paused");
    form.querySelector("button").disabled = !usable;
  }
}

const peer = new MonitorPeer(root.dataset.wsPath, {
  onState(message) {
    state = message;
    if (message.server_time) offset = Date.parse(message.server_time) - Date.now();
    render();
  },
  onMedia(side, stream) {
    videos[side].srcObject = stream;
    videos[side].play().catch(() => {});
    mediaStatus.textContent = gettext("Watching live.");
  },
  onMessage(message) {
    if (message.type === "error") notice(message.message, "warning");
    else if (message.type === "event") addEvent(message);
    else if (message.type === "message") {
      notice(interpolate(gettext("Message sent to both sides: %(text)s"), { text: message.text }), "info");
    }
    else if (message.type === "alert") {
      const sides = SIDES();
      const what = message.label || ALERTS()[message.kind] || gettext("something needs your attention");
      const side = message.kind !== "face_checks_off" && sides[message.side] ? ` (${sides[message.side]})` : "";
      notice(interpolate(gettext("Alert: %(what)s. Acknowledge it on the dashboard."), { what: `${what}${side}` }), "warning");
    }
    else if (message.type === "ended") {
      state = { ...state, status: "ended", end_reason: message.reason };
      render();
      const reasons = END_REASONS();
      notice(reasons[message.reason] || reasons.completed, "info");
    }
  },
  onClosed(code, final) {
    if (code === 4410) mediaStatus.textContent = gettext("The call has ended.");
    else if (final) mediaStatus.textContent = gettext("Live view closed. Reload the page to try again.");
    else mediaStatus.textContent = gettext("Connection lost – reconnecting…");
  },
}, { iceServers });

for (const form of document.querySelectorAll("form[data-control]")) {
  form.addEventListener("submit", (event) => {
    if (!peer.isOpen()) return; // fall back to the plain form post
    const field = form.querySelector("[name=reason], [name=text]");
    const value = field ? field.value.trim() : "";
    const action = form.dataset.control;
    if (action === "terminate" && !value) return; // the browser's "required" explains
    event.preventDefault();
    const message = { type: "control", action };
    if (action === "message") message.text = value; else message.reason = value;
    peer.send(message);
    if (field) field.value = "";
    if (action !== "message") notice("", "info");
  });
}

soundButton.addEventListener("click", () => {
  const on = soundButton.getAttribute("aria-pressed") !== "true";
  for (const video of Object.values(videos)) { video.muted = !on; video.play().catch(() => {}); }
  soundButton.setAttribute("aria-pressed", String(on));
  soundButton.textContent = on ? gettext("Turn sound off") : gettext("Turn sound on");
});

window.pvMonitor = peer; // for tests and troubleshooting (getStats)
setInterval(render, 1000);
render();
peer.start();
