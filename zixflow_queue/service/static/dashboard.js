// zixflow-queue's dashboard: the live rates chart and counts, and confirmation of bulk actions.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const REFRESH_MS = 5000;

function element(name, attributes, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  parent.appendChild(node);
  return node;
}

// The highest value the y axis reaches: a round number at or above the highest rate.
function ceiling(rates) {
  const top = Math.max(1, ...rates.flatMap((slot) => [slot[1], slot[2]]));
  const step = 10 ** Math.floor(Math.log10(top));
  return [1, 2, 2.5, 5, 10].map((m) => m * step).find((limit) => limit >= top);
}

function draw(box, rates) {
  const width = Math.max(box.clientWidth, 100);
  const height = Math.max(box.clientHeight, 80);
  const left = 34;
  const top = 8;
  const bottom = height - 4;
  const limit = ceiling(rates);
  const x = (i) => left + ((width - left) * i) / Math.max(rates.length - 1, 1);
  const y = (value) => bottom - ((bottom - top) * value) / limit;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  for (const value of [0, limit / 2, limit]) {
    element("line", { class: "grid", x1: left, x2: width, y1: y(value), y2: y(value) }, svg);
    const label = element("text", { class: "tick", x: left - 6, y: y(value) + 4, "text-anchor": "end" }, svg);
    label.textContent = `${+value.toFixed(1)}/s`;
  }
  for (const [column, name] of [[1, "sent"], [2, "failed"]]) {
    const points = rates.map((slot, i) => `${x(i).toFixed(1)},${y(slot[column]).toFixed(1)}`);
    if (!points.length) continue;
    const area = `${left},${bottom} ${points.join(" ")} ${x(rates.length - 1)},${bottom}`;
    element("polygon", { class: `${name}-area`, points: area }, svg);
    element("polyline", { class: `${name}-line`, points: points.join(" ") }, svg);
  }
  box.replaceChildren(svg);
}

function show(live, box) {
  for (const node of document.querySelectorAll("[data-count]")) {
    const value = live.counts[node.dataset.count];
    if (value !== undefined) node.textContent = value;
  }
  const at = document.querySelector("[data-live-at]");
  if (at) at.textContent = new Date(live.at * 1000).toISOString().slice(0, 19).replace("T", " ");
  box.classList.remove("stale");
  box.dataset.rates = JSON.stringify(live.rates);
  draw(box, live.rates);
}

function follow(box) {
  // From the origin: a page opened as http://user:token@host/ must not pass its credentials on.
  const source = new URL(box.dataset.source, window.location.origin);
  const refresh = () =>
    fetch(source, { headers: { Accept: "application/json" } })
      .then((answer) => (answer.ok ? answer.json() : Promise.reject(answer.status)))
      .then((live) => show(live, box))
      .catch(() => box.classList.add("stale"));
  window.setInterval(refresh, REFRESH_MS);
  window.addEventListener("resize", () => draw(box, JSON.parse(box.dataset.rates)));
}

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  const box = document.getElementById("rates");
  if (box) {
    draw(box, JSON.parse(box.dataset.rates));
    follow(box);
  }
});
