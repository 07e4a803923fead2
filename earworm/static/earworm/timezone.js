// Suggest the browser's time zone once, for a user still on the default (UTC). A static file, so the
// Content Security Policy needs no inline scripts; without JavaScript the zone is set on /settings/.
(function () {
  var form = document.getElementById("tz-auto");
  if (!form || !window.fetch || !window.Intl) return;
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone || zone === "UTC") return;
  var data = new FormData(form);
  data.set("time_zone", zone);
  fetch(form.action, { method: "POST", body: data, credentials: "same-origin" });
})();
