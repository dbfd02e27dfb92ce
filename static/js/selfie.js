// Selfie through the webcam (getUserMedia): draw a frame to a canvas and put it in the
// form's selfie file input, so the normal form submission sends it. Without a camera
// (or permission), the file input stays as it is: phones open their camera from it.
const root = document.querySelector("[data-selfie]");

function setup(container) {
  const camera = container.querySelector("[data-selfie-camera]");
  const video = container.querySelector("[data-selfie-video]");
  const canvas = container.querySelector("[data-selfie-canvas]");
  const preview = container.querySelector("[data-selfie-preview]");
  const takeButton = container.querySelector("[data-selfie-take]");
  const retakeButton = container.querySelector("[data-selfie-retake]");
  const status = container.querySelector("[data-selfie-status]");
  const input = container.querySelector("input[type=file]");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.DataTransfer) {
    return;
  }
  let stream = null;
  video.addEventListener("loadedmetadata", () => {
    container.dataset.cameraReady = "true";
  });

  function stop() {
    if (stream) {
      stream.getTracks().forEach((track) => track.stop());
      stream = null;
    }
  }

  async function start() {
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } },
        audio: false,
      });
    } catch (error) {
      camera.hidden = false;
      video.hidden = true;
      takeButton.hidden = true;
      status.textContent = gettext("We could not use your camera. Choose a photo below instead.");
      return false;
    }
    video.srcObject = stream;
    camera.hidden = false;
    video.hidden = false;
    preview.hidden = true;
    takeButton.hidden = false;
    retakeButton.hidden = true;
    status.textContent = gettext("Camera ready.");
    return true;
  }

  function take() {
    const width = video.videoWidth;
    const height = video.videoHeight;
    if (!width || !height) {
      status.textContent = gettext("The camera is not ready yet. Try again in a moment.");
      return;
    }
    canvas.width = width;
    canvas.height = height;
    canvas.getContext("2d").drawImage(video, 0, 0, width, height);
    canvas.toBlob(
      (blob) => {
        if (!blob) {
          status.textContent = gettext("The selfie could not be taken. Choose a photo below instead.");
          return;
        }
        const file = new File([blob], "selfie.jpg", { type: "image/jpeg" });
        const transfer = new DataTransfer();
        transfer.items.add(file);
        input.files = transfer.files;
        preview.src = URL.createObjectURL(blob);
        preview.hidden = false;
        video.hidden = true;
        takeButton.hidden = true;
        retakeButton.hidden = false;
        container.dataset.selfieTaken = "true";
        status.textContent = gettext("Selfie taken. Send it with the form, or take it again.");
        stop();
      },
      "image/jpeg",
      0.92,
    );
  }

  takeButton.addEventListener("click", take);
  retakeButton.addEventListener("click", () => {
    delete container.dataset.selfieTaken;
    delete container.dataset.cameraReady;
    start();
  });
  window.addEventListener("pagehide", stop);
  start();
}

if (root) {
  setup(root);
}

// Move focus to the error summary so screen reader and keyboard users hear it first.
const summary = document.querySelector("[data-error-summary]");
if (summary) {
  summary.focus();
}
