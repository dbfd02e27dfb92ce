// A staff monitor on one call: the signalling socket (/ws/calls/<id>/, role decided by
// the server) and a receive-only peer with two audio + two video transceivers. The
// relay's answer maps each transceiver mid to "family" or "prisoner" (docs/signalling.md).
const FINAL_CLOSES = new Set([4401, 4403, 4404, 4409, 4410]);

function waitForIce(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, 5000); // send what we have rather than wait for ever
  });
}

export class MonitorPeer {
  // handlers: onState(state), onMedia(side, stream), onMessage(message), onClosed(code, final)
  constructor(wsPath, handlers, { media = true, iceServers = [] } = {}) {
    this.wsPath = wsPath;
    this.handlers = handlers;
    this.media = media;
    this.iceServers = iceServers;
    this.ws = null;
    this.pc = null;
    this.stopped = false;
    this.retries = 0;
    this.streams = { family: new MediaStream(), prisoner: new MediaStream() };
  }

  start() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${this.wsPath}`);
    this.ws = ws;
    let heartbeat = null;
    ws.addEventListener("open", () => {
      this.retries = 0;
      heartbeat = setInterval(() => this.send({ type: "heartbeat" }), 5000);
    });
    ws.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      this.handle(message);
    });
    ws.addEventListener("close", (event) => {
      clearInterval(heartbeat);
      if (this.ws !== ws) return;
      this.closePeer();
      const final = this.stopped || FINAL_CLOSES.has(event.code);
      if (this.handlers.onClosed) this.handlers.onClosed(event.code, final);
      if (final) return;
      this.retries += 1;
      const delay = Math.min(10, 2 ** Math.min(this.retries, 4)) * 1000;
      setTimeout(() => { if (!this.stopped) this.start(); }, delay);
    });
  }

  stop() {
    this.stopped = true;
    this.closePeer();
    if (this.ws) this.ws.close(1000);
  }

  isOpen() { return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN); }

  send(message) {
    if (!this.isOpen()) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  handle(message) {
    if (message.type === "state") {
      if (this.media && !this.pc && message.status !== "ended") this.startPeer();
    } else if (message.type === "error" && message.code === "relay_unavailable" && this.media) {
      // The relay died mid-call (or none was up): offer again; the server re-pins.
      const delay = this.relayRetries ? 3000 : 200;
      this.relayRetries = (this.relayRetries || 0) + 1;
      setTimeout(() => { if (!this.stopped && this.isOpen()) this.startPeer(); }, delay);
    } else if (message.type === "answer" && this.pc) {
      this.relayRetries = 0;
      this.tracks = message.tracks || {};
      this.pc.setRemoteDescription({ type: "answer", sdp: message.sdp }).catch(() => this.closePeer());
    }
    if (message.type === "state" && this.handlers.onState) this.handlers.onState(message);
    else if (this.handlers.onMessage) this.handlers.onMessage(message);
  }

  async startPeer() {
    this.closePeer();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    this.tracks = {};
    this.streams = { family: new MediaStream(), prisoner: new MediaStream() };
    for (const kind of ["audio", "audio", "video", "video"]) pc.addTransceiver(kind, { direction: "recvonly" });
    pc.addEventListener("track", (event) => {
      const side = this.tracks[event.transceiver.mid];
      if (!side) return;
      this.streams[side].addTrack(event.track);
      if (this.handlers.onMedia) this.handlers.onMedia(side, this.streams[side]);
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc !== this.pc || this.stopped) return;
      if (pc.connectionState === "failed") this.startPeer();
      if (pc.connectionState === "disconnected") {
        setTimeout(() => {
          if (pc === this.pc && pc.connectionState === "disconnected" && this.isOpen()) this.startPeer();
        }, 5000);
      }
    });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await waitForIce(pc);
    if (pc === this.pc) this.send({ type: "offer", sdp: pc.localDescription.sdp });
  }

  closePeer() {
    if (this.pc) { this.pc.close(); this.pc = null; }
  }
}

export function timeLeft(endsAt, offset = 0) {
  if (!endsAt) return "–";
  const seconds = Math.max(0, Math.round((Date.parse(endsAt) - (Date.now() + offset)) / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}
