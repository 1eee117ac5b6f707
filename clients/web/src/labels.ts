import { CallState, SpeakerRole, TalkingPointCategory } from "./gen/callcue/call/v1/call_pb";

export function speakerLabel(role: SpeakerRole): string {
  switch (role) {
    case SpeakerRole.REP:
      return "rep";
    case SpeakerRole.PROSPECT:
      return "prospect";
    default:
      return "call";
  }
}

export function categoryLabel(category: TalkingPointCategory): string {
  const name = TalkingPointCategory[category] ?? "OTHER";
  return name === "UNSPECIFIED" ? "other" : name.toLowerCase().replace("_", " ");
}

export const CATEGORIES = [
  TalkingPointCategory.COMPETITOR,
  TalkingPointCategory.OBJECTION,
  TalkingPointCategory.PRICING,
  TalkingPointCategory.NEXT_STEP,
  TalkingPointCategory.COMPLIANCE,
  TalkingPointCategory.PRODUCT,
  TalkingPointCategory.OTHER,
];

export function stateLabel(state: CallState): string {
  return (CallState[state] ?? "UNSPECIFIED").toLowerCase();
}

export function clock(totalSeconds: number): string {
  const whole = Math.max(0, Math.floor(totalSeconds));
  const minutes = Math.floor(whole / 60);
  const secs = whole % 60;
  return `${minutes}:${secs.toString().padStart(2, "0")}`;
}
