// The call page (family and terminal): camera → signalling socket → one peer with the
// relay. Protocol: docs/signalling.md. No trickle ICE: the offer is sent once ICE
// gathering has finished.
const root = document.getElementById("call");
const statusEl = document.getElementById("call-status");
const countdownEl = document.getElementById("call-countdown");
const alertEl = document.getElementById("call-alert");
const remoteVideo = document.getElementById("remote-video");
const localVideo = document.getElementById("local-video");
const leaveButton = document.getElementById("leave-button");
const rejoinButton = document.getElementById("rejoin-button");
const backLink = document.getElementById("back-link");
const fullscreenButton = document.getElementById("fullscreen-button");
const muteButton = document.getElementById("mute-button");
const qualityEl = document.getElementById("call-quality");
const qualityHint = document.getElementById("call-quality-hint");
const otherMutedEl = document.getElementById("other-muted");
const iceServers = JSON.parse(document.getElementById("ice-servers").textContent || "[]");
// The whole sentence per side, so that each language can word it its own way.
function waitingToJoin() {
  return root.dataset.role === "family"
    ? gettext("Waiting for the prison to join…")
    : gettext("Waiting for the family to join…");
}

const FINAL_CLOSES = {
  4401: gettext("You are signed out. Sign in again to join the call."),
  4403: gettext("This call is not yours."),
  4404: gettext("This call does not exist."),
  4409: gettext("The call is not open yet."),
  4410: gettext("The call has ended."),
  4412: gettext("This call is open in another window or on another device. Close this one."),
};
const END_REASONS = {
  completed: gettext("The call has ended."),
  time_up: gettext("Time is up: the call has ended."),
  terminated: gettext("Prison staff ended the call."),
  revoked: gettext("The call was ended because an approval was withdrawn."),
  failed: gettext("The call could not continue."),
};

const call = { pc: null, ws: null, stream: null, state: null, offset: 0, finished: false, left: false, retries: 0 };
window.pvCall = call; // for tests and troubleshooting (getStats)

function say(text) { statusEl.textContent = text; }
function alertText(text, kind) {
  alertEl.textContent = text;
  alertEl.className = "call-alert call-alert-" + (kind || "info");
  alertEl.hidden = !text;
}

async function startCamera() {
  try {
    call.stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: true,
    });
    localVideo.srcObject = call.stream;
    return true;
  } catch (error) {
    say(error && error.name === "NotAllowedError"
      ? gettext("Your browser is blocking the camera or microphone. Allow them, then reload this page.")
      : gettext("We could not start your camera or microphone. Check they are connected, then reload this page."));
    return false;
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
  call.ws = ws;
  let heartbeat = null;
  ws.addEventListener("open", () => {
    call.retries = 0;
    heartbeat = setInterval(() => send({ type: "heartbeat" }), 5000);
    if (call.muted) send({ type: "mute", muted: true }); // a new socket starts unmuted
  });
  ws.addEventListener("message", (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch { return; }
    handle(message);
  });
  ws.addEventListener("close", (event) => {
    clearInterval(heartbeat);
    if (call.ws !== ws) return;
    closePeer();
    if (call.finished || call.left) return;
    if (FINAL_CLOSES[event.code]) {
      finish(FINAL_CLOSES[event.code]);
      return;
    }
    // Dropped: rejoin while time remains. The server keeps the timer running.
    call.retries += 1;
    const delay = Math.min(10, 2 ** Math.min(call.retries, 4)) * 1000;
    say(gettext("Connection lost. Reconnecting…"));
    setTimeout(() => { if (!call.finished && !call.left) connect(); }, delay);
  });
}

function send(message) {
  if (call.ws && call.ws.readyState === WebSocket.OPEN) call.ws.send(JSON.stringify(message));
}

function handle(message) {
  switch (message.type) {
    case "state": onState(message); break;
    case "answer":
      call.relayRetries = 0;
      if (call.pc) call.pc.setRemoteDescription({ type: "answer", sdp: message.sdp }).catch(() => restartPeer());
      break;
    case "warning":
      alertText(interpolate(ngettext("%s minute left.", "%s minutes left.", message.minutes_left), [message.minutes_left]), "warning");
      break;
    case "message": alertText(interpolate(gettext("Message from prison staff: %s"), [message.text]), "info"); break;
    case "ended": {
      // The state just before says why staff ended it, when they did (end_note).
      const note = call.state && call.state.end_note;
      const text = END_REASONS[message.reason] || END_REASONS.completed;
      finish(message.reason === "terminated" && note ? interpolate(gettext("%(text)s Reason given: %(note)s"), { text, note }, true) : text);
      break;
    }
    case "error":
      // A relay that died mid-call: offer again at once (the server re-pins the call to
      // a live relay); if that fails too, wait a little before each further try.
      if (message.code === "relay_unavailable" || message.code === "bad_sdp") {
        setTimeout(restartPeer, call.relayRetries === 0 ? 200 : 3000);
        call.relayRetries = (call.relayRetries || 0) + 1;
      }
      break;
    default: break; // clients ignore unknown types
  }
}

function onState(state) {
  call.state = state;
  if (state.server_time) call.offset = Date.parse(state.server_time) - Date.now();
  const others = (state.participants || []).filter((p) => p.role !== root.dataset.role);
  const otherHere = others.every((p) => p.connected);
  if (otherMutedEl) otherMutedEl.hidden = !others.some((p) => p.connected && p.muted);
  if (state.status === "ended") return;
  if (state.status === "paused") {
    say(state.pause_reason === "unapproved_face"
      ? gettext("Call paused: someone who is not approved for this call is on camera. It resumes when only approved people are in view.")
      : gettext("Call paused by prison staff."));
  } else if (!otherHere) {
    say(waitingToJoin());
  } else {
    say(state.status === "live" ? gettext("You are connected.") : waitingToJoin());
  }
  if (!call.pc) startPeer();
  tick();
}

function tick() {
  const state = call.state;
  if (!state || !state.ends_at || state.status === "ended") {
    countdownEl.textContent = state && state.status === "waiting" ? gettext("Not started") : "--:--";
    return;
  }
  if (state.status === "paused") return; // paused time is given back: the clock stops
  const left = Math.max(0, Date.parse(state.ends_at) - (Date.now() + call.offset));
  const minutes = Math.floor(left / 60000);
  const seconds = Math.floor((left % 60000) / 1000);
  countdownEl.textContent = `${minutes}:${String(seconds).padStart(2, "0")}`;
}
setInterval(tick, 1000);

function waitForIce(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 5000); // send what we have rather than wait for ever
  });
}

async function startPeer() {
  closePeer();
  const pc = new RTCPeerConnection({ iceServers });
  call.pc = pc;
  for (const track of call.stream.getTracks()) pc.addTrack(track, call.stream);
  lastStats = null;
  pc.addEventListener("track", (event) => {
    if (event.track.kind === "video" || !remoteVideo.srcObject) {
      remoteVideo.srcObject = event.streams[0] || new MediaStream([event.track]);
    }
  });
  pc.addEventListener("connectionstatechange", () => {
    if (pc !== call.pc) return;
    if (pc.connectionState === "failed") restartPeer();
    // Media stopped arriving (the relay or the network went away): if it has not come
    // back by itself within 5 s, start again rather than wait ~30 s for "failed".
    if (pc.connectionState === "disconnected") {
      setTimeout(() => { if (pc === call.pc && pc.connectionState === "disconnected") restartPeer(); }, 5000);
    }
  });
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  await waitForIce(pc);
  if (pc === call.pc) send({ type: "offer", sdp: pc.localDescription.sdp });
}

function restartPeer() {
  if (!call.finished && !call.left && call.ws && call.ws.readyState === WebSocket.OPEN) startPeer();
}

function closePeer() {
  if (call.pc) { call.pc.close(); call.pc = null; }
}

function finish(text) {
  call.finished = true;
  closePeer();
  if (call.stream) call.stream.getTracks().forEach((t) => t.stop());
  remoteVideo.srcObject = null;
  say(text);
  countdownEl.textContent = "0:00";
  leaveButton.hidden = true;
  rejoinButton.hidden = true;
  backLink.hidden = false;
  document.body.classList.add("call-finished");
  if (call.ws) call.ws.close();
}

leaveButton.addEventListener("click", () => {
  if (!window.confirm(gettext("Leave the call? You can rejoin while there is time left."))) return;
  call.left = true;
  send({ type: "leave" });
  closePeer();
  say(gettext("You have left the call."));
  leaveButton.hidden = true;
  rejoinButton.hidden = false;
  backLink.hidden = false;
});

rejoinButton.addEventListener("click", () => { window.location.reload(); });

// Microphone off and on. The camera stays on: face checks need it (the pre-call page says so).
function setMuted(muted) {
  call.muted = muted;
  if (call.stream) for (const track of call.stream.getAudioTracks()) track.enabled = !muted;
  muteButton.setAttribute("aria-pressed", String(muted));
  muteButton.textContent = muted ? gettext("Turn microphone on") : gettext("Turn microphone off");
  send({ type: "mute", muted });
}
muteButton.addEventListener("click", () => setMuted(!call.muted));

// A simple connection-quality indicator from getStats(): good, poor or reconnecting.
const QUALITY = { good: gettext("Good connection"), poor: gettext("Poor connection"), reconnecting: gettext("Reconnecting…"), unknown: gettext("Checking connection…") };
let lastStats = null;
function showQuality(quality) {
  qualityEl.dataset.quality = quality;
  qualityEl.textContent = QUALITY[quality];
  qualityEl.className = `tag ${quality === "good" ? "tag-ok" : quality === "unknown" ? "" : "tag-warn"}`;
  qualityHint.hidden = quality !== "poor";
}
export function classify(previous, current, connectionState) {
  if (connectionState === "disconnected" || connectionState === "failed") return "reconnecting";
  if (!previous || !current) return "unknown";
  const received = current.packetsReceived - previous.packetsReceived;
  const lost = current.packetsLost - previous.packetsLost;
  if (received <= 0) return "poor";
  const lossRate = lost / (received + Math.max(lost, 0));
  if (lossRate > 0.05 || (current.rtt !== null && current.rtt > 0.4) || current.jitter > 0.1) return "poor";
  return "good";
}
async function sampleQuality() {
  const pc = call.pc;
  if (call.finished || call.left) return;
  if (!pc) { showQuality("reconnecting"); return; }
  let stats;
  try { stats = await pc.getStats(); } catch { return; }
  const current = { packetsReceived: 0, packetsLost: 0, jitter: 0, rtt: null };
  stats.forEach((report) => {
    if (report.type === "inbound-rtp") {
      current.packetsReceived += report.packetsReceived || 0;
      current.packetsLost += report.packetsLost || 0;
      current.jitter = Math.max(current.jitter, report.jitter || 0);
    } else if (report.type === "candidate-pair" && report.nominated && report.currentRoundTripTime !== undefined) {
      current.rtt = report.currentRoundTripTime;
    }
  });
  showQuality(classify(lastStats, current, pc.connectionState));
  lastStats = current;
}
setInterval(sampleQuality, 2000);

if (fullscreenButton) {
  fullscreenButton.addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else document.documentElement.requestFullscreen().catch(() => {});
  });
  // A kiosk asks before the page is left during a call.
  window.addEventListener("beforeunload", (event) => {
    if (!call.finished && !call.left) event.preventDefault();
  });
}

(async () => {
  if (await startCamera()) {
    say(gettext("Connecting…"));
    connect();
  }
})();
