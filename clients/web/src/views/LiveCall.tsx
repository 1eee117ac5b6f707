// The rep's view of one call: transcript, cards, and a status line.
import { useMemo } from "react";
import { useCallEvents } from "../useCallEvents";
import { linesOf, seconds } from "../callState";
import { clock, stateLabel } from "../labels";
import { CardList } from "./Cards";
import { Transcript } from "./Transcript";

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export function LiveCall({ sessionId, audioStartedAt }: { sessionId: string; audioStartedAt?: number }) {
  const { view, connection, error } = useCallEvents(sessionId);
  const lines = useMemo(() => linesOf(view.finals, view.partials.values()), [view.finals, view.partials]);
  // Only for a call this browser streams does it know when each word was spoken.
  const delays =
    audioStartedAt === undefined
      ? []
      : view.finals.map(
          (segment) =>
            ((view.receivedAt.get(segment.segmentId) ?? 0) - audioStartedAt) / 1000 - seconds(segment.endOffset),
        );
  if (connection === "refused") {
    return (
      <section className="error" role="alert">
        <h2>This call cannot be shown</h2>
        <p>{error}</p>
      </section>
    );
  }
  return (
    <section className="live-call">
      <div className="status-line" data-testid="status-line">
        <span className={`connection ${connection}`} data-testid="connection">
          {connection}
        </span>
        <span data-testid="call-state">{stateLabel(view.state)}</span>
        <span data-testid="call-clock">{clock(view.audioSeconds)}</span>
        {view.engine && (
          <span>
            {view.engine} {view.model}
          </span>
        )}
        {view.progress > 0 && view.progress < 100 && <span>processing {view.progress.toFixed(0)}%</span>}
        <span>word latency {delays.length ? `${median(delays).toFixed(2)} s` : "–"}</span>
        <span className="muted">session {sessionId}</span>
        {connection === "reconnecting" && error && <span className="muted">({error})</span>}
      </div>
      {view.message && <p className="muted">{view.message}</p>}
      <div className="call-columns">
        <div>
          <h2>Transcript</h2>
          <Transcript lines={lines} follow />
        </div>
        <div>
          <h2>Talking points</h2>
          <CardList cards={view.cards} />
        </div>
      </div>
    </section>
  );
}
