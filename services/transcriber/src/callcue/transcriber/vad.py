"""Streaming voice activity detection with the Silero model faster-whisper ships."""

from __future__ import annotations

import numpy as np
from faster_whisper.vad import get_vad_model

from callcue.transcriber.audio import Samples

WINDOW = 512  # samples at 16 kHz: 32 ms
_CONTEXT = 64


class StreamingVad:
    """Speech probability for each 32 ms window as audio arrives.

    The Silero v6 model scores each window from the window, the 64 samples before it
    and a recurrent state carried from window to window; carrying both across pushes
    gives the same probabilities as scoring the whole recording at once.
    """

    def __init__(self) -> None:
        self._model = get_vad_model()
        self._pending = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)

    def push(self, samples: Samples) -> Samples:
        """Probabilities of the complete windows now available (one per 512 samples)."""
        audio = np.concatenate([self._pending, samples])
        usable = len(audio) - len(audio) % WINDOW
        self._pending = audio[usable:]
        if usable == 0:
            return np.zeros(0, dtype=np.float32)
        windows = audio[:usable].reshape(-1, WINDOW)
        contexts = np.concatenate([self._context[None, :], windows[:-1, -_CONTEXT:]])
        self._context = windows[-1, -_CONTEXT:].copy()
        batch = np.concatenate([contexts, windows], axis=1)
        output, self._h, self._c = self._model.session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        return np.asarray(output, dtype=np.float32).reshape(-1)
