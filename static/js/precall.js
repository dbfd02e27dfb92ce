// Pre-call check on the join page: show the camera, a microphone level, and a clear
// message when either is blocked or missing. The Join button waits for a working camera.
const section = document.getElementById("precall");
const video = document.getElementById("precall-video");
const statusEl = document.getElementById("precall-status");
const level = document.getElementById("precall-level");
const retry = document.getElementById("precall-retry");
const join = document.getElementById("join-button");

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
    // The call page asks for the devices again; release them here.
    window.addEventListener("pagehide", () => stream.getTracks().forEach((t) => t.stop()));
  } catch (error) {
    fail(error);
  }
}

function fail(error) {
  statusEl.textContent = explain(error);
  statusEl.className = "precall-status precall-problem";
  retry.hidden = false;
  join.disabled = true;
}

join.disabled = true;
retry.addEventListener("click", check);
check();
