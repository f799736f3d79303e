// Follow a background job (a report, a re-evaluation): poll its JSON status, move the progress
// bar, reload the page when the job ends.
(function () {
  "use strict";
  var section = document.querySelector("[data-job-status]");
  if (!section || !window.fetch) { return; }
  var url = section.getAttribute("data-job-status");
  var bar = section.querySelector("progress");
  var text = section.querySelector("[data-job-progress-text]");
  var failures = 0;

  function show(status) {
    if (bar) { bar.value = status.progress; bar.textContent = status.progress + " %"; }
    if (text) { text.textContent = status.progress + " %" + (status.progress_note ? " · " + status.progress_note : ""); }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (status) {
        failures = 0;
        show(status);
        if (status.status === "queued" || status.status === "running") {
          if (status.stalled) { window.location.reload(); return; }
          window.setTimeout(poll, 1500);
        } else {
          window.location.reload();
        }
      })
      .catch(function () {
        failures += 1;
        if (failures < 10) { window.setTimeout(poll, 3000 * failures); }
      });
  }

  window.setTimeout(poll, 1000);
}());
