// Live progress of background jobs. Every element with data-job-progress="<url of /jobs/<pk>/progress>" is
// refreshed once a second from the Job row (so it survives reloads and works with any broker); between two
// answers the estimated time left counts down. With data-reload-on-finish the page reloads when the job ends,
// to show its results, and when it starts, to show the page of a running job.

const POLL_MS = 1000;
// Each answer moves the shown estimate part of the way to the server's, so the time left counts down steadily
// instead of jumping with every finished unit: with a time constant of a tenth of the time left, at least 20 s
// for long jobs (5 % per poll) and none for the last seconds of short ones.
const ETA_SMOOTHING_MIN = 0.05;

export function smoothEta(shown, received) {
  if (shown == null || !isFinite(shown)) return received;
  if (received == null) return null;
  const share = Math.min(1, Math.max(ETA_SMOOTHING_MIN, POLL_MS / 1000 / (0.1 * Math.max(shown, 1e-3))));
  return shown + share * (received - shown);
}

function formatSeconds(seconds) {
  if (seconds == null || !isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s left`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s left`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min left`;
}

function render(element, state) {
  const percent = Math.round(100 * state.progress);
  element.querySelector(".progress > span").style.width = `${percent}%`;
  element.querySelector(".progress").setAttribute("aria-valuenow", String(percent));
  element.querySelector(".job-percent").textContent = `${percent}%`;
  const status = element.querySelector(".job-status");
  status.textContent = state.status.charAt(0).toUpperCase() + state.status.slice(1);
  status.className = `tag job-status job-status-${state.status}`;
  element.querySelector(".job-message").textContent = state.error || state.message || "";
  const queue = element.querySelector(".job-queue");
  if (queue) queue.textContent = queueText(state.queue);
}

export function queueText(queue) {
  // Where a pending job waits, from /jobs/<pk>/progress's "queue"; empty once it runs.
  if (!queue) return "";
  const ahead = queue.ahead === 0 ? "next in line" : `${queue.ahead} job${queue.ahead === 1 ? "" : "s"} ahead`;
  return `Waiting for a worker on the ${queue.queue} queue: ${ahead}, ${queue.running} running there.`;
}

function watch(element) {
  const url = element.dataset.jobProgress;
  const eta = element.querySelector(".job-eta");
  let etaAt = null; // [seconds left, when it was received]

  const tick = () => {
    if (!etaAt) { eta.textContent = ""; return; }
    eta.textContent = formatSeconds(etaAt[0] - (Date.now() - etaAt[1]) / 1000);
  };

  const poll = async () => {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const state = await response.json();
      render(element, state);
      const shown = etaAt ? etaAt[0] - (Date.now() - etaAt[1]) / 1000 : null;
      const smoothed = smoothEta(shown, state.eta_seconds);
      etaAt = smoothed == null ? null : [smoothed, Date.now()];
      tick();
      const reloads = element.hasAttribute("data-reload-on-finish");
      if (state.finished) {
        element.classList.add("finished");
        if (reloads) setTimeout(() => window.location.reload(), 800);
        return;
      }
      if (reloads && element.dataset.status === "pending" && state.status === "running") {
        window.location.reload();
        return;
      }
    } catch (error) {
      eta.textContent = "progress unavailable, retrying…";
    }
    setTimeout(poll, POLL_MS);
  };

  setInterval(tick, 250);
  poll();
}

document.querySelectorAll("[data-job-progress]").forEach(watch);
