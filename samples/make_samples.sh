#!/usr/bin/env bash
# Regenerates the synthetic sample call from sales_call.script (ROLE|text per line).
# Rep: festival's cmu_us_slt_arctic_hts voice; prospect: espeak-ng en-us+m3.
# Needs Debian's festival, festvox-us-slt-hts, espeak-ng and sox. Outputs 16 kHz, 16-bit:
#   sales_call.wav          both speakers mixed, mono
#   sales_call_stereo.flac   rep on the left channel, prospect on the right
#   sales_call.txt          the reference transcript
#   sales_call.turns.txt    [start-end] ROLE: text
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gap=0.7
n=0
t=0.5
: > sales_call.turns.txt
sox -n -r 16000 -c 1 -b 16 "$work/rep.wav" trim 0 $t
cp "$work/rep.wav" "$work/prospect.wav"
while IFS='|' read -r role text; do
  n=$((n + 1))
  raw="$work/turn$n.raw.wav"
  if [ "$role" = REP ]; then
    echo "$text" | text2wave -eval "(voice_cmu_us_slt_arctic_hts)" -o "$raw"
  else
    espeak-ng -v en-us+m3 -s 155 -w "$raw" "$text"
  fi
  sox "$raw" -r 16000 -c 1 -b 16 "$work/turn$n.wav" norm -3
  len=$(soxi -D "$work/turn$n.wav")
  sox -n -r 16000 -c 1 -b 16 "$work/silence$n.wav" trim 0 "$len"
  sox -n -r 16000 -c 1 -b 16 "$work/gap.wav" trim 0 $gap
  if [ "$role" = REP ]; then speaking=rep; quiet=prospect; else speaking=prospect; quiet=rep; fi
  sox "$work/$speaking.wav" "$work/turn$n.wav" "$work/gap.wav" "$work/next.wav" && mv "$work/next.wav" "$work/$speaking.wav"
  sox "$work/$quiet.wav" "$work/silence$n.wav" "$work/gap.wav" "$work/next.wav" && mv "$work/next.wav" "$work/$quiet.wav"
  end=$(python3 -c "print(round($t + $len, 2))")
  echo "[$t-$end] $role: $text" >> sales_call.turns.txt
  t=$(python3 -c "print(round($end + $gap, 2))")
done < sales_call.script
sox -M "$work/rep.wav" "$work/prospect.wav" sales_call_stereo.flac
sox sales_call_stereo.flac -c 1 sales_call.wav remix 1,2 norm -3
cut -d'|' -f2 sales_call.script | tr 'A-Z' 'a-z' | tr -d '.,?' | tr '\n' ' ' | sed 's/ $/\n/' > sales_call.txt
soxi sales_call.wav sales_call_stereo.flac | grep -E "Input|Duration|Channels"
