// The import form (/import/): say at once when the chosen files exceed the upload limit, instead of sending
// them to be refused. The server enforces the limit either way; this only saves the wait.
(function () {
  "use strict";
  var form = document.querySelector(".import-form");
  if (!form) return;
  var input = form.querySelector("input[type=file]");
  var warning = form.querySelector(".import-too-large");
  var button = form.querySelector("button[type=submit]");
  var max = Number(form.getAttribute("data-max-bytes"));
  var maxMb = form.getAttribute("data-max-mb");
  input.addEventListener("change", function () {
    var total = 0;
    for (var i = 0; i < input.files.length; i++) total += input.files[i].size;
    var tooLarge = max > 0 && total > max;
    warning.hidden = !tooLarge;
    warning.textContent = tooLarge
      ? "These files are " + Math.ceil(total / 1048576) + " MB together; the limit is " + maxMb + " MB."
      : "";
    button.disabled = tooLarge;
  });
})();
