// Follows one call's events. A dropped stream is resumed after the last event applied,
// with growing pauses, for as long as the view is open and the call is not over.
import { useEffect, useState } from "react";
import { Code, ConnectError } from "@connectrpc/connect";
import { live } from "./api";
import { pause } from "./backoff";
import { applyEvent, emptyCall, isOver, type CallView } from "./callState";

export type Connection = "connecting" | "connected" | "reconnecting" | "ended" | "refused";

export function useCallEvents(sessionId: string): {
  view: CallView;
  connection: Connection;
  error: string;
} {
  const [view, setView] = useState<CallView>(emptyCall);
  const [connection, setConnection] = useState<Connection>("connecting");
  const [error, setError] = useState("");

  useEffect(() => {
    const stop = new AbortController();
    let current = emptyCall;
    setView(emptyCall);
    setConnection("connecting");
    setError("");
    (async () => {
      let failures = 0;
      while (!stop.signal.aborted) {
        try {
          const stream = live.watchCall(
            { sessionId, afterSequence: current.lastSequence },
            { signal: stop.signal },
          );
          for await (const reply of stream) {
            if (!reply.event) continue;
            failures = 0;
            setConnection("connected");
            current = applyEvent(current, reply.event, Date.now());
            setView(current);
          }
          if (isOver(current.state)) {
            setConnection("ended");
            return;
          }
        } catch (caught) {
          if (stop.signal.aborted) return;
          const failure = ConnectError.from(caught);
          if (
            failure.code === Code.PermissionDenied ||
            failure.code === Code.Unauthenticated ||
            failure.code === Code.InvalidArgument ||
            failure.code === Code.NotFound
          ) {
            setConnection("refused");
            setError(failure.rawMessage);
            return;
          }
          setError(failure.rawMessage);
        }
        setConnection("reconnecting");
        await pause(failures);
        failures += 1;
      }
    })();
    return () => stop.abort();
  }, [sessionId]);

  return { view, connection, error };
}
