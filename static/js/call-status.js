// Read-only call page (headquarters): the call's status, kept current from the
// establishment's dashboard socket (HQ may watch the dashboard, not join the call).
const root = document.getElementById("monitor");
const statusEl = document.getElementById("monitor-status");
const callId = root.dataset.callId;
let retry = 0;

function show(tile) {
  if (!tile || tile.call !== callId) return;
  statusEl.textContent = tile.status_label || tile.status;
  root.dataset.status = tile.status;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${root.dataset.dashboardSocket}`);
  socket.addEventListener("open", () => { retry = 0; });
  socket.addEventListener("message", (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch { return; }
    if (message.type === "snapshot") (message.calls || []).forEach(show);
    else if (message.type === "call") show(message.call);
  });
  socket.addEventListener("close", (event) => {
    if (event.code === 4401 || event.code === 4403) return;
    retry = Math.min(retry + 1, 6);
    setTimeout(connect, 500 * 2 ** (retry - 1));
  });
}
connect();
