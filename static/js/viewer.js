// The image panels of the reading screen: synchronised zoom and pan, window/level on the pixel values,
// invert, flicker, hold-to-compare, the difference panel, layouts and a magnifier. No dependencies.
//
// Window/level works on pixel values, not on a CSS filter: every greyscale panel is a canvas drawn through a
// lookup table. The original is drawn from the case's source pixels (16-bit PNG/TIFF or DICOM) when the
// server has them; the generated images are 8-bit PNGs, placed on the source's scale by the range the stored
// 8-bit image was made from, so one window (width W, level L in source units) applies to every panel.

// Presets relative to the image's display range (low..high): level and width as fractions of it.
export const RELATIVE_PRESETS = [
  { name: "Full range", level: 0.5, width: 1.0 },
  { name: "Lung (low values)", level: 0.4, width: 0.7 },
  { name: "Mediastinum", level: 0.62, width: 0.5 },
  { name: "Bone (high values)", level: 0.72, width: 0.4 },
  { name: "Soft (very wide)", level: 0.5, width: 1.4 },
];
export const LAYOUTS = [1, 2, 3];

const MIN_SCALE = 1;
const MAX_SCALE = 16;
const ZOOM_STEP = 1.25;
const PAN_STEP = 40;
const DRAG_SENSITIVITY = 1 / 400; // of the display range per pixel of mouse movement
const LOUPE_SIZE = 240;

// One greyscale canvas: its pixel values and how they map to source units.
class Layer {
  constructor(canvas) {
    this.canvas = canvas;
    this.values = null; // Uint8Array (8-bit image) or Uint16Array (source pixels)
    this.isSource = false;
    this.slope = 1;
    this.intercept = 0;
    this.imageData = null;
  }

  set8bit(image) {
    const { naturalWidth: width, naturalHeight: height } = image;
    const scratch = document.createElement("canvas");
    scratch.width = width;
    scratch.height = height;
    const context = scratch.getContext("2d", { willReadFrequently: true });
    context.drawImage(image, 0, 0);
    const rgba = context.getImageData(0, 0, width, height).data;
    const values = new Uint8Array(width * height);
    for (let i = 0; i < values.length; i++) values[i] = rgba[4 * i];
    this.setValues(values, width, height, false);
  }

  setValues(values, width, height, isSource, slope = 1, intercept = 0) {
    this.values = values;
    this.isSource = isSource;
    this.slope = slope;
    this.intercept = intercept;
    this.canvas.width = width;
    this.canvas.height = height;
    this.imageData = new ImageData(width, height);
    this.imageData.data.fill(255);
  }

  // Draw through the window: out = (v - (L - W/2)) / W, clamped, on source-unit values v.
  draw(view) {
    if (!this.values) return;
    const { center, width, range, inverted } = view;
    const low = center - width / 2;
    const flip = range.invert !== inverted;
    const size = this.isSource ? 65536 : 256;
    const lut = new Uint8ClampedArray(size);
    const span = range.high - range.low;
    for (let v = 0; v < size; v++) {
      let units;
      if (this.isSource) units = v * this.slope + this.intercept;
      else units = range.invert ? range.high - (v / 255) * span : range.low + (v / 255) * span;
      let out = (units - low) / width;
      out = out < 0 ? 0 : out > 1 ? 1 : out;
      lut[v] = Math.round((flip ? 1 - out : out) * 255);
    }
    const data = this.imageData.data;
    const values = this.values;
    for (let i = 0, j = 0; i < values.length; i++, j += 4) {
      const g = lut[values[i]];
      data[j] = g;
      data[j + 1] = g;
      data[j + 2] = g;
    }
    this.canvas.getContext("2d").putImageData(this.imageData, 0, 0);
    this.canvas.dataset.drawn = "true";
  }
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`cannot load ${url}`));
    image.src = url;
  });
}

// The source-pixels response: uint32 header length, JSON header, uint16 pixels (little-endian).
export function parseSourcePixels(buffer) {
  const view = new DataView(buffer);
  const length = view.getUint32(0, true);
  const info = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
  const offset = 4 + length;
  const count = info.width * info.height;
  const values = new Uint16Array(count);
  for (let i = 0; i < count; i++) values[i] = view.getUint16(offset + 2 * i, true);
  return { info, values };
}

export class Viewer {
  constructor(root, { sourceUrl = null, prefsKey = null } = {}) {
    this.root = root;
    this.panels = root.querySelector("#panels");
    this.main = root.querySelector("#reader-main");
    this.perturbedPanel = root.querySelector('[data-panel="perturbed"]');
    this.differencePanel = root.querySelector('[data-panel="difference"]');
    this.loupe = root.querySelector("#loupe");
    this.prefsKey = prefsKey;
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.range = { low: 0, high: 255, invert: false, windows: [], units: "8-bit", source: null };
    this.center = 127.5;
    this.width = 255;
    this.inverted = false;
    this.presetIndex = 0;
    this.flickerRate = 2;
    this.flickerTimer = null;
    this.showingUnmodified = false;
    this.holding = false;
    this.wlTool = false;
    this.magnifying = false;
    this.pointer = null;
    this.layout = 3;
    this.formPanel = true;
    this.sourceState = sourceUrl ? "loading" : "none";
    this.listeners = [];
    this.layers = new Map();
    for (const canvas of root.querySelectorAll("canvas.view-image")) this.layers.set(canvas, new Layer(canvas));
    this.frame = null;
    this.loadPrefs();
    this.bindMouse();
    this.setPreset(0);
    this.ready = this.load(sourceUrl);
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

  // --- loading --------------------------------------------------------------------------------

  async load(sourceUrl) {
    const original = this.root.querySelector('[data-panel="original"] canvas');
    const loads = [...this.layers.values()].map(async (layer) => {
      if (layer.canvas === original && sourceUrl) {
        if (await this.loadSource(layer, sourceUrl)) return;
      }
      // An image the server does not send yet (the explanation before the before-rating) has no source.
      if (!layer.canvas.dataset.src) return;
      layer.set8bit(await loadImage(layer.canvas.dataset.src));
    });
    await Promise.allSettled(loads);
    if (this.presetIndex >= 0) this.setPreset(this.presetIndex);
    this.draw();
    this.root.dataset.viewerReady = "true";
  }

  async loadSource(layer, url) {
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      const { info, values } = parseSourcePixels(await response.arrayBuffer());
      layer.setValues(values, info.width, info.height, true, info.slope, info.intercept);
      const format = info.format === "dicom" ? "DICOM" : info.format.toUpperCase();
      this.range = {
        low: info.low,
        high: info.high,
        invert: info.invert,
        windows: info.windows || [],
        units: `${info.bits}-bit ${format}`,
        source: info,
      };
      this.sourceState = "loaded";
      return true;
    } catch {
      this.sourceState = "unavailable";
      return false;
    }
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

  // --- window/level (source units) --------------------------------------------------------------

  get span() {
    return Math.max(this.range.high - this.range.low, 1e-6);
  }

  // The presets: the file's own windows first (DICOM), then windows relative to the display range.
  presets() {
    const own = this.range.windows.map((w) => ({ name: `DICOM: ${w.name}`, center: w.center, width: w.width }));
    const relative = RELATIVE_PRESETS.map((p) => ({
      name: p.name,
      center: this.range.low + p.level * this.span,
      width: p.width * this.span,
    }));
    return [...own, ...relative];
  }

  setWindow(center, width) {
    this.center = center;
    this.width = Math.max(width, this.span / 1000);
    this.presetIndex = -1;
    this.scheduleDraw();
  }

  // Keyboard steps: level as a share of the range, width by a factor.
  adjust(dLevel, widthFactor) {
    this.setWindow(this.center + dLevel * this.span, this.width * widthFactor);
  }

  nextPreset() {
    this.setPreset((this.presetIndex + 1) % this.presets().length);
  }

  setPreset(index) {
    const preset = this.presets()[index];
    if (!preset) return;
    this.presetIndex = index;
    this.center = preset.center;
    this.width = preset.width;
    this.scheduleDraw();
  }

  toggleInvert() {
    this.inverted = !this.inverted;
    this.scheduleDraw();
  }

  resetWindow() {
    this.inverted = false;
    this.setPreset(0);
    this.fit();
  }

  toggleWlTool() {
    this.wlTool = !this.wlTool;
    this.panels.classList.toggle("wl-tool", this.wlTool);
    this.emit();
  }

  // --- flicker, compare, difference -----------------------------------------------------------

  setUnmodified(show) {
    this.showingUnmodified = show;
    this.perturbedPanel.classList.toggle("show-unmodified", show);
    if (this.magnifying && this.pointer) this.drawLoupe();
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
    this.flickerRate = Math.min(8, Math.max(0.5, hz));
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
      if (!image.src && image.dataset.src) image.src = image.dataset.src;
    }
    this.differencePanel.hidden = !show;
    this.panels.classList.toggle("with-difference", show);
    this.emit();
  }

  // --- layouts (hanging protocols), the answers panel, the magnifier ----------------------------

  setLayout(n) {
    if (!LAYOUTS.includes(n)) return;
    this.layout = n;
    this.panels.dataset.layout = String(n);
    this.savePrefs();
    this.emit();
  }

  nextLayout() {
    this.setLayout(LAYOUTS[(LAYOUTS.indexOf(this.layout) + 1) % LAYOUTS.length]);
  }

  toggleFormPanel(show = !this.formPanel) {
    this.formPanel = show;
    this.main?.classList.toggle("form-collapsed", !show);
    this.savePrefs();
    this.emit();
  }

  toggleMagnifier() {
    this.magnifying = !this.magnifying;
    this.panels.classList.toggle("magnifying", this.magnifying);
    if (!this.magnifying) this.loupe.hidden = true;
    this.emit();
  }

  loadPrefs() {
    let prefs = {};
    try {
      prefs = JSON.parse(window.localStorage.getItem(this.prefsKey) || "{}");
    } catch {
      prefs = {};
    }
    this.layout = LAYOUTS.includes(prefs.layout) ? prefs.layout : 3;
    this.panels.dataset.layout = String(this.layout);
    this.formPanel = prefs.formPanel !== false;
    this.main?.classList.toggle("form-collapsed", !this.formPanel);
  }

  savePrefs() {
    if (!this.prefsKey) return;
    try {
      window.localStorage.setItem(this.prefsKey, JSON.stringify({ layout: this.layout, formPanel: this.formPanel }));
    } catch {
      // Storage full or disabled: the layout still applies to this page.
    }
  }

  // The element drawn in a viewport now (the perturbed panel shows one of its two layers).
  shownIn(viewport) {
    if (viewport.closest('[data-panel="perturbed"]')) {
      return viewport.querySelector(this.showingUnmodified ? ".layer-unmodified" : ".layer-perturbed");
    }
    return viewport.querySelector(".view-image");
  }

  drawLoupe() {
    const { viewport, x, y } = this.pointer;
    const element = this.shownIn(viewport);
    const width = element.naturalWidth || element.width;
    const height = element.naturalHeight || element.height;
    const context = this.loupe.querySelector("canvas").getContext("2d");
    context.fillStyle = "#000";
    context.fillRect(0, 0, LOUPE_SIZE, LOUPE_SIZE);
    if (!width || !height) return;
    const rect = element.getBoundingClientRect();
    const fit = Math.min(rect.width / width, rect.height / height);
    const ix = (x - rect.left - (rect.width - width * fit) / 2) / fit;
    const iy = (y - rect.top - (rect.height - height * fit) / 2) / fit;
    const magnification = Math.max(2 * fit, 1); // screen pixels per image pixel in the loupe
    const side = LOUPE_SIZE / magnification;
    context.imageSmoothingEnabled = false;
    context.drawImage(element, ix - side / 2, iy - side / 2, side, side, 0, 0, LOUPE_SIZE, LOUPE_SIZE);
    const box = this.panels.getBoundingClientRect();
    this.loupe.style.left = `${x - box.left - LOUPE_SIZE / 2}px`;
    this.loupe.style.top = `${y - box.top - LOUPE_SIZE / 2}px`;
    this.loupe.hidden = false;
  }

  // --- drawing --------------------------------------------------------------------------------

  scheduleDraw() {
    if (this.frame === null) {
      this.frame = window.requestAnimationFrame(() => {
        this.frame = null;
        this.draw();
      });
    }
    this.emit();
  }

  draw() {
    for (const layer of this.layers.values()) layer.draw(this);
    if (this.magnifying && this.pointer) this.drawLoupe();
    this.emit();
  }

  apply() {
    const transform = `translate(${this.tx}px, ${this.ty}px) scale(${this.scale})`;
    for (const image of this.images()) image.style.transform = transform;
    this.panels.classList.toggle("zoomed", this.scale > 1);
    if (this.magnifying && this.pointer) this.drawLoupe();
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
      viewport.addEventListener("pointermove", (event) => {
        this.pointer = { viewport, x: event.clientX, y: event.clientY };
        if (this.magnifying) this.drawLoupe();
      });
      viewport.addEventListener("pointerleave", () => {
        this.pointer = null;
        this.loupe.hidden = true;
      });
    }
  }

  drag(event, viewport) {
    const windowing = event.button === 2 || (event.button === 0 && this.wlTool);
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
      // As in PACS viewers: left/right widens/narrows the window, up/down lowers/raises the level.
      if (windowing) this.setWindow(this.center + dy * this.span * DRAG_SENSITIVITY, this.width + dx * this.span * DRAG_SENSITIVITY);
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
