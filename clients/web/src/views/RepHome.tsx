// A rep starts a call from the microphone, or attaches to one already running.
import { useState } from "react";
import { startMicrophoneCall, type MicrophoneCall } from "../microphone";
import { LiveCall } from "./LiveCall";
import { navigate } from "../router";

export function RepHome() {
  const [call, setCall] = useState<MicrophoneCall | null>(null);
  const [title, setTitle] = useState("");
  const [playbook, setPlaybook] = useState("");
  const [attachTo, setAttachTo] = useState("");
  const [problem, setProblem] = useState("");
  const [busy, setBusy] = useState(false);

  async function start() {
    setProblem("");
    setBusy(true);
    try {
      const started = await startMicrophoneCall(title, playbook ? [playbook] : []);
      setCall(started);
      void started.closed.then((reason) => {
        if (reason) setProblem(reason);
      });
    } catch (caught) {
      setProblem(caught instanceof Error ? caught.message : String(caught));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section>
      <div className="toolbar">
        {call ? (
          <button onClick={() => call.stop()} data-testid="stop-call">
            End call
          </button>
        ) : (
          <>
            <input placeholder="call title" value={title} onChange={(e) => setTitle(e.target.value)} aria-label="call title" />
            <input placeholder="playbook (default)" value={playbook} onChange={(e) => setPlaybook(e.target.value)} aria-label="playbook" />
            <button onClick={start} disabled={busy} data-testid="start-call">
              Start call from microphone
            </button>
            <span className="separator">or</span>
            <input placeholder="session id" value={attachTo} onChange={(e) => setAttachTo(e.target.value.trim())} aria-label="session id" />
            <button onClick={() => attachTo && navigate(`/call/${encodeURIComponent(attachTo)}`)} data-testid="attach">
              Attach
            </button>
          </>
        )}
      </div>
      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      {call && <LiveCall sessionId={call.sessionId} audioStartedAt={call.startedAt} />}
    </section>
  );
}
