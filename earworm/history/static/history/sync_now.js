// "Sync now": POST /api/v1/sync with the CSRF token and show the answer in place (no page change).
document.querySelectorAll("form[data-sync-now]").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var result = form.querySelector(".sync-now-result");
    var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    fetch(form.action, {method: "POST", headers: {"X-CSRFToken": token}, credentials: "same-origin"})
      .then(function (response) {
        return response.json().then(function (body) {
          if (response.status === 202) {
            result.textContent = "Sync queued; new plays appear in a moment.";
            setTimeout(function () { window.location.reload(); }, 5000);
          } else {
            result.textContent = body.message || "Could not start a sync.";
          }
        });
      })
      .catch(function () { result.textContent = "Could not reach Earworm."; });
  });
});
