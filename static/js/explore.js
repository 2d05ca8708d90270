// Explore mode: sliders over style dimensions; the server regenerates the image as they move.
// One request at a time: while one is in flight, only the newest slider state is sent next.

const config = JSON.parse(document.getElementById("explore-config").textContent);
const sliders = document.getElementById("sliders");
const image = document.getElementById("explore-image");
const prob = document.getElementById("explore-prob");
const timing = document.getElementById("render-time");
const values = new Map(config.sliders.map((s) => [s.dim, s.value]));
let inFlight = false;
let queued = false;

function changes() {
  const params = new URLSearchParams();
  for (const s of config.sliders) {
    const value = values.get(s.dim);
    if (value !== s.value) params.append("s", `${s.dim}:${value}`);
  }
  return params;
}

async function render() {
  if (inFlight) {
    queued = true;
    return;
  }
  inFlight = true;
  const started = performance.now();
  try {
    const response = await fetch(`${config.renderUrl}?${changes()}`, { credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) {
      timing.textContent = body.error || `Error ${response.status}`;
    } else {
      image.src = body.image;
      prob.textContent = `p = ${body.probability.toFixed(2)}`;
      const delta = body.probability - (config.probabilityReconstruction ?? body.probability);
      prob.title = `${delta >= 0 ? "+" : ""}${delta.toFixed(2)} from the reconstruction`;
      timing.textContent = `rendered in ${body.milliseconds} ms on the server, ${Math.round(performance.now() - started)} ms round trip`;
    }
  } catch (error) {
    timing.textContent = "The server cannot be reached.";
  } finally {
    inFlight = false;
    if (queued) {
      queued = false;
      render();
    }
  }
}

for (const s of config.sliders) {
  const row = document.createElement("div");
  row.className = "slider-row";
  const id = `dim-${s.dim}`;
  const range = `${s.low.toFixed(2)} … ${s.high.toFixed(2)}`;
  row.innerHTML = `
    <label for="${id}"><strong>${s.dim}</strong> <span class="hint">${s.layer}:${s.channel}</span>
      <output>${s.value.toFixed(2)}</output></label>
    <input type="range" id="${id}" min="${s.minimum}" max="${s.maximum}" step="${(s.maximum - s.minimum) / 200}"
           value="${s.value}" list="${id}-ticks" title="observed range ${range}">
    <datalist id="${id}-ticks"><option value="${s.low}"></option><option value="${s.value}"></option><option value="${s.high}"></option></datalist>
    <div class="slider-actions"><button type="button" data-to="low">min</button><button type="button" data-to="value">case</button><button type="button" data-to="high">max</button></div>`;
  const input = row.querySelector("input");
  const output = row.querySelector("output");
  const set = (value) => {
    input.value = String(value);
    values.set(s.dim, Number(value));
    output.textContent = Number(value).toFixed(2);
    render();
  };
  input.addEventListener("input", () => set(input.value));
  for (const button of row.querySelectorAll("button")) button.addEventListener("click", () => set(s[button.dataset.to]));
  sliders.appendChild(row);
}

document.getElementById("reset-all").addEventListener("click", () => {
  for (const s of config.sliders) {
    values.set(s.dim, s.value);
    const row = document.getElementById(`dim-${s.dim}`);
    row.value = String(s.value);
    row.parentElement.querySelector("output").textContent = s.value.toFixed(2);
  }
  render();
});

document.getElementById("add-dimension").addEventListener("submit", (event) => {
  event.preventDefault();
  const dim = document.getElementById("new-dim").value;
  if (dim === "") return;
  const url = new URL(window.location.href);
  const dims = (url.searchParams.get("dims") || "").split(",").filter(Boolean);
  url.searchParams.set("dims", [dim, ...dims].join(","));
  window.location.href = url.toString();
});

render();
