// The supervisor's wall: every live call of the tenant, one tile each.
import { useEffect, useState } from "react";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { live } from "../api";
import { pause } from "../backoff";
import type { LiveCall } from "../gen/callcue/console/v1/console_service_pb";
import { TalkingPointCategory } from "../gen/callcue/call/v1/call_pb";
import { CATEGORIES, categoryLabel, clock } from "../labels";
import { navigate } from "../router";

const HIGHLIGHT_KEY = "callcue.wall.highlight";

function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

export function Wall() {
  const [calls, setCalls] = useState<Map<string, LiveCall>>(new Map());
  const [connection, setConnection] = useState("connecting");
  const [highlight, setHighlight] = useState<TalkingPointCategory>(
    Number(localStorage.getItem(HIGHLIGHT_KEY) ?? TalkingPointCategory.COMPLIANCE),
  );
  const now = useNow();

  useEffect(() => {
    const stop = new AbortController();
    (async () => {
      let failures = 0;
      while (!stop.signal.aborted) {
        try {
          const fresh = new Map<string, LiveCall>();
          let caughtUp = false;
          for await (const reply of live.watchLiveCalls({}, { signal: stop.signal })) {
            const call = reply.call;
            if (reply.caughtUp) {
              caughtUp = true;
              failures = 0;
              setConnection("connected");
              setCalls(new Map(fresh));
            }
            if (!call) continue;
            if (call.ended) fresh.delete(call.sessionId);
            else fresh.set(call.sessionId, call);
            // A fresh wall replaces the old one only once it is whole.
            if (caughtUp) setCalls(new Map(fresh));
          }
        } catch (caught) {
          if (stop.signal.aborted) return;
          setConnection(`reconnecting (${ConnectError.from(caught).rawMessage})`);
        }
        await pause(failures);
        failures += 1;
      }
    })();
    return () => stop.abort();
  }, []);

  const tiles = [...calls.values()].sort(
    (a, b) => (a.startTime ? timestampMs(a.startTime) : 0) - (b.startTime ? timestampMs(b.startTime) : 0),
  );
  return (
    <section>
      <div className="toolbar">
        <h2>Live calls ({tiles.length})</h2>
        <label>
          highlight
          <select
            value={highlight}
            onChange={(e) => {
              setHighlight(Number(e.target.value));
              localStorage.setItem(HIGHLIGHT_KEY, e.target.value);
            }}
          >
            {CATEGORIES.map((category) => (
              <option key={category} value={category}>
                {categoryLabel(category)}
              </option>
            ))}
          </select>
        </label>
        <span className="muted" data-testid="wall-connection">
          {connection}
        </span>
      </div>
      {tiles.length === 0 && <p className="muted">No live calls right now.</p>}
      <div className="wall">
        {tiles.map((call) => {
          const hot = call.categoryCounts.some((c) => c.category === highlight && c.count > 0);
          const started = call.startTime ? timestampMs(call.startTime) : now;
          return (
            <button
              key={call.sessionId}
              className={`tile${hot ? " hot" : ""}`}
              data-testid="wall-tile"
              data-session-id={call.sessionId}
              onClick={() => navigate(`/call/${encodeURIComponent(call.sessionId)}`)}
            >
              <strong>{call.title || call.sessionId}</strong>
              <span>{call.rep || "unassigned"}</span>
              <span>{clock((now - started) / 1000)}</span>
              <span className="last-card">
                {call.lastDetection?.talkingPoint?.title ?? call.lastDetection?.phrase ?? "no talking points yet"}
              </span>
              <span className="counts">
                {call.categoryCounts.map((c) => (
                  <span key={c.category} className="count">
                    {categoryLabel(c.category)} {c.count}
                  </span>
                ))}
              </span>
            </button>
          );
        })}
      </div>
    </section>
  );
}
