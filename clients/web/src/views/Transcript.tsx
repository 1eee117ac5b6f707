import { useEffect, useRef } from "react";
import type { Line } from "../callState";
import { clock, speakerLabel } from "../labels";

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
        <p key={line.key} className="line" data-testid="line">
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
      ))}
      <div ref={end} />
    </div>
  );
}
