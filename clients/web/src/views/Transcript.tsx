import { memo, useEffect, useRef } from "react";
import type { Line } from "../callState";
import { clock, speakerLabel } from "../labels";

// A line re-renders only when its own words change: a busy call view redraws one line
// per event, not the whole transcript.
const TranscriptLine = memo(
  function TranscriptLine({ line }: { line: Line }) {
    return (
      <p className="line" data-testid="line">
        <span className="time">{clock(line.start)}</span>
        <span className={`speaker speaker-${speakerLabel(line.speaker)}`}>{speakerLabel(line.speaker)}</span>
        <span className="text">
          {line.finalText && (
            <span className="final" data-testid="final-text">
              {line.finalText}
            </span>
          )}
          {line.partialText && (
            <span className="partial" data-testid="partial-text">
              {" "}
              {line.partialText}
            </span>
          )}
        </span>
      </p>
    );
  },
  (before, after) =>
    before.line.finalText === after.line.finalText &&
    before.line.partialText === after.line.partialText &&
    before.line.start === after.line.start &&
    before.line.speaker === after.line.speaker,
);

export function Transcript({ lines, follow }: { lines: Line[]; follow: boolean }) {
  const end = useRef<HTMLDivElement>(null);
  const last = lines[lines.length - 1];
  const tail = last ? last.finalText + last.partialText : "";
  useEffect(() => {
    if (follow) end.current?.scrollIntoView({ block: "nearest" });
  }, [lines.length, tail, follow]);
  if (lines.length === 0) return <p className="muted">The transcript appears here as people speak.</p>;
  return (
    <div className="transcript" data-testid="transcript">
      {lines.map((line) => (
        <TranscriptLine key={line.key} line={line} />
      ))}
      <div ref={end} />
    </div>
  );
}
