// Captures the microphone as 16-bit PCM (AudioWorklet) and streams it to the console's
// WebSocket as a new call. 16 kHz is asked for (what Whisper hears); if the browser
// cannot resample, the device rate is used and the server resamples.
import { getCsrfToken } from "./api";

export interface MicrophoneCall {
  sessionId: string;
  startedAt: number;
  stop(): void;
  closed: Promise<string>;
}

export async function startMicrophoneCall(title: string, playbookIds: string[]): Promise<MicrophoneCall> {
  const media = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
  });
  let context: AudioContext;
  try {
    context = new AudioContext({ sampleRate: 16000 });
  } catch {
    context = new AudioContext();
  }
  // A context made after the click's awaits may start suspended (autoplay rules).
  await context.resume();
  await context.audioWorklet.addModule("/pcm-capture.js");
  const source = context.createMediaStreamSource(media);
  const capture = new AudioWorkletNode(context, "pcm-capture");
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}/ws/microphone`);
  socket.binaryType = "arraybuffer";

  const release = () => {
    capture.port.onmessage = null;
    source.disconnect();
    capture.disconnect();
    media.getTracks().forEach((track) => track.stop());
    void context.close();
  };

  let reason = "";
  const closed = new Promise<string>((resolve) => {
    socket.addEventListener("close", (event) => {
      release();
      resolve(reason || (event.code === 1000 ? "" : event.reason || `closed (${event.code})`));
    });
  });

  const sessionId = await new Promise<string>((resolve, reject) => {
    socket.addEventListener("open", () => {
      socket.send(
        JSON.stringify({
          csrf_token: getCsrfToken(),
          sample_rate: context.sampleRate,
          title,
          playbook_ids: playbookIds,
        }),
      );
    });
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string") return;
      const reply = JSON.parse(event.data) as { session_id?: string; error?: string };
      if (reply.error) {
        reason = reply.error;
        reject(new Error(reply.error));
      } else if (reply.session_id) {
        resolve(reply.session_id);
      }
    });
    socket.addEventListener("close", () => reject(new Error(reason || "the console closed the connection")));
  });

  const startedAt = Date.now();
  capture.port.onmessage = (event: MessageEvent<ArrayBuffer>) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(event.data);
  };
  source.connect(capture);
  // The graph is only pulled when it reaches the output; a muted one keeps the rep from
  // hearing themselves.
  const mute = context.createGain();
  mute.gain.value = 0;
  capture.connect(mute).connect(context.destination);

  return {
    sessionId,
    startedAt,
    closed,
    stop() {
      capture.port.onmessage = null;
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ end: true }));
    },
  };
}
