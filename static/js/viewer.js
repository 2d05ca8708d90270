// The image panels of the reading screen: synchronised zoom and pan, window/level, invert, flicker,
// hold-to-compare and the difference panel. No dependencies.

export const WINDOW_PRESETS = [
  { name: "Default", brightness: 1.0, contrast: 1.0 },
  { name: "Lung", brightness: 1.05, contrast: 1.35 },
  { name: "Mediastinum", brightness: 0.8, contrast: 1.3 },
  { name: "Bone", brightness: 1.15, contrast: 1.6 },
  { name: "Soft", brightness: 1.05, contrast: 0.8 },
];

const MIN_SCALE = 1;
const MAX_SCALE = 16;
const ZOOM_STEP = 1.25;
const PAN_STEP = 40;

export class Viewer {
  constructor(root) {
    this.root = root;
    this.panels = root.querySelector("#panels");
    this.perturbedPanel = root.querySelector('[data-panel="perturbed"]');
    this.differencePanel = root.querySelector('[data-panel="difference"]');
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.brightness = 1;
    this.contrast = 1;
    this.inverted = false;
    this.presetIndex = 0;
    this.flickerRate = 2;
    this.flickerTimer = null;
    this.showingUnmodified = false;
    this.holding = false;
    this.listeners = [];
    this.bindMouse();
    this.apply();
  }

  onChange(listener) {
    this.listeners.push(listener);
  }

  emit() {
    for (const listener of this.listeners) listener(this);
  }

  images() {
    return this.root.querySelectorAll(".view-image");
  }

  // --- zoom and pan (one transform for every panel) ---------------------------------------------

  zoomBy(factor, cx = 0, cy = 0) {
    const next = Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.scale * factor));
    const ratio = next / this.scale;
    // Keep the point under the cursor (cx, cy: offsets from the viewport centre) where it is.
    this.tx = cx - (cx - this.tx) * ratio;
    this.ty = cy - (cy - this.ty) * ratio;
    this.scale = next;
    if (this.scale === 1) {
      this.tx = 0;
      this.ty = 0;
    }
    this.apply();
  }

  zoomIn() {
    this.zoomBy(ZOOM_STEP);
  }

  zoomOut() {
    this.zoomBy(1 / ZOOM_STEP);
  }

  panBy(dx, dy) {
    if (this.scale === 1) return;
    this.tx += dx;
    this.ty += dy;
    this.apply();
  }

  panStep(x, y) {
    this.panBy(-x * PAN_STEP, -y * PAN_STEP);
  }

  fit() {
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.apply();
  }

  // --- window/level ---------------------------------------------------------------------------

  adjust(dBrightness, dContrast) {
    this.brightness = clamp(round2(this.brightness + dBrightness), 0.2, 3);
    this.contrast = clamp(round2(this.contrast + dContrast), 0.2, 4);
    this.presetIndex = -1;
    this.apply();
  }

  nextPreset() {
    this.setPreset((this.presetIndex + 1) % WINDOW_PRESETS.length);
  }

  setPreset(index) {
    const preset = WINDOW_PRESETS[index];
    this.presetIndex = index;
    this.brightness = preset.brightness;
    this.contrast = preset.contrast;
    this.apply();
  }

  toggleInvert() {
    this.inverted = !this.inverted;
    this.apply();
  }

  resetWindow() {
    this.setPreset(0);
    this.inverted = false;
    this.fit();
  }

  // --- flicker, compare, difference -----------------------------------------------------------

  setUnmodified(show) {
    this.showingUnmodified = show;
    this.perturbedPanel.classList.toggle("show-unmodified", show);
    const name = this.perturbedPanel.querySelector(".panel-name");
    const prob = this.perturbedPanel.querySelector(".prob");
    name.textContent = show ? name.dataset.unmodifiedName : name.dataset.perturbedName;
    if (prob) prob.textContent = show ? prob.dataset.unmodifiedProb : prob.dataset.perturbedProb;
  }

  get flickering() {
    return this.flickerTimer !== null;
  }

  toggleFlicker() {
    if (this.flickering) this.stopFlicker();
    else this.startFlicker();
    this.emit();
  }

  startFlicker() {
    this.stopFlicker();
    const period = 1000 / (2 * this.flickerRate);
    this.flickerTimer = window.setInterval(() => {
      if (!this.holding) this.setUnmodified(!this.showingUnmodified);
    }, period);
    this.perturbedPanel.classList.add("flickering");
  }

  stopFlicker() {
    if (this.flickerTimer !== null) window.clearInterval(this.flickerTimer);
    this.flickerTimer = null;
    this.perturbedPanel.classList.remove("flickering");
    if (!this.holding) this.setUnmodified(false);
  }

  setFlickerRate(hz) {
    this.flickerRate = clamp(hz, 0.5, 8);
    if (this.flickering) this.startFlicker();
    this.emit();
  }

  // Hold a key: show the unmodified image in the perturbed panel until it is released.
  hold(on) {
    this.holding = on;
    this.setUnmodified(on);
  }

  toggleDifference() {
    const show = this.differencePanel.hidden;
    if (show) {
      const image = this.differencePanel.querySelector("img");
      if (!image.src) image.src = image.dataset.src;
    }
    this.differencePanel.hidden = !show;
    this.panels.classList.toggle("with-difference", show);
    this.emit();
  }

  // --- drawing --------------------------------------------------------------------------------

  apply() {
    const transform = `translate(${this.tx}px, ${this.ty}px) scale(${this.scale})`;
    const filter = `brightness(${this.brightness}) contrast(${this.contrast})${this.inverted ? " invert(1)" : ""}`;
    for (const image of this.images()) {
      image.style.transform = transform;
      if (!image.classList.contains("no-window")) image.style.filter = filter;
    }
    this.panels.classList.toggle("zoomed", this.scale > 1);
    this.emit();
  }

  bindMouse() {
    for (const viewport of this.root.querySelectorAll(".viewport")) {
      viewport.addEventListener(
        "wheel",
        (event) => {
          event.preventDefault();
          const rect = viewport.getBoundingClientRect();
          const cx = event.clientX - rect.left - rect.width / 2;
          const cy = event.clientY - rect.top - rect.height / 2;
          this.zoomBy(event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, cx, cy);
        },
        { passive: false },
      );
      viewport.addEventListener("dblclick", () => this.fit());
      viewport.addEventListener("contextmenu", (event) => event.preventDefault());
      viewport.addEventListener("pointerdown", (event) => this.drag(event, viewport));
    }
  }

  drag(event, viewport) {
    const windowing = event.button === 2;
    if (event.button !== 0 && !windowing) return;
    event.preventDefault();
    viewport.setPointerCapture(event.pointerId);
    let x = event.clientX;
    let y = event.clientY;
    const move = (e) => {
      const dx = e.clientX - x;
      const dy = e.clientY - y;
      x = e.clientX;
      y = e.clientY;
      if (windowing) this.adjust(-dy * 0.005, dx * 0.005);
      else this.panBy(dx, dy);
    };
    const up = () => {
      viewport.removeEventListener("pointermove", move);
      viewport.removeEventListener("pointerup", up);
      viewport.removeEventListener("pointercancel", up);
    };
    viewport.addEventListener("pointermove", move);
    viewport.addEventListener("pointerup", up);
    viewport.addEventListener("pointercancel", up);
  }
}

function clamp(value, low, high) {
  return Math.min(high, Math.max(low, value));
}

function round2(value) {
  return Math.round(value * 100) / 100;
}
