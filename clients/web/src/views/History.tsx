// Sessions that were: a filtered list, one session's transcript with its cards and
// summary, exports, and uploading a recording.
import { useCallback, useEffect, useState } from "react";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { getCsrfToken, history } from "../api";
import { CallState } from "../gen/callcue/call/v1/call_pb";
import type { Session } from "../gen/callcue/gateway/v1/gateway_service_pb";
import { TranscriptFormat } from "../gen/callcue/gateway/v1/gateway_service_pb";
import type { GetSessionDetailResponse } from "../gen/callcue/console/v1/console_service_pb";
import { linesOf, seconds } from "../callState";
import { clock, speakerLabel, stateLabel } from "../labels";
import { download } from "../download";
import { navigate } from "../router";
import { Card } from "./Cards";
import { Transcript } from "./Transcript";

export function SessionList() {
  const [sessions, setSessions] = useState<Session[]>([]);
  const [next, setNext] = useState("");
  const [state, setState] = useState<CallState>(CallState.UNSPECIFIED);
  const [text, setText] = useState("");
  const [after, setAfter] = useState("");
  const [before, setBefore] = useState("");
  const [problem, setProblem] = useState("");

  const load = useCallback(
    async (token: string) => {
      setProblem("");
      try {
        const page = await history.listSessions({
          pageSize: 25,
          pageToken: token,
          state,
          text,
          createdAfter: after ? timestampFromDate(new Date(after)) : undefined,
          createdBefore: before ? timestampFromDate(new Date(before)) : undefined,
        });
        setSessions((shown) => (token ? [...shown, ...page.sessions] : page.sessions));
        setNext(page.nextPageToken);
      } catch (caught) {
        setProblem(ConnectError.from(caught).rawMessage);
      }
    },
    [state, text, after, before],
  );

  useEffect(() => {
    void load("");
  }, [load]);

  return (
    <section>
      <Upload />
      <div className="toolbar">
        <select value={state} onChange={(e) => setState(Number(e.target.value))} aria-label="state">
          <option value={CallState.UNSPECIFIED}>any state</option>
          <option value={CallState.ACTIVE}>active</option>
          <option value={CallState.ENDED}>ended</option>
          <option value={CallState.FAILED}>failed</option>
        </select>
        <input placeholder="text" value={text} onChange={(e) => setText(e.target.value)} aria-label="text" />
        <label>
          from <input type="date" value={after} onChange={(e) => setAfter(e.target.value)} />
        </label>
        <label>
          before <input type="date" value={before} onChange={(e) => setBefore(e.target.value)} />
        </label>
      </div>
      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      <table className="sessions">
        <thead>
          <tr>
            <th>started</th>
            <th>title</th>
            <th>rep</th>
            <th>state</th>
            <th>length</th>
            <th>talking points</th>
          </tr>
        </thead>
        <tbody>
          {sessions.map((session) => (
            <tr key={session.sessionId} onClick={() => navigate(`/history/${encodeURIComponent(session.sessionId)}`)} data-testid="session-row">
              <td>{session.createTime ? timestampDate(session.createTime).toLocaleString() : ""}</td>
              <td>{session.title}</td>
              <td>{session.metadata["rep"] ?? ""}</td>
              <td>{stateLabel(session.state)}</td>
              <td>{clock(seconds(session.audioDuration))}</td>
              <td>{session.detectionCount}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {next && <button onClick={() => void load(next)}>More</button>}
    </section>
  );
}

function Upload() {
  const [progress, setProgress] = useState<number | null>(null);
  const [problem, setProblem] = useState("");

  function send(file: File) {
    setProblem("");
    setProgress(0);
    const request = new XMLHttpRequest();
    request.open("POST", `/api/upload?filename=${encodeURIComponent(file.name)}`);
    request.setRequestHeader("x-csrf-token", getCsrfToken());
    request.setRequestHeader("content-type", file.type || "application/octet-stream");
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) setProgress((100 * event.loaded) / event.total);
    };
    request.onload = () => {
      let reply: { session_id?: string; error?: string } = {};
      try {
        reply = JSON.parse(request.responseText) as typeof reply;
      } catch {
        reply = { error: `the upload failed (HTTP ${request.status})` };
      }
      setProgress(null);
      if (reply.session_id) navigate(`/call/${encodeURIComponent(reply.session_id)}`);
      else setProblem(reply.error ?? `the upload failed (HTTP ${request.status})`);
    };
    request.onerror = () => {
      setProgress(null);
      setProblem("the upload did not reach the console; check the connection");
    };
    request.send(file);
  }

  return (
    <div className="toolbar">
      <label>
        Upload a recording{" "}
        <input
          type="file"
          accept="audio/*,video/webm"
          data-testid="upload-file"
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) send(file);
          }}
        />
      </label>
      {progress !== null && (
        <progress max={100} value={progress} data-testid="upload-progress">
          {progress.toFixed(0)}%
        </progress>
      )}
      {problem && (
        <span className="error" role="alert">
          {problem}
        </span>
      )}
    </div>
  );
}

export function SessionDetail({ sessionId }: { sessionId: string }) {
  const [detail, setDetail] = useState<GetSessionDetailResponse | null>(null);
  const [problem, setProblem] = useState("");

  useEffect(() => {
    history
      .getSessionDetail({ sessionId })
      .then(setDetail)
      .catch((caught: unknown) => setProblem(ConnectError.from(caught).rawMessage));
  }, [sessionId]);

  async function exportAs(format: TranscriptFormat) {
    try {
      const file = await history.exportTranscript({ sessionId, format });
      download(file.content, file.contentType, file.filename);
    } catch (caught) {
      setProblem(ConnectError.from(caught).rawMessage);
    }
  }

  if (problem) {
    return (
      <section className="error" role="alert">
        <h2>This session cannot be shown</h2>
        <p>{problem}</p>
      </section>
    );
  }
  if (!detail) return <p className="muted">Loading…</p>;
  const summary = detail.summary;
  return (
    <section>
      <div className="toolbar">
        <h2>{detail.session?.title || sessionId}</h2>
        <span>{stateLabel(detail.session?.state ?? CallState.UNSPECIFIED)}</span>
        <button onClick={() => void exportAs(TranscriptFormat.SRT)}>SRT</button>
        <button onClick={() => void exportAs(TranscriptFormat.WEBVTT)}>VTT</button>
        <button onClick={() => void exportAs(TranscriptFormat.JSON)}>JSON</button>
      </div>
      {summary && (
        <div className="summary" data-testid="summary">
          <span>length {clock(seconds(summary.duration))}</span>
          {summary.talkTimes.map((talk) => (
            <span key={talk.channel}>
              {speakerLabel(talk.speaker)} talked {clock(seconds(talk.talkTime))} ({talk.wordCount} words)
            </span>
          ))}
          {summary.keywordCounts.map((count) => (
            <span key={count.keywordId}>
              {count.title || count.phrase} ×{count.count}
            </span>
          ))}
        </div>
      )}
      <div className="call-columns">
        <div>
          <h2>Transcript</h2>
          <Transcript lines={linesOf(detail.segments)} follow={false} />
        </div>
        <div>
          <h2>Talking points</h2>
          {(summary?.talkingPoints ?? []).map((detection) => (
            <Card key={detection.detectionId} detection={detection} />
          ))}
        </div>
      </div>
    </section>
  );
}
