// The reading screen: wires the viewer and the protocol form to the keyboard and the toolbar.
// Every action has a key; the "?" overlay is drawn from KEYMAP, so it always lists what works.

import { AnnotationForm } from "./annotation-form.js";
import { Viewer, WINDOW_PRESETS } from "./viewer.js";

const config = JSON.parse(document.getElementById("viewer-config").textContent);
const root = document.getElementById("reader");
const viewer = new Viewer(root);
const form = new AnnotationForm(document.getElementById("annotation-form"), config);
const helpOverlay = document.getElementById("help-overlay");
const gifOverlay = document.getElementById("gif-overlay");

async function go(url) {
  if (!url) return;
  await form.flush();
  window.location.href = url;
}

function toggleOverlay(overlay, show = overlay.hidden) {
  for (const other of [helpOverlay, gifOverlay]) if (other !== overlay) other.hidden = true;
  overlay.hidden = !show;
  if (overlay === gifOverlay && show) {
    const gif = document.getElementById("gif-image");
    if (!gif.src) gif.src = gif.dataset.src;
  }
}

function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen();
  else root.requestFullscreen?.().catch(() => {});
}

// [keys shown, description, group, matcher, action]
const KEYMAP = [
  ["← / →", "Previous / next item (saves the draft)", "Navigate", (e) => e.key === "ArrowLeft" && !e.shiftKey, () => go(config.previousUrl)],
  ["", "", "Navigate", (e) => e.key === "ArrowRight" && !e.shiftKey, () => go(config.nextUrl)],
  ["Enter", "Submit and go to the next unanswered item (Ctrl+Enter in a text box)", "Navigate", (e) => e.key === "Enter", () => form.submit()],
  ["Y / N", "Q1: the change is / is not semantically meaningful", "Answer", (e) => e.key.toLowerCase() === "y" && !e.shiftKey, () => form.choose("q1_meaningful", "yes")],
  ["", "", "Answer", (e) => e.key.toLowerCase() === "n" && !e.shiftKey, () => form.choose("q1_meaningful", "no")],
  ["E", "Write the clinical description", "Answer", (e) => e.key.toLowerCase() === "e", () => form.focus("#id_clinical_description")],
  ["1 – 6", "Q2: yes · possible · early change · subtle · not compelling · no", "Answer", (e) => !e.shiftKey && /^Digit[1-6]$/.test(e.code), (e) => form.chooseNth("q2_pneumonia", Number(e.code.slice(5)))],
  ["M", "Write a comment", "Answer", (e) => e.key.toLowerCase() === "m", () => form.focus("#id_comment")],
  ["Shift+1 – 5", "Confidence 1 (low) to 5 (high)", "Answer", (e) => e.shiftKey && /^Digit[1-5]$/.test(e.code), (e) => form.chooseNth("confidence", Number(e.code.slice(5)))],
  ["F", "Flicker the perturbed panel over the unmodified image", "Compare", (e) => e.key === "f", () => viewer.toggleFlicker()],
  ["[ / ]", "Flicker slower / faster", "Compare", (e) => e.key === "[", () => setRate(viewer.flickerRate - 0.5)],
  ["", "", "Compare", (e) => e.key === "]", () => setRate(viewer.flickerRate + 0.5)],
  ["Space (hold)", "Show the unmodified image in the perturbed panel while held", "Compare", (e) => e.code === "Space", () => viewer.hold(true)],
  ["G", "Show the flicker GIF", "Compare", (e) => e.key.toLowerCase() === "g", () => toggleOverlay(gifOverlay)],
  ["D", "Difference map on / off", "Compare", (e) => e.key.toLowerCase() === "d", () => viewer.toggleDifference()],
  ["+ / −", "Zoom in / out (all panels together)", "View", (e) => e.key === "+" || e.key === "=", () => viewer.zoomIn()],
  ["", "", "View", (e) => e.key === "-" || e.key === "_", () => viewer.zoomOut()],
  ["Shift+arrows", "Pan when zoomed", "View", (e) => e.shiftKey && e.key.startsWith("Arrow"), (e) => panWithArrow(e.key)],
  ["0", "Fit the images (reset zoom and pan)", "View", (e) => e.code === "Digit0" || e.code === "Numpad0", () => viewer.fit()],
  ["B / Shift+B", "Brightness down / up", "View", (e) => e.key === "b", () => viewer.adjust(-0.05, 0)],
  ["", "", "View", (e) => e.key === "B", () => viewer.adjust(0.05, 0)],
  ["C / Shift+C", "Contrast down / up", "View", (e) => e.key === "c", () => viewer.adjust(0, -0.1)],
  ["", "", "View", (e) => e.key === "C", () => viewer.adjust(0, 0.1)],
  ["W", "Next window preset", "View", (e) => e.key.toLowerCase() === "w", () => viewer.nextPreset()],
  ["I", "Invert", "View", (e) => e.key.toLowerCase() === "i", () => viewer.toggleInvert()],
  ["R", "Reset window/level, invert and zoom", "View", (e) => e.key.toLowerCase() === "r", () => viewer.resetWindow()],
  ["Shift+F", "Full screen", "View", (e) => e.key === "F", () => toggleFullscreen()],
  ["X", "Explore this case (after finalising)", "View", (e) => e.key.toLowerCase() === "x", () => document.getElementById("explore-link")?.click()],
  ["?", "This list", "Help", (e) => e.key === "?", () => toggleOverlay(helpOverlay)],
  ["Esc", "Close a panel, leave a text box", "Help", (e) => e.key === "Escape", () => closeAll()],
];

function setRate(hz) {
  viewer.setFlickerRate(hz);
}

function panWithArrow(key) {
  const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  viewer.panStep(...steps[key]);
}

function closeAll() {
  helpOverlay.hidden = true;
  gifOverlay.hidden = true;
}

function typing(target) {
  return target instanceof HTMLTextAreaElement || (target instanceof HTMLInputElement && target.type === "text");
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey && event.key !== "Enter") return;
  if (event.altKey || event.metaKey) return;
  if (typing(event.target)) {
    if (event.key === "Escape") event.target.blur();
    else if (event.key === "Enter" && event.ctrlKey) {
      event.preventDefault();
      form.submit();
    }
    return;
  }
  if (event.repeat && event.code === "Space") {
    event.preventDefault();
    return;
  }
  const entry = KEYMAP.find(([, , , matches]) => matches(event));
  if (!entry) return;
  event.preventDefault();
  entry[4](event);
});

document.addEventListener("keyup", (event) => {
  if (event.code === "Space" && viewer.holding) viewer.hold(false);
});

// --- toolbar ------------------------------------------------------------------------------------

const actions = {
  flicker: () => viewer.toggleFlicker(),
  gif: () => toggleOverlay(gifOverlay),
  difference: () => viewer.toggleDifference(),
  "zoom-in": () => viewer.zoomIn(),
  "zoom-out": () => viewer.zoomOut(),
  fit: () => viewer.fit(),
  invert: () => viewer.toggleInvert(),
  reset: () => viewer.resetWindow(),
  fullscreen: () => toggleFullscreen(),
  help: () => toggleOverlay(helpOverlay),
};
for (const button of root.querySelectorAll("[data-action]")) {
  button.addEventListener("click", () => {
    actions[button.dataset.action]();
    button.blur();
  });
}
for (const overlay of [helpOverlay, gifOverlay]) {
  overlay.addEventListener("click", (event) => {
    if (event.target === overlay) overlay.hidden = true;
  });
}
for (const link of root.querySelectorAll("a[data-nav]")) {
  link.addEventListener("click", (event) => {
    event.preventDefault();
    go(link.href);
  });
}

const rate = document.getElementById("flicker-rate");
rate.addEventListener("input", () => viewer.setFlickerRate(Number(rate.value)));
const preset = document.getElementById("wl-preset");
WINDOW_PRESETS.forEach((p, i) => preset.add(new Option(p.name, String(i))));
preset.addEventListener("change", () => {
  viewer.setPreset(Number(preset.value));
  preset.blur();
});

function render() {
  document.getElementById("zoom-level").textContent = `${Math.round(viewer.scale * 100)}%`;
  document.getElementById("wl-value").textContent =
    `B ${viewer.brightness.toFixed(2)} · C ${viewer.contrast.toFixed(2)}`;
  document.getElementById("flicker-rate-value").textContent = `${viewer.flickerRate} Hz`;
  rate.value = String(viewer.flickerRate);
  if (viewer.presetIndex >= 0) preset.value = String(viewer.presetIndex);
  else preset.selectedIndex = -1;
  const press = (name, on) => root.querySelector(`[data-action="${name}"]`).setAttribute("aria-pressed", String(on));
  press("flicker", viewer.flickering);
  press("difference", !viewer.differencePanel.hidden);
  press("invert", viewer.inverted);
}
viewer.onChange(render);
render();

// --- help overlay -------------------------------------------------------------------------------

const table = document.getElementById("keymap");
let group = "";
for (const [keys, description, heading] of KEYMAP) {
  if (!keys) continue;
  if (heading !== group) {
    group = heading;
    const row = table.insertRow();
    const cell = document.createElement("th");
    cell.colSpan = 2;
    cell.textContent = heading;
    row.appendChild(cell);
  }
  const row = table.insertRow();
  const key = row.insertCell();
  for (const [i, part] of keys.split(" / ").entries()) {
    if (i) key.append(" / ");
    const kbd = document.createElement("kbd");
    kbd.textContent = part;
    key.appendChild(kbd);
  }
  row.insertCell().textContent = description;
}

// --- preload the next item's images once this one is shown --------------------------------------

window.addEventListener("load", () => {
  const preload = () => {
    for (const [kind, url] of Object.entries(config.preload || {})) {
      if (kind === "stack") continue;
      new Image().src = url;
    }
  };
  if ("requestIdleCallback" in window) window.requestIdleCallback(preload);
  else window.setTimeout(preload, 300);
});

// For tests and the curious: the viewer's state.
window.reader = { viewer, form };
