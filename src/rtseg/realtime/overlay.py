"""Drawing the prediction on the frame: blended class colours, a legend, a HUD with fps and latency.

Cheap on purpose (at these model speeds drawing costs as much as inference): the class map is
coloured with a lookup table at model resolution, upsampled once with nearest-neighbour, blended
with one ``cv2.addWeighted`` (SIMD, uint8); the legend is rendered once per frame size and pasted.
"""

from __future__ import annotations

import cv2
import numpy as np

from rtseg.utils.images import default_palette

FONT = cv2.FONT_HERSHEY_SIMPLEX


class Overlay:
    """Turns (BGR frame, class map at any resolution) into the frame with the mask blended in.

    ``palette`` is RGB (as stored in checkpoints); labels outside it (e.g. ignore 255) stay uncoloured.
    """

    def __init__(
        self,
        palette: list[list[int]] | None,
        class_names: list[str] | None,
        alpha: float = 0.5,
        legend: bool = True,
        hud: bool = True,
    ):
        names = list(class_names or [])
        palette = [list(c) for c in (palette or [])]
        n = max(len(names), len(palette))
        if len(palette) < n:
            palette += default_palette(n)[len(palette) :]
        self.class_names = names or [str(i) for i in range(n)]
        self.palette = palette
        self.alpha, self.legend, self.hud = float(alpha), legend, hud
        lut = np.zeros((256, 1, 3), np.uint8)
        for i, (r, g, b) in enumerate(palette[:256]):
            lut[i, 0] = (b, g, r)
        self.lut = lut
        self._legend_cache: dict[tuple[int, int], np.ndarray] = {}

    def colourise(self, labels: np.ndarray) -> np.ndarray:
        """BGR colour image of a uint8 class map (one table lookup per pixel)."""
        return cv2.LUT(cv2.cvtColor(labels, cv2.COLOR_GRAY2BGR), self.lut)

    def draw(
        self, frame: np.ndarray, labels: np.ndarray, hud_lines: list[str] | None = None
    ) -> np.ndarray:
        h, w = frame.shape[:2]
        colour = self.colourise(labels)
        if colour.shape[:2] != (h, w):
            colour = cv2.resize(colour, (w, h), interpolation=cv2.INTER_NEAREST)
        out = cv2.addWeighted(frame, 1.0 - self.alpha, colour, self.alpha, 0.0)
        if self.legend:
            patch = self._legend_patch(h, w)
            ph, pw = patch.shape[:2]
            if ph <= h and pw <= w:
                out[:ph, w - pw :] = patch
        if self.hud and hud_lines:
            self._draw_hud(out, hud_lines)
        return out

    def _scale(self, h: int) -> tuple[float, int, int]:
        scale = max(0.3, min(0.6, h / 900))
        line = int(26 * scale / 0.6)
        thick = 1
        return scale, line, thick

    def _legend_patch(self, h: int, w: int) -> np.ndarray:
        key = (h, w)
        if key not in self._legend_cache:
            scale, line, thick = self._scale(h)
            box = max(line - 6, 6)
            text_w = max(cv2.getTextSize(n, FONT, scale, thick)[0][0] for n in self.class_names)
            pw = min(box + text_w + 14, w)
            ph = min(line * len(self.class_names) + 6, h)
            patch = np.full((ph, pw, 3), 32, np.uint8)
            for i, name in enumerate(self.class_names):
                y = 4 + i * line
                if y + box > ph:
                    break
                r, g, b = self.palette[i]
                cv2.rectangle(patch, (4, y), (4 + box, y + box), (b, g, r), -1)
                cv2.putText(
                    patch,
                    name,
                    (box + 10, y + box - 2),
                    FONT,
                    scale,
                    (255, 255, 255),
                    thick,
                    cv2.LINE_AA,
                )
            self._legend_cache[key] = patch
        return self._legend_cache[key]

    def _draw_hud(self, out: np.ndarray, lines: list[str]) -> None:
        scale, line, thick = self._scale(out.shape[0])
        width = max(cv2.getTextSize(t, FONT, scale, thick)[0][0] for t in lines) + 12
        height = line * len(lines) + 6
        cv2.rectangle(out, (0, 0), (width, height), (0, 0, 0), -1)
        for i, text in enumerate(lines):
            cv2.putText(
                out, text, (6, (i + 1) * line - 4), FONT, scale, (255, 255, 255), thick, cv2.LINE_AA
            )
