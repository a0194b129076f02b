// The reports dashboard's charts (Chart.js, vendored in static/vendor/chartjs). Every number comes from
// the server (the #report-data JSON, computed by the database); this file only draws them.
(function () {
  "use strict";

  var source = document.getElementById("report-data");
  if (!source || typeof window.Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var text = data.strings;
  var COLORS = { answered: "#16a34a", missed: "#dc2626", outgoing: "#2563eb" };

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) {
      return new window.Chart(canvas, config);
    }
    return null;
  }

  // Calls per day (per hour for one day): incoming answered and missed stacked, outgoing beside them.
  draw("chart-series", {
    type: "bar",
    data: {
      labels: data.series.labels,
      datasets: [
        { label: text.answered, data: data.series.answered, backgroundColor: COLORS.answered, stack: "incoming" },
        { label: text.missed, data: data.series.missed, backgroundColor: COLORS.missed, stack: "incoming" },
        { label: text.outgoing, data: data.series.outgoing, backgroundColor: COLORS.outgoing, stack: "outgoing" }
      ]
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { stacked: true, title: { display: true, text: text.bucket } },
        y: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: text.calls } }
      }
    }
  });

  // Missed share per hour of the day: a line; hours without calls are gaps, not zeros.
  draw("chart-missed-share", {
    type: "line",
    data: {
      labels: data.hours.labels,
      datasets: [
        {
          label: text.missed_share,
          data: data.hours.missed_share,
          borderColor: COLORS.missed,
          backgroundColor: COLORS.missed,
          spanGaps: false,
          tension: 0.2
        }
      ]
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      scales: {
        x: { title: { display: true, text: text.hour } },
        y: { beginAtZero: true, suggestedMax: 100, title: { display: true, text: text.missed_share } }
      }
    }
  });
})();
