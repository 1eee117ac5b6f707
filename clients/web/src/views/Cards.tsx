// Talking-point cards. Bodies are Markdown from playbooks: rendered without raw HTML, so
// a playbook cannot put script or markup on a rep's screen; links open in a new tab.
import { memo } from "react";
import Markdown from "react-markdown";
import type { Detection } from "../gen/callcue/call/v1/call_pb";
import { DetectionState } from "../gen/callcue/call/v1/call_pb";
import { seconds } from "../callState";
import { categoryLabel, clock } from "../labels";

function safeHref(href: string | undefined): string | undefined {
  if (!href) return undefined;
  try {
    const url = new URL(href, window.location.href);
    return url.protocol === "https:" || url.protocol === "http:" || url.protocol === "mailto:" ? url.href : undefined;
  } catch {
    return undefined;
  }
}

// Cards re-render only when their detection changes (a new state), not on every word.
export const Card = memo(function Card({ detection }: { detection: Detection }) {
  const point = detection.talkingPoint;
  const tentative = detection.state === DetectionState.TENTATIVE;
  return (
    <article className={`card${tentative ? " tentative" : ""}`} data-testid="card" data-detection-id={detection.detectionId}>
      <header>
        <span className="category">{categoryLabel(point?.category ?? 0)}</span>
        <h3>{point?.title || detection.phrase}</h3>
        {tentative && <span className="badge">tentative</span>}
      </header>
      <div className="body">
        <Markdown
          skipHtml
          components={{
            a: ({ href, children }) => (
              <a href={safeHref(href)} target="_blank" rel="noopener noreferrer">
                {children}
              </a>
            ),
            img: () => null,
          }}
        >
          {point?.body ?? ""}
        </Markdown>
      </div>
      {point && point.links.length > 0 && (
        <ul className="links">
          {point.links.map((link) => (
            <li key={link}>
              <a href={safeHref(link)} target="_blank" rel="noopener noreferrer">
                {link}
              </a>
            </li>
          ))}
        </ul>
      )}
      <footer>
        heard “{detection.matchedText || detection.phrase}” at {clock(seconds(detection.startOffset))}
      </footer>
    </article>
  );
});

export const CardList = memo(function CardList({ cards }: { cards: Detection[] }) {
  if (cards.length === 0) return <p className="muted">Talking points appear here as they fire.</p>;
  return (
    <div className="cards">
      {cards.map((card) => (
        <Card key={card.detectionId} detection={card} />
      ))}
    </div>
  );
});
