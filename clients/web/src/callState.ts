// What one call's view shows, built from its events in sequence order. A resumed stream
// may repeat events: those at or below the last sequence applied are ignored, so nothing
// shows twice and nothing is skipped.
import type { CallEvent, Detection, TranscriptSegment } from "./gen/callcue/call/v1/call_pb";
import { CallState, DetectionState, SpeakerRole } from "./gen/callcue/call/v1/call_pb";
import type { Duration } from "@bufbuild/protobuf/wkt";

// One utterance as shown: the final words so far, then the partial rest (replaced in
// place as it changes). A pause or another channel starts a new line, as in the CLI.
export interface Line {
  key: string;
  channel: number;
  speaker: SpeakerRole;
  start: number;
  end: number;
  finalText: string;
  partialText: string;
}

export const PAUSE_SECONDS = 0.5;

export interface CallView {
  lastSequence: bigint;
  finals: TranscriptSegment[];
  // The newest partial of each channel.
  partials: Map<number, TranscriptSegment>;
  // When the browser received each final, by segment id.
  receivedAt: Map<string, number>;
  cards: Detection[];
  state: CallState;
  message: string;
  engine: string;
  model: string;
  progress: number;
  audioSeconds: number;
}

export const emptyCall: CallView = {
  lastSequence: 0n,
  finals: [],
  partials: new Map(),
  receivedAt: new Map(),
  cards: [],
  state: CallState.UNSPECIFIED,
  message: "",
  engine: "",
  model: "",
  progress: 0,
  audioSeconds: 0,
};

export function seconds(duration: Duration | undefined): number {
  if (!duration) return 0;
  return Number(duration.seconds) + duration.nanos / 1e9;
}

function byTime(a: TranscriptSegment, b: TranscriptSegment): number {
  return seconds(a.startOffset) - seconds(b.startOffset) || a.channel - b.channel;
}

function byImportance(a: Detection, b: Detection): number {
  const priority = (b.talkingPoint?.priority ?? 0) - (a.talkingPoint?.priority ?? 0);
  return priority || seconds(b.endOffset) - seconds(a.endOffset);
}

export function applyEvent(view: CallView, event: CallEvent, now: number): CallView {
  if (event.sequence <= view.lastSequence) return view;
  const next: CallView = { ...view, lastSequence: event.sequence };
  switch (event.event.case) {
    case "transcript": {
      const segment = event.event.value;
      next.audioSeconds = Math.max(view.audioSeconds, seconds(segment.endOffset));
      const partials = new Map(view.partials);
      if (!segment.isFinal) {
        partials.set(segment.channel, segment);
        next.partials = partials;
        return next;
      }
      const pending = partials.get(segment.channel);
      if (pending && seconds(pending.startOffset) < seconds(segment.endOffset)) partials.delete(segment.channel);
      next.partials = partials;
      if (view.finals.some((f) => f.segmentId === segment.segmentId)) return next;
      next.finals = [...view.finals, segment].sort(byTime);
      next.receivedAt = new Map(view.receivedAt).set(segment.segmentId, now);
      return next;
    }
    case "detection": {
      const detection = event.event.value;
      const others = view.cards.filter((c) => c.detectionId !== detection.detectionId);
      next.cards =
        detection.state === DetectionState.RETRACTED ? others : [...others, detection].sort(byImportance);
      return next;
    }
    case "status": {
      const status = event.event.value;
      next.state = status.state;
      next.message = status.message;
      next.engine = status.engine || view.engine;
      next.model = status.model || view.model;
      next.progress = status.progressPercent;
      next.audioSeconds = Math.max(view.audioSeconds, seconds(status.audioReceived));
      return next;
    }
    default:
      return next;
  }
}

export function isOver(state: CallState): boolean {
  return state === CallState.ENDED || state === CallState.FAILED;
}

export function linesOf(finals: TranscriptSegment[], partials: Iterable<TranscriptSegment> = []): Line[] {
  const lines: Line[] = [];
  const open = new Map<number, Line>();
  for (const segment of finals) {
    const start = seconds(segment.startOffset);
    const current = open.get(segment.channel);
    if (current && start - current.end <= PAUSE_SECONDS) {
      current.finalText += ` ${segment.text}`;
      current.end = seconds(segment.endOffset);
      continue;
    }
    const line: Line = {
      key: segment.segmentId,
      channel: segment.channel,
      speaker: segment.speaker,
      start,
      end: seconds(segment.endOffset),
      finalText: segment.text,
      partialText: "",
    };
    lines.push(line);
    open.set(segment.channel, line);
  }
  for (const partial of partials) {
    const start = seconds(partial.startOffset);
    const current = open.get(partial.channel);
    if (current && start - current.end <= PAUSE_SECONDS && lines[lines.length - 1] === current) {
      current.partialText = partial.text;
    } else {
      lines.push({
        key: `partial-${partial.channel}`,
        channel: partial.channel,
        speaker: partial.speaker,
        start,
        end: seconds(partial.endOffset),
        finalText: "",
        partialText: partial.text,
      });
    }
  }
  return lines;
}
