// Pre-call check on the join page: show the camera, a microphone level, and a clear
// message when either is blocked or missing. The Join button waits for a working camera.
// Optionally (a tick box, unticked), a few frames of the camera go to the server as
// the visitor's face data (issue 16); the Join button never waits for that.
const section = document.getElementById("precall");
const video = document.getElementById("precall-video");
const statusEl = document.getElementById("precall-status");
const level = document.getElementById("precall-level");
const retry = document.getElementById("precall-retry");
const join = document.getElementById("join-button");
const enrol = document.getElementById("precall-enrol");
const enrolTick = document.getElementById("precall-enrol-tick");
const enrolStatus = document.getElementById("precall-enrol-status");
let cameraOn = false;
let enrolBusy = false;

function explain(error) {
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return gettext("Your browser is blocking the camera or microphone. Allow them for this site (look for the camera icon in the address bar), then choose “Try again”.");
    case "NotFoundError":
    case "OverconstrainedError":
      return gettext("We could not find a camera or microphone. Plug one in or use a phone or tablet with a camera, then choose “Try again”.");
    case "NotReadableError":
    case "AbortError":
      return gettext("Another app is using your camera or microphone. Close it, then choose “Try again”.");
    default:
      return gettext("Your browser cannot use a camera here. Try an up-to-date Chrome, Edge, Firefox or Safari.");
  }
}

function showLevel(stream) {
  const AudioContext = window.AudioContext || window.webkitAudioContext;
  if (!AudioContext || stream.getAudioTracks().length === 0) return;
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  context.createMediaStreamSource(stream).connect(analyser);
  const data = new Uint8Array(analyser.fftSize);
  const draw = () => {
    analyser.getByteTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v - 128));
    level.className = "precall-level precall-level-" + Math.min(10, Math.round(peak / 6));
    requestAnimationFrame(draw);
  };
  draw();
}

async function check() {
  retry.hidden = true;
  statusEl.textContent = gettext("Checking your camera and microphone…");
  statusEl.className = "precall-status";
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    fail(new Error("unsupported"));
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    video.srcObject = stream;
    const missing = [];
    if (stream.getVideoTracks().length === 0) missing.push("camera");
    if (stream.getAudioTracks().length === 0) missing.push("microphone");
    if (missing.length) {
      fail({ name: "NotFoundError" });
      return;
    }
    showLevel(stream);
    statusEl.textContent = section.dataset.okText + " " + gettext("Speak to see the microphone level move.");
    statusEl.className = "precall-status precall-ok";
    join.disabled = false;
    cameraOn = true;
    // The call page asks for the devices again; release them here.
    window.addEventListener("pagehide", () => stream.getTracks().forEach((t) => t.stop()));
    sendFrames();
  } catch (error) {
    fail(error);
  }
}

function fail(error) {
  statusEl.textContent = explain(error);
  statusEl.className = "precall-status precall-problem";
  retry.hidden = false;
  join.disabled = true;
  cameraOn = false;
}

// --- Frames of this check as face data (only when ticked and the camera works) -----

const NOT_SENT = () =>
  gettext("The pictures could not be sent, so nothing was kept. Your call is not affected.");
const NOT_CHECKED = () =>
  gettext("We could not check the pictures this time, so we did not keep them. Your call is not affected.");

function wait(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function videoReady() {
  if (video.videoWidth && video.readyState >= 2) return Promise.resolve();
  return new Promise((resolve) => video.addEventListener("loadeddata", resolve, { once: true }));
}

function grab(canvas) {
  const scale = Math.min(1, Number(enrol.dataset.maxWidth) / video.videoWidth);
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", Number(enrol.dataset.quality)));
}

function say(text, state) {
  enrolStatus.textContent = text;
  enrolStatus.className = "precall-status precall-enrol-status" + (state ? " precall-" + state : "");
}

// The endpoint answers JSON; anything else (a sign-in page, a proxy's error page) is a failure.
async function answer(response) {
  if (!(response.headers.get("Content-Type") || "").startsWith("application/json")) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

async function sendFrames() {
  if (!enrol || enrolBusy || !enrolTick.checked || !cameraOn) return;
  enrolBusy = true;
  let kept = false;
  try {
    say(gettext("Taking the pictures. Look at the camera."), "");
    await Promise.race([videoReady(), wait(5000)]);
    if (!video.videoWidth) throw new Error("no video");
    const canvas = document.createElement("canvas");
    const body = new FormData();
    const count = Number(enrol.dataset.frames);
    for (let n = 1; n <= count; n++) {
      if (n > 1) await wait(Number(enrol.dataset.intervalMs));
      const blob = await grab(canvas);
      if (!blob) throw new Error("no picture");
      body.append("frame", blob, `frame-${n}.jpg`);
    }
    if (!enrolTick.checked) {
      say("", ""); // unticked while the pictures were taken: nothing is sent
      return;
    }
    enrolTick.disabled = true;
    say(gettext("Sending the pictures…"), "");
    const token = document.querySelector("input[name=csrfmiddlewaretoken]");
    let data = await answer(
      await fetch(enrol.dataset.url, {
        method: "POST",
        body,
        credentials: "same-origin",
        cache: "no-store",
        headers: { "X-CSRFToken": token ? token.value : "" },
      }),
    );
    // The face check runs in the background: ask what became of it for up to a minute.
    const poll = data && data.status === "pending" && data.poll;
    for (let tries = 0; poll && data && data.status === "pending" && tries < 30; tries++) {
      say(data.message, "");
      await wait(2000);
      try {
        data = await answer(await fetch(poll, { credentials: "same-origin", cache: "no-store" }));
      } catch {
        data = null;
      }
    }
    if (data && data.message && data.status !== "pending" && (data.status || !poll)) {
      say(data.message, data.status === "kept" ? "ok" : "problem"); // an outcome, or a refusal
    } else {
      say(poll ? NOT_CHECKED() : NOT_SENT(), "problem"); // sent but no outcome, or not sent
    }
    kept = Boolean(data && data.status === "kept");
  } catch {
    say(NOT_SENT(), "problem");
  } finally {
    enrolBusy = false;
    // Kept: done for this visit. Otherwise they may tick the box again to retry.
    enrolTick.disabled = kept;
    if (!kept) enrolTick.checked = false;
  }
}

join.disabled = true;
retry.addEventListener("click", check);
if (enrol) {
  enrol.hidden = false;
  enrolTick.addEventListener("change", sendFrames);
}
check();
