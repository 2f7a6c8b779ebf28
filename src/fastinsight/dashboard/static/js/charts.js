// Thin wrappers over Chart.js (served from the installed npm package as a global).
const live = new Set();
const PALETTE = ["#2f6fde", "#e07b39", "#1f8a4c", "#a33ea1", "#c0392b", "#5d6778", "#d4a017",
  "#17a2b8", "#6f42c1", "#20c997", "#fd7e14", "#6c757d"];

export const colour = (n) => PALETTE[n % PALETTE.length];

export function destroyAll() {
  for (const chart of live) chart.destroy();
  live.clear();
}

function make(canvas, config) {
  if (typeof window.Chart === "undefined") {
    canvas.replaceWith(Object.assign(document.createElement("p"), {
      className: "error",
      textContent: "Charts are unavailable: Chart.js is not installed on the server.",
    }));
    return null;
  }
  const chart = new window.Chart(canvas, {
    ...config,
    options: { responsive: true, maintainAspectRatio: false, animation: false, ...config.options },
  });
  live.add(chart);
  return chart;
}

export function lineChart(canvas, labels, series, { stacked = false } = {}) {
  return make(canvas, {
    type: "line",
    data: {
      labels,
      datasets: series.map((s, n) => ({
        label: s.label, data: s.data, borderColor: colour(n), backgroundColor: colour(n) + "55",
        fill: stacked, tension: 0.2, pointRadius: 0, yAxisID: s.axis || "y",
      })),
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: { y: { stacked, beginAtZero: true },
        ...(series.some((s) => s.axis === "y2") ? { y2: { position: "right", beginAtZero: true,
          grid: { drawOnChartArea: false } } } : {}) },
    },
  });
}

export function barChart(canvas, labels, series, { horizontal = false } = {}) {
  return make(canvas, {
    type: "bar",
    data: {
      labels,
      datasets: series.map((s, n) => ({ label: s.label, data: s.data, backgroundColor: colour(n) })),
    },
    options: { indexAxis: horizontal ? "y" : "x", scales: { x: { beginAtZero: true } },
      plugins: { legend: { display: series.length > 1 } } },
  });
}

// Estimates with their intervals: a floating bar [low, high] and a point per label.
export function intervalChart(canvas, labels, values, lows, highs, { percent = true } = {}) {
  const fmt = (v) => (percent ? `${(v * 100).toFixed(1)}%` : Number(v).toFixed(3));
  return make(canvas, {
    type: "bar",
    data: {
      labels,
      datasets: [
        { type: "bar", label: "95% interval", data: labels.map((_, n) => [lows[n], highs[n]]),
          backgroundColor: labels.map((_, n) => colour(n) + "55"), barPercentage: 0.5 },
        { type: "line", label: "estimate", data: values, showLine: false, pointRadius: 6,
          pointBackgroundColor: labels.map((_, n) => colour(n)), borderColor: "#1d2433" },
      ],
    },
    options: {
      scales: { y: { beginAtZero: true, ticks: { callback: fmt } } },
      plugins: { legend: { display: false },
        tooltip: { callbacks: { label: (ctx) => (Array.isArray(ctx.raw) ? `${fmt(ctx.raw[0])} – ${fmt(ctx.raw[1])}` : fmt(ctx.raw)) } } },
    },
  });
}

export function doughnut(canvas, labels, data) {
  return make(canvas, {
    type: "doughnut",
    data: { labels, datasets: [{ data, backgroundColor: labels.map((_, n) => colour(n)) }] },
    options: { plugins: { legend: { position: "right" } } },
  });
}

export function chartBox(testid) {
  const canvas = document.createElement("canvas");
  canvas.dataset.testid = testid;
  const box = document.createElement("div");
  box.className = "chart-box";
  box.append(canvas);
  return { box, canvas };
}
