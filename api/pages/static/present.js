// Holder presentation page: counts down the code's lifetime and fetches a fresh code halfway
// through it (for the same choice: its refresh URL carries the service item the code
// authorises), so the QR on screen is always current and an old screenshot is worthless.
// Same-origin file: the page's Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  // The holder's choice of what the code does (show only, or one service item): a new choice
  // makes a new code at once. The refresh URL the server wrote carries the current choice.
  var choice = document.getElementById("service_item");
  if (choice && choice.form) {
    choice.addEventListener("change", function () {
      choice.form.submit();
    });
  }
  var img = document.getElementById("qr");
  if (!img) {
    return;
  }
  var box = document.getElementById("present");
  var remaining = document.getElementById("remaining");
  var expiresAt = document.getElementById("expires-at");
  var url = img.getAttribute("data-refresh-url");
  var ttl = parseInt(img.getAttribute("data-ttl"), 10) || 300;
  var deadline = 0;
  var renewAt = 0;
  var busy = false;

  function schedule(expiresIn) {
    deadline = Date.now() + expiresIn * 1000;
    renewAt = deadline - (ttl / 2) * 1000; // halfway through the code's life
  }

  function clock(seconds) {
    var rest = seconds % 60;
    return Math.floor(seconds / 60) + ":" + (rest < 10 ? "0" : "") + rest;
  }

  function renew() {
    if (busy) {
      return;
    }
    busy = true;
    fetch(url, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        img.src = data.qr_svg;
        expiresAt.textContent = data.expires_at_local;
        schedule(data.expires_in);
        box.classList.remove("offline");
      })
      .catch(function () {
        box.classList.add("offline");
        renewAt = Date.now() + 10000; // try again in ten seconds
      })
      .then(function () {
        busy = false;
        tick();
      });
  }

  function tick() {
    var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    remaining.textContent = clock(left);
    box.classList.toggle("expired", left === 0);
    if (Date.now() >= renewAt) {
      renew();
    }
  }

  schedule(parseInt(img.getAttribute("data-expires-in"), 10) || 0);
  tick();
  setInterval(tick, 1000);
  document.addEventListener("visibilitychange", tick);
})();
