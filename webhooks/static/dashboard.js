// Live progress of a running job: poll its progress, append new messages, reload once it has finished.
(function () {
  "use strict";
  var section = document.getElementById("progress");
  if (!section || section.dataset.final === "yes") { return; }
  var list = document.getElementById("progress-list");
  var state = document.getElementById("job-state");
  var url = "/jobs/" + encodeURIComponent(section.dataset.job) + "/progress";
  var shown = list.querySelectorAll("li:not(.empty)").length;

  function clock(seconds) {
    return new Date(seconds * 1000).toISOString().substring(11, 19);
  }

  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        var empty = list.querySelector("li.empty");
        for (var i = shown; i < data.progress.length; i++) {
          if (empty) { empty.remove(); empty = null; }
          var item = document.createElement("li");
          var time = document.createElement("time");
          time.textContent = clock(data.progress[i][0]);
          item.appendChild(time);
          item.appendChild(document.createTextNode(" " + data.progress[i][1]));
          list.appendChild(item);
        }
        shown = Math.max(shown, data.progress.length);
        state.textContent = data.state;
        state.className = "badge " + data.state;
        if (data.final) { window.location.reload(); }
      })
      .catch(function () {})
      .then(function () { window.setTimeout(poll, 1000); });
  }
  window.setTimeout(poll, 1000);
})();
